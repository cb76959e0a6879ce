"""Fixtures shared by the test modules; the harness they use is the testkit package (shared with bench/).

Tests that run a program as a child process (the exporter, Prometheus, promtool, pip, ...) carry the
`process` marker, so `python -m pytest -m "not process"` is the fast in-process suite. The marker is kept
honest here: an unmarked test that starts a process fails and says so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from exporter.simulator import Simulator
from testkit.tools import require_tool


@pytest.fixture(autouse=True)
def _processes_only_with_the_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("process") is not None:
        return

    def refuse(args: Any, *rest: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process ({args!r}): mark it @pytest.mark.process")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool: skips locally when it is missing, FAILS under CI (testkit.tools)."""
    return require_tool("promtool")


@pytest.fixture
def simulators() -> Iterator[Callable[..., Simulator]]:
    """`simulators(**kwargs)` starts a Simulator(**kwargs) on loopback; every one is stopped after the test."""
    started: list[Simulator] = []

    def start(**kwargs: Any) -> Simulator:
        sim = Simulator(**kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
