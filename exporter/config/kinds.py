"""Kinds of setting: how one raw YAML value becomes a typed value, what it may be, and how it is shown.

A kind raises `Invalid` with a message that never contains the value of a secret.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.config.durations import format_duration, parse_duration
from exporter.config.problems import Invalid
from exporter.config.secret import Secret


class Absent:
    """The marker for a setting the user did not give."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()


class Kind:
    """The base: a single key whose non-null value `parse` turns into the setting's value."""

    format = "string"
    bounds = ""
    secret = False

    def keys(self, key: str) -> tuple[str, ...]:
        """The config keys this setting accepts."""
        return (key,)

    def take(self, raw: Mapping[str, Any], key: str) -> Any:
        value = raw.get(key)
        return ABSENT if value is None else self.parse(value)

    def parse(self, value: Any) -> Any:
        return str(value)

    def show(self, value: Any) -> str:
        return str(value)


class Text(Kind):
    """Free text; an empty string counts as not given (`name: ""` still gets the URL's host)."""

    def take(self, raw: Mapping[str, Any], key: str) -> Any:
        return ABSENT if raw.get(key) == "" else super().take(raw, key)


class Url(Text):
    format = "http(s) URL"

    def parse(self, value: Any) -> str:
        parsed = urllib.parse.urlsplit(str(value))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise Invalid("must be an http(s) URL like https://billing.example.com")
        return str(value).rstrip("/")


@dataclass(frozen=True)
class Choice(Kind):
    options: tuple[str, ...]

    @property
    def format(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(f"`{o}`" for o in self.options)

    def parse(self, value: Any) -> str:
        if value not in self.options:
            raise Invalid(f"must be one of {', '.join(self.options)}")
        return str(value)


class TimeZone(Kind):
    format = "IANA time zone name"

    def parse(self, value: Any) -> str:
        name = str(value)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"unknown time zone '{name[:60]}' (use an IANA name like Europe/Berlin)") from None
        return name


class Flag(Kind):
    format = "`true` or `false`"

    def parse(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid("must be true or false")
        return value

    def show(self, value: Any) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class WholeNumber(Kind):
    minimum: int
    format = "whole number"

    @property
    def bounds(self) -> str:  # type: ignore[override]
        return f">= {self.minimum}"

    def parse(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise Invalid(f"must be a whole number >= {self.minimum}")
        return value


class Duration(Kind):
    format = "duration (`90s`, `5m`, `1h30m`)"
    bounds = "> 0"

    def parse(self, value: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    def show(self, value: Any) -> str:
        return format_duration(value)


class Buckets(Kind):
    format = "list of durations"
    bounds = "strictly increasing"

    def parse(self, value: Any) -> tuple[float, ...]:
        if not isinstance(value, list) or not value:
            raise Invalid("must be a non-empty list of durations")
        try:
            buckets = tuple(parse_duration(b) for b in value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if list(buckets) != sorted(set(buckets)):
            raise Invalid("must be strictly increasing")
        return buckets

    def show(self, value: Any) -> str:
        return ", ".join(format_duration(b) for b in value)


class FilePath(Text):
    format = "path of an existing file"

    def parse(self, value: Any) -> str:
        path = str(value)
        if not os.path.isfile(path):
            raise Invalid(f"file {path} does not exist")
        return path


def _checked_file(key: str, path: str) -> str:
    if not os.path.isfile(path):
        raise Invalid(f"file {path} does not exist", at=key + "_file")
    if not os.access(path, os.R_OK):
        raise Invalid(f"file {path} is not readable", at=key + "_file")
    return path


class SecretText(Kind):
    """A credential: inline as `<key>`, or the path of a file holding it as `<key>_file` (read on every use)."""

    format = "string, or `_file`: path of a file holding it"
    secret = True

    def keys(self, key: str) -> tuple[str, ...]:
        return (key, key + "_file")

    def take(self, raw: Mapping[str, Any], key: str) -> Any:
        inline, path = raw.get(key), raw.get(key + "_file")
        if inline is not None and path is not None:
            raise Invalid(f"set either {key} or {key}_file, not both")
        if path is not None:
            return Secret(path=_checked_file(key, str(path)))
        if inline is None:
            return ABSENT
        if not isinstance(inline, (str, int)) or isinstance(inline, bool):
            raise Invalid("must be a string")
        return Secret(inline=str(inline))

    def show(self, value: Any) -> str:
        return f"<secret from {value.path}>" if value.path else "<secret>"


class TextOrFile(SecretText):
    """Not a secret, but kept in a file alongside one (a login name): the file is read once, at start."""

    format = "string, or `_file`: path of a file holding it (read at start)"
    secret = False

    def take(self, raw: Mapping[str, Any], key: str) -> Any:
        value = super().take(raw, key)
        if not isinstance(value, Secret):
            return value
        try:
            return value.read()
        except OSError as exc:
            raise Invalid(f"cannot read: {exc.strerror}", at=key + "_file") from None

    def show(self, value: Any) -> str:
        return str(value)


def registered_collectors() -> tuple[tuple[str, ...], frozenset[str]]:
    """(every collector's name in poll order, the ones enabled by default), from the collector registry.

    Imported on use: the collectors import the client, which imports the configuration.
    """
    from exporter.collectors.registry import DEFAULTS, NAMES

    return NAMES, DEFAULTS


class Collectors(Kind):
    format = "list of names, or mapping name: `true`/`false` (changes to the defaults)"

    @property
    def bounds(self) -> str:  # type: ignore[override]
        return "names: " + ", ".join(f"`{n}`" for n in registered_collectors()[0])

    def parse(self, value: Any) -> frozenset[str]:
        names, defaults = registered_collectors()
        problems: list[tuple[str | None, str]] = []
        if isinstance(value, list):
            chosen = {str(c) for c in value}
        elif isinstance(value, Mapping):
            chosen = set(defaults)
            for key, enabled in value.items():
                if not isinstance(enabled, bool):
                    problems.append((f"collectors.{key}", "must be true or false"))
                elif enabled:
                    chosen.add(str(key))
                else:
                    chosen.discard(str(key))
        else:
            raise Invalid("must be a list of names or a mapping name: true/false")
        unknown = chosen - set(names)
        if unknown:
            problems.append((None, f"unknown collector(s) {', '.join(sorted(unknown))}; known: {', '.join(names)}"))
        if problems:
            raise Invalid.many(problems)
        return frozenset(chosen)

    def show(self, value: Any) -> str:
        return ", ".join(n for n in registered_collectors()[0] if n in value) or "(none)"
