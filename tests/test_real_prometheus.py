"""Proof of the deployment kit against a REAL Prometheus (Debian's /usr/bin/prometheus and promtool).

Two Prometheus servers per module run, each on a free loopback port with a temporary TSDB, scraping and
evaluating every second:

* "shipped": the demo exporter (`--demo`) with the rules exactly as shipped (deploy/prometheus/alerts.yml).
  Every Grafana panel query must return data, and every shipped rule must evaluate without error.
* "lab": one exporter process polling nine test-owned Simulators (one WHMCS installation per scenario,
  poll_interval 1s) plus a second exporter process that the test kills, with a copy of the rules whose
  `for:` durations are 2s and whose thresholds differ ONLY through the whmcs:threshold:* recording rules.
  Each alert is driven into firing (asserted on the `ALERTS` series: alertname, alertstate="firing",
  whmcs) and, where the state can be undone, back out.

promtool checks the generated and the shipped config, the shipped and the tuned rules, and a real scrape.
With CI set, a missing prometheus/promtool fails these tests; locally they are skipped.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from exporter.simulator import Simulator, World
from testkit.deploy_kit import dashboard_queries, metric_names_in
from testkit.exporter_process import ExporterProcess, free_port, write_config
from testkit.prometheus_server import (
    PrometheusServer,
    scrape_job,
    tuned_rules,
)
from testkit.prometheus_server import (
    write_config as write_prometheus_config,
)
from testkit.tools import promtool, require_tool

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SHIPPED_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "grafana" / "whmcs-tickets.json"

# Thresholds the lab changes (through the recording rules only) so that small simulated desks cross them.
LAB_THRESHOLDS = {"awaiting_reply_max": 10, "stale_data_seconds": 5}
FOR = "2s"
# Bounds of the polling waits: generous for a loaded 2-core CI machine; a pass usually takes a few seconds.
FIRE_TIMEOUT = 40.0
PANEL_TIMEOUT = 60.0

HOUR, DAY = 3600, 86400

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("binaries")]


@pytest.fixture(scope="module")
def binaries() -> None:
    require_tool("prometheus")
    require_tool("promtool")


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="real-prometheus-") as path:
        yield Path(path)


# ---- the shipped kit against the demo exporter ----------------------------------------------------


@pytest.fixture(scope="module")
def demo_exporter(binaries):
    sim_port = free_port()
    exporter = ExporterProcess(["--demo", f"--demo.listen-address=127.0.0.1:{sim_port}"])
    try:
        exporter.wait_ready()
        # A healthy demo never fails an API call, so whmcs_exporter_api_request_failures_total has no series
        # and the "API failures by reason" panel would stay empty. Deny one action once (a real-world API role
        # missing a permission: fails one collector, not the poll); the demo's next poll (15s) records it.
        answer = requests.post(f"http://127.0.0.1:{sim_port}/_sim/fault", timeout=5, json={
            "kind": "text_error", "action": "GetSupportDepartments", "times": 1, "status": 403,
            "message": 'Invalid Permissions: API action "getsupportdepartments" is not allowed'})
        assert answer.status_code == 200, answer.text
        yield exporter
    finally:
        exporter.stop()
        os.unlink(exporter.log_file.name)


@pytest.fixture(scope="module")
def shipped_prometheus(demo_exporter, workdir):
    config = write_prometheus_config(workdir / "shipped.yml",
                                     [scrape_job("whmcs", [f"127.0.0.1:{demo_exporter.port}"])], [ALERTS])
    prom = PrometheusServer(config)
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()


def test_promtool_checks_the_shipped_and_generated_configs(shipped_prometheus, lab):
    promtool("check", "config", str(SHIPPED_CONFIG))
    promtool("check", "config", str(shipped_prometheus.config))
    promtool("check", "config", str(lab.prometheus.config))


def test_promtool_checks_the_shipped_and_tuned_rules(lab):
    out = promtool("check", "rules", str(ALERTS)).stdout
    assert "SUCCESS" in out
    promtool("check", "rules", str(lab.rules))


def test_promtool_checks_a_real_scrape_of_the_demo_exporter(demo_exporter):
    # The classic text format: promtool's linter does not read OpenMetrics (which escapes `"` in HELP).
    response = requests.get(demo_exporter.base + "/metrics", timeout=5)
    assert response.status_code == 200
    assert "whmcs_tickets_awaiting_reply{" in response.text
    result = promtool("check", "metrics", stdin=response.text)
    assert not result.stdout.strip() and not result.stderr.strip(), result.stdout + result.stderr


def test_shipped_rules_load_and_evaluate_without_errors(shipped_prometheus):
    prom = shipped_prometheus
    shipped = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]

    def all_evaluated_ok():
        rules = prom.rules()
        return len(rules) == len(shipped) and all(r["health"] == "ok" for r in rules) and rules

    prom.wait_for(all_evaluated_ok, 30, f"all {len(shipped)} shipped rules loaded and evaluated healthy",
                  describe=lambda: "\n".join(f"{r['name']}: {r['health']} {r.get('lastError', '')}"
                                             for r in prom.rules()))
    # The recording rules produce data from a real scrape (the `le` normalisation, histogram_quantile).
    for record in ("whmcs:tickets_awaiting_reply_age_seconds:p50", "whmcs:tickets_awaiting_reply_age_seconds:p90",
                   "whmcs:ticket_first_response_seconds:p50", "whmcs:ticket_first_response_seconds:p90",
                   "whmcs:tickets_awaiting_reply_past_sla:count"):
        prom.wait_for(lambda r=record: prom.query(r), 30, f"recording rule {record} has data")
    # past-SLA count == gcount - the 86400 bucket, both read the same scrape.
    check = ("whmcs:tickets_awaiting_reply_past_sla:count - on (job, instance, whmcs) "
             "(whmcs_tickets_awaiting_reply_age_seconds_gcount - on (job, instance, whmcs) "
             "whmcs_tickets_awaiting_reply_age_seconds_bucket{le=~\"86400(\\\\.0)?\"})")
    assert [float(r["value"][1]) for r in prom.query(check)] == [0.0]


# ---- the alert lab: test-owned simulators, tuned rules --------------------------------------------


def desk() -> World:
    return World.generate(seed=3, tickets=0, departments=["Support", "Billing"], tz="UTC")


def awaiting(world: World, waiting: float, opened: float | None = None, deptid: int = 1) -> int:
    """A ticket staff answered once, the customer replied `waiting` seconds ago: awaiting, has a staff reply."""
    now = time.time()
    opened = opened if opened is not None else waiting + HOUR
    ticket = world.add_ticket(deptid=deptid, status="Open", at=now - opened)
    world.staff_reply(ticket.id, at=now - opened + 60)
    world.customer_reply(ticket.id, at=now - waiting)
    return ticket.id


def answered(world: World, opened: float = 2 * HOUR) -> int:
    now = time.time()
    ticket = world.add_ticket(deptid=2, status="Open", at=now - opened)
    world.staff_reply(ticket.id, at=now - opened / 2)
    return ticket.id


def unanswered(world: World, opened: float, status: str = "On Hold") -> int:
    """Opened `opened` seconds ago, never a staff reply; On Hold: active but not awaiting a reply."""
    ticket = world.add_ticket(deptid=1, status=status, at=time.time() - opened)
    return ticket.id


def calm_desk() -> World:
    world = desk()
    for _ in range(3):
        answered(world)
    for _ in range(2):
        awaiting(world, waiting=600)
    return world


@dataclass
class Lab:
    prometheus: PrometheusServer
    rules: Path
    sims: dict[str, Simulator]
    tickets: dict[str, list[int]]
    main: ExporterProcess
    spare: ExporterProcess
    spare_args: list[str]
    processes: list[ExporterProcess] = field(default_factory=list)

    @property
    def main_instance(self) -> str:
        return f"127.0.0.1:{self.main.port}"

    @property
    def spare_instance(self) -> str:
        return f"127.0.0.1:{self.spare.port}"

    def restart_spare(self) -> None:
        self.spare = ExporterProcess(self.spare_args, port=self.spare.port)
        self.processes.append(self.spare)
        self.spare.wait_ready()

    def wait_firing(self, alertname: str, timeout: float = FIRE_TIMEOUT, **labels: str) -> list[dict]:
        return self.prometheus.wait_for(lambda: self.prometheus.firing(alertname, **labels), timeout,
                                        f"{alertname} {labels} firing", describe=self.describe)

    def wait_resolved(self, alertname: str, timeout: float = FIRE_TIMEOUT, **labels: str) -> None:
        self.prometheus.wait_for(lambda: not self.prometheus.firing(alertname, **labels), timeout,
                                 f"{alertname} {labels} resolved", describe=self.describe)

    def value(self, expr: str) -> list[float]:
        return [float(r["value"][1]) for r in self.prometheus.query(expr)]

    def describe(self) -> str:
        alerts = self.prometheus.query("ALERTS")
        active = "\n".join(f"  {r['metric']}" for r in alerts) or "  none"
        return f"ALERTS now:\n{active}\nexporter log (tail):\n{self.main.log()[-3000:]}"


# Scenario installation -> how its desk starts.
SCENARIOS: dict[str, Callable[[], World]] = {
    "calm": calm_desk,
    "busy": calm_desk,  # tickets added below
    "late": calm_desk,
    "unanswered": calm_desk,
    "unreachable": calm_desk,
    "badauth": calm_desk,
    "denied": calm_desk,
    "growing": calm_desk,
    "ratelimited": calm_desk,
    "sla": calm_desk,
}
# Service levels of the "sla" installation: every hour counts, so the test does not depend on the clock.
LAB_SLA = {"warn_before": "30m", "targets": [{"first_response": "1h", "next_reply": "1h"}]}


@pytest.fixture(scope="module")
def lab(binaries, workdir):
    sims: dict[str, Simulator] = {}
    tickets: dict[str, list[int]] = {name: [] for name in SCENARIOS}
    processes: list[ExporterProcess] = []
    prom: PrometheusServer | None = None
    try:
        for name, make in SCENARIOS.items():
            world = make()
            if name == "busy":  # 12 awaiting a reply (> 10), each with a staff reply, none past the SLA
                tickets[name] = [awaiting(world, waiting=900) for _ in range(12 - 2)]
            elif name == "late":  # 6 waiting for 2 days (> 5 past the 1-day SLA)
                tickets[name] = [awaiting(world, waiting=2 * DAY) for _ in range(6)]
            elif name == "unanswered":  # 11 without any staff reply (> 10), the oldest opened 5 h ago (> 4 h)
                tickets[name] = [unanswered(world, opened=5 * HOUR - i * 60) for i in range(11)]
            elif name == "sla":  # 3 waiting 2 h for a next reply (target 1 h), 2 waiting 35 min (at risk)
                tickets[name] = [awaiting(world, waiting=2 * HOUR) for _ in range(3)]
                tickets[name] += [awaiting(world, waiting=35 * 60) for _ in range(2)]
            secret = "right-secret" if name == "badauth" else "sim-secret"
            sims[name] = Simulator(world=world, secret=secret).start()

        def installation(name: str, sim: Simulator) -> dict:
            raw = {"name": name, "url": sim.url, "api_identifier": sim.identifier,
                   "api_secret": "wrong-secret" if name == "badauth" else sim.secret,
                   "timezone": "UTC", "poll_interval": "1s", "timeout": "900ms"}
            return raw | {"sla": LAB_SLA} if name == "sla" else raw

        (workdir / "main").mkdir()
        (workdir / "spare").mkdir()
        main_config = write_config(str(workdir / "main"), [installation(n, s) for n, s in sims.items()])
        sims["downed"] = Simulator(world=calm_desk()).start()
        spare_config = write_config(str(workdir / "spare"), [installation("downed", sims["downed"])])
        main = ExporterProcess([f"--config.file={main_config}"])
        processes.append(main)
        spare_args = [f"--config.file={spare_config}"]
        spare = ExporterProcess(spare_args)
        processes.append(spare)
        main.wait_ready()
        spare.wait_ready()

        rules = tuned_rules(ALERTS, workdir / "alerts-tuned.yml", for_duration=FOR, thresholds=LAB_THRESHOLDS)
        config = write_prometheus_config(
            workdir / "lab.yml",
            [scrape_job("whmcs-lab", [f"127.0.0.1:{main.port}", f"127.0.0.1:{spare.port}"])], [rules])
        prom = PrometheusServer(config).start()
        the_lab = Lab(prom, rules, sims, tickets, main, spare, spare_args, processes)
        # Both targets scraped and every installation reported before any test looks at alerts.
        prom.wait_for(lambda: len(the_lab.value('up{job="whmcs-lab"} == 1')) == 2, 30, "both lab targets up")
        prom.wait_for(lambda: len(prom.query("whmcs_up")) == len(sims), 30, "whmcs_up of every installation",
                      describe=the_lab.describe)
        yield the_lab
    finally:
        if prom is not None:
            prom.stop()
        for process in processes:
            process.stop()
            os.unlink(process.log_file.name)
        for sim in sims.values():
            sim.stop()


def test_exporter_down_fires_with_the_installation_label_and_resolves(lab):
    assert not lab.prometheus.firing("WhmcsExporterDown")
    lab.spare.proc.kill()  # not a clean shutdown: the process just vanishes
    lab.spare.proc.wait()
    alerts = lab.wait_firing("WhmcsExporterDown", whmcs="downed")
    assert [(a["instance"], a["job"], a["severity"]) for a in alerts] == [(lab.spare_instance, "whmcs-lab",
                                                                            "critical")]
    assert not lab.prometheus.firing("WhmcsExporterDown", instance=lab.main_instance)
    lab.restart_spare()
    lab.wait_resolved("WhmcsExporterDown")


def test_target_missing_fires_only_without_a_whmcs_job(lab, workdir):
    assert not lab.prometheus.firing("WhmcsExporterTargetMissing")
    config = write_prometheus_config(workdir / "nowhmcs.yml", [scrape_job("node", [f"127.0.0.1:{free_port()}"])],
                                     [lab.rules])
    prom = PrometheusServer(config)
    try:
        prom.start()
        alerts = prom.wait_for(lambda: prom.firing("WhmcsExporterTargetMissing"), FIRE_TIMEOUT,
                               "WhmcsExporterTargetMissing firing on a Prometheus without a whmcs job")
        assert [a["severity"] for a in alerts] == ["critical"]
        assert not prom.firing("WhmcsExporterDown")
    finally:
        prom.stop()


def test_unreachable_and_stale_data_fire_and_resolve(lab):
    sim = lab.sims["unreachable"]
    sim.faults.set("http_error", status=500)  # every action
    try:
        lab.wait_firing("WhmcsUnreachable", whmcs="unreachable")
        alerts = lab.wait_firing("WhmcsExporterDataStale", whmcs="unreachable")
        assert alerts[0]["severity"] == "warning"
        assert not lab.prometheus.firing("WhmcsUnreachable", whmcs="calm")
        assert not lab.prometheus.firing("WhmcsExporterDataStale", whmcs="calm")
        assert lab.value('whmcs_exporter_api_request_failures_total{whmcs="unreachable", reason="http"} > 0')
    finally:
        sim.faults.clear()
    lab.wait_resolved("WhmcsUnreachable", whmcs="unreachable")
    lab.wait_resolved("WhmcsExporterDataStale", whmcs="unreachable")


def test_authentication_failing_fires_with_the_ban_warning(lab):
    alerts = lab.wait_firing("WhmcsAuthenticationFailing", whmcs="badauth")
    assert alerts[0]["severity"] == "critical"
    annotations = [a["annotations"] for a in lab.prometheus.active_alerts()
                   if a["labels"]["alertname"] == "WhmcsAuthenticationFailing" and a["state"] == "firing"]
    assert len(annotations) == 1
    assert "bans an IP address after 3 failed logins within 30 minutes" in annotations[0]["description"]
    assert lab.value('whmcs_exporter_backoff{whmcs="badauth", reason="auth"}') == [1.0]
    assert not lab.prometheus.firing("WhmcsAuthenticationFailing", whmcs="calm")
    # The exporter paused instead of hammering the login: the simulated WHMCS did not ban it.
    assert len(lab.sims["badauth"].failed_logins()) == 1
    assert not lab.sims["badauth"].auth.banned()
    # Not resolved here: the alert also looks at increase(auth failures[15m]), so it keeps firing for 15 min
    # after the credentials are fixed (by design: the ban window is 30 min).


def test_rate_limited_fires_and_resolves(lab):
    sim = lab.sims["ratelimited"]
    sim.faults.set("rate_limit", status=429, retry_after=4)
    try:
        alerts = lab.wait_firing("WhmcsExporterRateLimited", whmcs="ratelimited")
        assert alerts[0]["severity"] == "warning"
        assert not lab.prometheus.firing("WhmcsExporterRateLimited", whmcs="calm")
    finally:
        sim.faults.clear()
    lab.wait_resolved("WhmcsExporterRateLimited", whmcs="ratelimited")


def test_collector_failing_fires_for_the_denied_action_only_and_resolves(lab):
    sim = lab.sims["denied"]
    sim.deny_actions(["GetSupportDepartments"])
    try:
        alerts = lab.wait_firing("WhmcsCollectorFailing", whmcs="denied")
        assert [(a["collector"], a["severity"]) for a in alerts] == [("departments", "warning")]
        assert lab.value('whmcs_up{whmcs="denied"}') == [1.0]  # the other collectors still work
        assert not lab.prometheus.firing("WhmcsUnreachable", whmcs="denied")
        assert not lab.prometheus.firing("WhmcsCollectorFailing", whmcs="calm")
    finally:
        sim.deny_actions([])
    lab.wait_resolved("WhmcsCollectorFailing", whmcs="denied")


def test_too_many_tickets_awaiting_reply_fires_and_resolves(lab):
    alerts = lab.wait_firing("WhmcsTooManyTicketsAwaitingReply", whmcs="busy")
    assert alerts[0]["severity"] == "warning"
    assert lab.value('whmcs_tickets_awaiting_reply{whmcs="busy"}') == [12.0]
    assert lab.value('whmcs_tickets_awaiting_reply{whmcs="calm"}') == [2.0]
    assert not lab.prometheus.firing("WhmcsTooManyTicketsAwaitingReply", whmcs="calm")
    world = lab.sims["busy"].world
    for ticket_id in lab.tickets["busy"][:5]:  # 12 -> 7 awaiting, below 10
        world.staff_reply(ticket_id)
    lab.wait_resolved("WhmcsTooManyTicketsAwaitingReply", whmcs="busy")


def test_ticket_waiting_too_long_and_tickets_past_sla_fire_and_resolve(lab):
    alerts = lab.wait_firing("WhmcsTicketWaitingTooLong", whmcs="late")
    assert alerts[0]["severity"] == "warning"
    alerts = lab.wait_firing("WhmcsTicketsPastSla", whmcs="late")
    assert alerts[0]["severity"] == "critical"
    assert lab.value('whmcs:tickets_awaiting_reply_past_sla:count{whmcs="late"}') == [6.0]
    for name in ("calm", "busy"):
        assert not lab.prometheus.firing("WhmcsTicketWaitingTooLong", whmcs=name)
        assert not lab.prometheus.firing("WhmcsTicketsPastSla", whmcs=name)
    world = lab.sims["late"].world
    for ticket_id in lab.tickets["late"]:
        world.staff_reply(ticket_id)
    lab.wait_resolved("WhmcsTicketWaitingTooLong", whmcs="late")
    lab.wait_resolved("WhmcsTicketsPastSla", whmcs="late")


def test_tickets_without_staff_reply_fire_and_resolve(lab):
    alerts = lab.wait_firing("WhmcsTicketsWithoutStaffReply", whmcs="unanswered")
    assert alerts[0]["severity"] == "warning"
    lab.wait_firing("WhmcsTicketWithoutStaffReplyTooLong", whmcs="unanswered")
    assert not lab.prometheus.firing("WhmcsTooManyTicketsAwaitingReply", whmcs="unanswered")  # On Hold
    for name in ("calm", "busy", "late"):
        assert not lab.prometheus.firing("WhmcsTicketsWithoutStaffReply", whmcs=name)
        assert not lab.prometheus.firing("WhmcsTicketWithoutStaffReplyTooLong", whmcs=name)
    world = lab.sims["unanswered"].world
    for ticket_id in lab.tickets["unanswered"]:
        world.staff_reply(ticket_id)
    lab.wait_resolved("WhmcsTicketsWithoutStaffReply", whmcs="unanswered")
    lab.wait_resolved("WhmcsTicketWithoutStaffReplyTooLong", whmcs="unanswered")


def test_sla_breached_and_at_risk_fire_and_resolve_and_replies_are_counted(lab):
    cell = {"department": "Support", "priority": "Medium", "sla": "next_reply"}
    alerts = lab.wait_firing("WhmcsSlaBreached", whmcs="sla")
    assert [(a["department"], a["priority"], a["sla"], a["severity"]) for a in alerts] == [
        ("Support", "Medium", "next_reply", "critical")]
    alerts = lab.wait_firing("WhmcsSlaAtRisk", whmcs="sla")
    assert [(a["department"], a["priority"], a["sla"], a["severity"]) for a in alerts] == [
        ("Support", "Medium", "next_reply", "warning")]
    selector = ", ".join(f'{k}="{v}"' for k, v in cell.items())
    assert lab.value(f'whmcs_sla_tickets_breached{{whmcs="sla", {selector}}}') == [3.0]
    assert lab.value(f'whmcs_sla_tickets_at_risk{{whmcs="sla", {selector}}}') == [2.0]
    assert lab.value('whmcs_sla_tickets_breached{whmcs="calm"}') == []  # no `sla` configured: no series
    world = lab.sims["sla"].world
    for ticket_id in lab.tickets["sla"]:
        world.staff_reply(ticket_id)
    lab.wait_resolved("WhmcsSlaBreached", whmcs="sla")
    lab.wait_resolved("WhmcsSlaAtRisk", whmcs="sla")
    counted = 'sum by (result) (whmcs_sla_responses_total{whmcs="sla", sla="next_reply"})'
    lab.prometheus.wait_for(lambda: {r["metric"]["result"]: float(r["value"][1])
                                     for r in lab.prometheus.query(counted)} == {"met": 2.0, "breached": 3.0},
                            FIRE_TIMEOUT, "3 breached and 2 met replies counted", describe=lab.describe)


def test_backlog_growing_fast_fires(lab):
    world = lab.sims["growing"].world
    assert not lab.prometheus.firing("WhmcsBacklogGrowingFast")

    def add_and_check():
        world.add_ticket(deptid=1, status="Open")  # about 2 new tickets awaiting a reply per second
        return lab.prometheus.firing("WhmcsBacklogGrowingFast", whmcs="growing")

    alerts = lab.prometheus.wait_for(add_and_check, FIRE_TIMEOUT, "WhmcsBacklogGrowingFast firing",
                                     interval=0.5, describe=lab.describe)
    assert alerts[0]["severity"] == "warning"
    assert not lab.prometheus.firing("WhmcsBacklogGrowingFast", whmcs="calm")
    # Not resolved here: deriv() looks back one hour, so the alert outlives the burst by design.


def test_the_calm_installation_and_the_healthy_exporter_fire_nothing(lab):
    # Runs last: by now every other alert has fired in this Prometheus, so evaluation demonstrably works.
    assert lab.prometheus.query('ALERTS{whmcs="calm"}') == []
    assert lab.prometheus.query(f'ALERTS{{instance="{lab.main_instance}", alertname="WhmcsExporterDown"}}') == []
    assert lab.prometheus.query('ALERTS{alertname="WhmcsExporterTargetMissing"}') == []


# ---- the dashboard, last: the injected API failure (see demo_exporter) needs the demo's second poll ----


def test_every_dashboard_panel_returns_data(shipped_prometheus, demo_exporter):
    prom = shipped_prometheus
    queries = dashboard_queries(DASHBOARD)
    assert len(queries) > 30
    pending = dict.fromkeys(queries)
    deadline = time.monotonic() + PANEL_TIMEOUT
    while pending and time.monotonic() < deadline:
        for title, expr in list(pending):
            if prom.query(expr):
                del pending[(title, expr)]
        if pending:
            time.sleep(0.5)
    if not pending:
        return
    # Say why: which metrics Prometheus has no series of, and whether the exporter exposes them at all.
    exposed = demo_exporter.scrape().names()
    from exporter.collectors.registry import NAMES

    lines = []
    for title, expr in pending:
        names = sorted(metric_names_in(expr))
        absent = [n for n in names if not prom.query(f"count({{__name__=\"{n}\"}})")]
        not_exposed = [n for n in names if n.startswith("whmcs_") and n not in exposed]
        lines.append(f"- panel {title!r}: {expr}\n    metrics without series in Prometheus: {absent or 'none'}; "
                     f"not exposed by the demo exporter: {not_exposed or 'none'}")
    pytest.fail(f"{len(pending)} of {len(queries)} dashboard queries returned no data after {PANEL_TIMEOUT:g}s "
                f"(collectors registered: {', '.join(NAMES)}):\n"
                + "\n".join(lines))
