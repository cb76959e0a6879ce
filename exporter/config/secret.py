"""Credentials held without showing them: a `Secret` is read on use and never appears in repr or str."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Secret:
    """A credential given inline or as a file path. The value is read on use, so a
    rotated file is picked up without a restart, and it never shows in repr/str."""

    inline: str | None = None
    path: str | None = None

    def read(self) -> str:
        """The value; OSError when the file cannot be read as UTF-8 text (callers treat both alike)."""
        if self.path is not None:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    return handle.read().strip()
            except UnicodeDecodeError:
                raise OSError(errno.EILSEQ, "not UTF-8 text") from None
        return self.inline or ""

    def __repr__(self) -> str:
        return f"Secret(file={self.path!r})" if self.path else "Secret(***)"

    __str__ = __repr__


def credentials_digest(values: Mapping[str, str]) -> str:
    """A digest of credential values: notices a rotated secret without keeping a copy of it around."""
    return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
