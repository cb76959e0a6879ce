"""What the settings table says to people: the key table of docs/configuration.md and `--config.check`'s
listing of a validated configuration (secrets shown as `<secret>` or their file's path, never their value)."""

from __future__ import annotations

from exporter.config.installation import SETTINGS, Config, InstallationConfig
from exporter.config.kinds import ABSENT
from exporter.config.settings import Setting

START = "<!-- config-keys:start -->"
END = "<!-- config-keys:end -->"
REGENERATE = "python -m exporter.config --reference docs/configuration.md"

_HEADER = ("| key | environment | type | default | bounds | secret | meaning |\n"
           "| --- | --- | --- | --- | --- | --- | --- |")


def _code(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _default_text(s: Setting) -> str:
    if s.default_doc is not None:
        return s.default_doc
    if s.required:
        return "required"
    default = s.default_for({}) if s.factory is not None else s.default
    return "none" if default is ABSENT or default is None else f"`{s.kind.show(default)}`"


def _row(s: Setting) -> str:
    cells = (_code(s.keys()), _code(s.env_vars()), s.kind.format, _default_text(s), s.kind.bounds,
             "yes" if s.kind.secret else "", s.help)
    return "| " + " | ".join(cells) + " |"


def reference_block() -> str:
    """The generated key table with its markers, as it stands in docs/configuration.md."""
    note = f"<!-- generated from exporter/config (installation.py, auth.py): {REGENERATE} -->"
    rows = "\n".join(_row(s) for s in SETTINGS)
    return f"{START}\n{note}\n\n{_HEADER}\n{rows}\n\n{END}"


def with_reference(document: str) -> str:
    """The document with its key table block replaced by the current one (appended when it has none)."""
    if START in document and END in document:
        head, rest = document.split(START, 1)
        return head + reference_block() + rest.split(END, 1)[1]
    return document.rstrip("\n") + "\n\n" + reference_block() + "\n"


def current_block(document: str) -> str | None:
    """The key table block a document holds, markers included; None without one."""
    if START not in document or END not in document:
        return None
    return START + document.split(START, 1)[1].split(END, 1)[0] + END


def describe(config: Config) -> list[str]:
    """`--config.check`'s listing: every installation's every setting as it will be used."""
    lines = []
    for index, inst in enumerate(config.installations):
        lines.append(f"installations[{index}]:")
        lines += [f"  {key}: {value}" for key, value in _settings(inst)]
    return lines


def _settings(inst: InstallationConfig) -> list[tuple[str, str]]:
    held = inst.auth.settings()
    shown = []
    for s in SETTINGS:
        value = held[s.key] if s.key in held else getattr(inst, s.key, None)
        if value is not None:
            shown.append((s.key, s.kind.show(value)))
    return shown
