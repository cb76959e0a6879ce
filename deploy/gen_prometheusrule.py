#!/usr/bin/env python3
"""Regenerate deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/alerts.yml.

The PrometheusRule's spec.groups must be exactly the groups of alerts.yml
(tests/test_deploy_static.py fails when they drift). Run after editing alerts.yml:

    python deploy/gen_prometheusrule.py          # rewrite the file
    python deploy/gen_prometheusrule.py --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "prometheus" / "alerts.yml"
TARGET = HERE / "kubernetes" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/gen_prometheusrule.py: do not edit by hand.
# For the Prometheus Operator. Its Prometheus selects rules by label: with kube-prometheus-stack's
# defaults add `release: <your helm release name>` to metadata.labels (or set ruleSelector).
# Thresholds: the `whmcs-thresholds` group (see the comments in alerts.yml).
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    groups = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "whmcs-ticket-exporter",
            "labels": {
                "app.kubernetes.io/name": "whmcs-ticket-exporter",
                "app.kubernetes.io/component": "exporter",
            },
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python deploy/gen_prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
