"""External tools the tests need (promtool, prometheus, hadolint, ...): found, or a clear skip or failure.

Locally a missing tool skips the test that needs it; with CI set (anything but empty/0/false/no) it FAILS
it, so a CI machine that lacks a tool can never pass by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import pytest

INSTALL_HINT = {"prometheus": "apt-get install prometheus", "promtool": "apt-get install prometheus"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> None:
    """Fail under CI, skip locally: `what` is not installed."""
    message = f"{what} is not installed"
    if in_ci():
        pytest.fail(f"{message}; CI is set, so the CI script must install it")
    pytest.skip(f"{message}: skipped locally (set CI=true to make this a failure)")


def require_tool(name: str) -> str:
    """Path of the program `name`, on PATH or the system's default path (Debian puts promtool in /usr/bin)."""
    path = shutil.which(name) or shutil.which(name, path=os.defpath)
    if path is None:
        hint = INSTALL_HINT.get(name)
        missing(f"tool {name!r}" + (f" (Debian/Ubuntu: {hint})" if hint else ""))
    return path


def require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        missing(f"Python package {name!r}")


def promtool(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run promtool and assert it succeeded; the output is in the assertion message otherwise."""
    cmd = [require_tool("promtool"), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc
