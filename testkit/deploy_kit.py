"""Reading the deployment kit's files: dashboard queries, Dockerfile stages, the metrics contract's names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

# The keys of one `installations:` entry that the deployment examples may use.
ALLOWED_INSTALLATION_KEYS = {
    "name",
    "url",
    "api_identifier_file",
    "api_secret_file",
    "timezone",
    "poll_interval",
    "timeout",
}

# Grafana variables -> what an integration test substitutes before sending a panel query to Prometheus.
DASHBOARD_SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$instance": ".*",
    "$whmcs": ".*",
}


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def contract_metrics(path: Path) -> set[str]:
    """Series names from the table in docs/metrics.md (gauge histograms expand to their series)."""
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"\|\s*(whmcs_[a-z0-9_]+)\s*\|\s*([^|]+)\|", line)
        if not match:
            continue
        name, kind = match.group(1), match.group(2)
        if "histogram" in kind:
            names |= {f"{name}_bucket", f"{name}_gcount", f"{name}_gsum"}
        else:
            names.add(name)
    return names


def metric_names_in(expr: str) -> set[str]:
    """Metric names in a PromQL expression: whmcs_* series and `up` (recording rules contain ':')."""
    names = set(re.findall(r"(?<![\w:])whmcs_[a-z0-9_]+\b(?!:)", expr))
    if re.search(r"(?<![\w:])up\s*\{", expr):
        names.add("up")
    return names


def dashboard_panels(dashboard: dict) -> list[dict]:
    """All panels, including those nested in collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_targets(dashboard: dict) -> list[dict]:
    return [t for p in dashboard_panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def dashboard_queries(path: Path, substitutions: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL ready for the Prometheus HTTP API) for every panel query of the dashboard."""
    subs = substitutions or DASHBOARD_SUBSTITUTIONS
    dashboard = json.loads(path.read_text())
    queries = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            # longest names first: $__rate_interval before anything shorter
            for var in sorted(subs, key=len, reverse=True):
                expr = expr.replace(var, subs[var]).replace("${" + var[1:] + "}", subs[var])
            queries.append((panel["title"], expr))
    return queries


def parse_dockerfile(path: Path) -> list[dict]:
    """Stages of a Dockerfile: [{'image', 'name', 'instructions': [(INSTRUCTION, args), ...]}]."""
    lines, buffer = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if stripped.endswith("\\"):
            buffer += stripped[:-1].rstrip() + " "
            continue
        lines.append(buffer + stripped)
        buffer = ""
    stages: list[dict] = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append({"image": words[0], "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((instruction, args))
    return stages
