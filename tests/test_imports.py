"""Every module of tests/, testkit/, bench/ and deploy/ imports in this environment.

CI runs the suite in a fresh virtual environment: a package that a module imports but pyproject.toml does
not declare fails here by name, before any test that needs it runs (and skips or fails less clearly).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p for folder in ("tests", "testkit", "bench", "deploy") for p in (ROOT / folder).rglob("*.py"))

# Each module is imported in a child interpreter of its own: module-level state cannot leak into the suite,
# and a missing package shows as the child's ModuleNotFoundError.
_IMPORT = """
import importlib.util, sys
path, name = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
"""


def test_the_modules_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in MODULES}
    assert {"tests/test_imports.py", "testkit/tls_certs.py", "bench/bench.py", "deploy/gen_prometheusrule.py"} <= names


@pytest.mark.process
@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_imports(path: Path):
    name = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
    done = subprocess.run([sys.executable, "-c", _IMPORT, str(path), name], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
