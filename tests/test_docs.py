"""The documents tell the truth about the exporter: the metric table equals what it exports, every document is
reachable from the README, every link and anchor resolves, and CI runs the README's test command verbatim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.simulator import Simulator
from testkit.exporter_process import write_config
from testkit.reliability import installation

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
METRICS = ROOT / "docs" / "metrics.md"
DOCUMENTS = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
ROW = re.compile(r"^\|\s*(whmcs_[a-z0-9_]+)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """metric name -> (type, label names) from the table in docs/metrics.md."""
    table = {}
    for line in METRICS.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, kind, labels = match.groups()
            names = re.sub(r"\([^)]*\)", "", labels).split(",")
            table[name] = (kind.split()[0], frozenset(n.strip() for n in names if n.strip()))
    return table


def exported_metrics(exposition: str) -> dict[str, tuple[str, frozenset[str] | None]]:
    """metric name -> (type, label names or None when it has no sample) from a text exposition.

    The text format has no gauge histogram: prometheus_client writes it as a histogram `<name>` plus the gauges
    `<name>_gcount` and `<name>_gsum`, which are folded back into one `gaugehistogram` here."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE))
    labels: dict[str, set[str]] = {}
    for name, body in re.findall(r"^([a-z_:][a-z0-9_:]*)(?:\{([^}]*)\})? ", exposition, re.MULTILINE):
        labels.setdefault(name, set()).update(re.findall(r'([a-z_][a-z0-9_]*)="', body))
    out: dict[str, tuple[str, frozenset[str] | None]] = {}
    for name, kind in types.items():
        if kind == "histogram" and f"{name}_gcount" in types:
            seen = labels.get(f"{name}_bucket", set()) - {"le"}
            out[name] = ("gaugehistogram", frozenset(seen) if f"{name}_bucket" in labels else None)
        elif not any(name == f"{h}_{s}" and types.get(h) == "histogram" for h in types for s in ("gcount", "gsum")):
            out[name] = (kind, frozenset(labels[name]) if name in labels else None)
    return out


def state_metrics(tmp_path: Path, sim: Simulator) -> dict[str, tuple[str, frozenset[str] | None]]:
    """The state store's metrics, from a run that keeps state (`--demo` keeps none: docs/state.md)."""
    config = write_config(str(tmp_path), [installation(sim)])
    proc = subprocess.run([sys.executable, "-m", "exporter", "--once", f"--config.file={config}",
                           f"--storage.path={tmp_path / 'state'}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = {n: v for n, v in exported_metrics(proc.stdout).items() if n.startswith("whmcs_exporter_state_")}
    assert len(found) == 3, found
    return found


@pytest.mark.process
def test_metric_table_equals_what_the_exporter_exports(tmp_path, simulators):
    proc = subprocess.run([sys.executable, "-m", "exporter", "--demo", "--once"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    exported = exported_metrics(proc.stdout)
    exported.update(state_metrics(tmp_path, simulators(tickets=30)))
    documented = documented_metrics()
    assert set(exported) == set(documented), (f"exported only: {sorted(set(exported) - set(documented))}, "
                                              f"documented only: {sorted(set(documented) - set(exported))}")
    for name, (kind, labels) in exported.items():
        assert documented[name][0] == kind, f"{name}: exported as {kind}, documented as {documented[name][0]}"
        if labels is not None:
            assert documented[name][1] == labels, f"{name}: exported labels {sorted(labels)}"
    for line in METRICS.read_text().splitlines():
        if ROW.match(line):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            assert len(cells) == 4 and cells[3], f"{cells[0]}: the row needs a meaning"


def test_every_document_is_linked_from_the_readme():
    links = set(LINK.findall(README.read_text()))
    for doc in [*(ROOT / "docs").glob("*.md"), ROOT / "CHANGELOG.md", ROOT / "LICENSE"]:
        assert doc.relative_to(ROOT).as_posix() in links, f"README does not link {doc.relative_to(ROOT)}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_and_anchors_resolve(doc):
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        assert path.exists(), f"{doc.name}: link to missing {target}"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{doc.name}: no heading for #{anchor} in {path.name}"


def test_readme_is_a_short_manual_with_the_commands_ci_runs():
    readme = README.read_text()
    assert len(readme.splitlines()) <= 400
    assert "pip install . && whmcs-ticket-exporter --demo" in readme
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"\n{ci_command}\n" in readme, "README's test command differs from the line .ci/run runs"
