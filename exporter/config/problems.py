"""How configuration problems are reported: every one at once, each with its field path, no value echoed."""

from __future__ import annotations


class ConfigError(Exception):
    """Every problem found in the configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class Invalid(ValueError):
    """A value that does not fit its setting. Each problem is (where, message): `where` is None for the setting
    itself, else the key (`password_file`) or sub-path (`collectors.counts`) the message is about."""

    def __init__(self, message: str, at: str | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str | None, str]] = [(at, message)]

    @classmethod
    def many(cls, problems: list[tuple[str | None, str]]) -> Invalid:
        error = cls(problems[0][1], problems[0][0])
        error.problems = list(problems)
        return error
