"""A setting: one config key with its kind, default, environment variable and help line.

Settings are declared once, as dataclass fields through `setting()` (see `installation.py`) or in the auth table
(`auth.py`); validation, the known-keys check, `--config.check` and the configuration reference read them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.config.kinds import ABSENT, Kind

_METADATA = "setting"


@dataclass(frozen=True)
class Setting:
    key: str
    kind: Kind
    default: Any = ABSENT
    help: str = ""
    env: str | None = None
    required: bool = False
    # A default worked out from the other settings (the URL's host for `name`) when loading a file ...
    derive: Callable[[Mapping[str, Any]], Any] | None = None
    # ... or one computed on use (the collector registry is imported late).
    factory: Callable[[], Any] | None = None
    default_doc: str | None = None

    def keys(self) -> tuple[str, ...]:
        """The config keys that set it: the key itself, and `<key>_file` where the kind takes a file."""
        return self.kind.keys(self.key)

    def env_vars(self) -> tuple[str, ...]:
        """The environment variables that set it, one per key: WHMCS_PASSWORD, WHMCS_PASSWORD_FILE."""
        if self.env is None:
            return ()
        return tuple(self.env + key[len(self.key):].upper() for key in self.keys())

    def default_for(self, values: Mapping[str, Any]) -> Any:
        """The value when the user gave none (ABSENT: none at all)."""
        if self.derive is not None:
            return self.derive(values)
        return self.factory() if self.factory is not None else self.default


def setting(kind: Kind, default: Any = ABSENT, help: str = "", **details: Any) -> Any:
    """A dataclass field that is also a setting named like the field (details: env, required, derive, factory,
    default_doc). A setting with neither default nor factory must be given when the dataclass is built directly."""
    declared = Setting("", kind, default, help, **details)
    metadata = {_METADATA: declared}
    if default is not ABSENT:
        return dataclasses.field(default=default, metadata=metadata)
    if declared.factory is not None:
        return dataclasses.field(default_factory=declared.factory, metadata=metadata)
    return dataclasses.field(metadata=metadata)


def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings declared on a dataclass, in declaration order."""
    return tuple(dataclasses.replace(f.metadata[_METADATA], key=f.name)
                 for f in dataclasses.fields(cls) if _METADATA in f.metadata)
