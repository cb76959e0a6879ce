"""Parts rendered to the text format the way a scrape renders them, and that text checked by promtool."""

from __future__ import annotations

import subprocess
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from exporter.families import FamilySink
from testkit.tools import require_tool


def exposition(*parts: Any) -> bytes:
    """Render parts the way a scrape does: FamilySink -> prometheus_client text format."""
    sink = FamilySink(max_series=10_000)
    for part in parts:
        part.families(sink)

    class _Collector:
        def collect(self):
            return sink.families()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


def promtool_check(text: bytes) -> None:
    """`promtool check metrics` must accept the text (a missing promtool: testkit.tools)."""
    result = subprocess.run([require_tool("promtool"), "check", "metrics"], input=text, capture_output=True,
                            timeout=30)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
