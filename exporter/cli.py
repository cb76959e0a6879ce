"""Command line: flags in Prometheus style, then wire config -> pollers -> store -> collector -> server."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from exporter import __version__, logs
from exporter.collectors.registry import REGISTRY
from exporter.config import ApiCredentials, Config, ConfigError, InstallationConfig, Secret, load
from exporter.config.reference import describe
from exporter.config.sla import parse_sla
from exporter.connections import DEFAULT_MAX_CONNECTIONS, FD_RESERVE
from exporter.poller import InstallationPoller, start_pollers
from exporter.render import SnapshotRenderer
from exporter.server import ExporterHTTPServer, parse_listen_address, serve
from exporter.snapshot import SnapshotStore
from exporter.state.files import StateLocked
from exporter.state.metrics import StateMetrics
from exporter.state.saved import installation_key
from exporter.state.store import StateStore

if TYPE_CHECKING:
    from exporter.web_config import WebConfig

log = logging.getLogger("exporter")

EXIT_CONFIG = 2
EXIT_STATE_LOCKED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whmcs-ticket-exporter",
        description="Prometheus exporter for the WHMCS support desk: ticket backlog, waits and response times.")
    parser.add_argument("--config.file", dest="config_file", metavar="PATH",
                        help="YAML file listing WHMCS installations (default: WHMCS_* environment variables)")
    parser.add_argument("--web.listen-address", dest="listen_address", default=":9720", metavar="ADDR",
                        help="address to serve /metrics on (default :9720)")
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="PATH",
                        help="exporter-toolkit style web config: TLS and basic auth for the HTTP endpoints")
    parser.add_argument("--web.max-connections", dest="max_connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="HTTP connections held at once; when full, the longest-idle one is closed "
                        f"for a new one (lowered to the open-files limit minus {FD_RESERVE}; default %(default)s)")
    parser.add_argument("--config.check", dest="config_check", action="store_true",
                        help="validate the configuration and exit (0 valid, 2 invalid)")
    parser.add_argument("--once", action="store_true",
                        help="poll every installation once, print the metrics and exit (0 if all polls succeeded)")
    parser.add_argument("--demo", action="store_true",
                        help="export a built-in simulated WHMCS with live-looking tickets (no WHMCS needed)")
    parser.add_argument("--demo.listen-address", dest="demo_listen_address", default="127.0.0.1:0",
                        metavar="ADDR", help="where the --demo simulator listens (default: a free loopback port)")
    parser.add_argument("--storage.path", dest="storage_path", default="data/", metavar="DIR",
                        help="directory of the state that survives restarts (first-response cache, back-offs); "
                             "\"\" keeps state in memory only; --demo never stores state (default data/)")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=logs.LEVELS)
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=("logfmt", "json"))
    parser.add_argument("--version", action="version", version=f"whmcs-ticket-exporter {__version__}")
    for collector in REGISTRY:
        name, state = collector.name, "on" if collector.default else "off"
        group = parser.add_mutually_exclusive_group()
        group.add_argument(f"--collector.{name}", dest=f"collector_{name}", action="store_true", default=None,
                           help=f"enable the {name} collector for every installation: {collector.summary} "
                                f"(default {state})")
        group.add_argument(f"--no-collector.{name}", dest=f"collector_{name}", action="store_false",
                           help=f"disable the {name} collector for every installation")
    return parser


def apply_collector_flags(config: Config, args: argparse.Namespace) -> Config:
    installations = []
    for inst in config.installations:
        enabled = set(inst.collectors)
        for name in (c.name for c in REGISTRY):
            choice = getattr(args, f"collector_{name}")
            if choice is True:
                enabled.add(name)
            elif choice is False:
                enabled.discard(name)
        installations.append(dataclasses.replace(inst, collectors=frozenset(enabled)))
    return Config(installations=tuple(installations))


# The demo desk's service levels: business hours with a split Friday, a short Saturday and holidays.
DEMO_SLA = {
    "business_hours": {day: "08:00-18:00" for day in ("mon", "tue", "wed", "thu")}
    | {"fri": "08:00-12:00,13:00-18:00", "sat": "10:00-14:00"},
    "holidays": ["2026-12-25", "2026-12-26", "2027-01-01"],
    "warn_before": "1h",
    "targets": [
        {"priority": "Urgent", "first_response": "1h", "next_reply": "2h", "hours": "calendar"},
        {"department": "Billing", "first_response": "4h", "next_reply": "8h"},
        {"department": "Technical Support", "first_response": "2h", "next_reply": "4h"},
        {"first_response": "8h", "next_reply": "24h"},
    ],
}


def demo_config(url: str, identifier: str, secret: str, timezone: str) -> Config:
    return Config(installations=(InstallationConfig(
        name="demo", url=url, auth=ApiCredentials(Secret(inline=identifier), Secret(inline=secret)),
        timezone=timezone, poll_interval=15.0, timeout=5.0, max_age=45.0, sla=parse_sla(DEMO_SLA, timezone),
        staff_metrics=True),))


def start_demo_simulator(listen: str):  # noqa: ANN201 - the simulator's type stays out of the runtime's imports
    from exporter.simulator import Simulator

    host, port = parse_listen_address(listen)
    sim = Simulator(live=True, host=host, port=port).start()
    log.info("demo: simulated WHMCS listening on %s", sim.url)
    return sim


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    simulator = None
    try:
        if args.demo:
            simulator = start_demo_simulator(args.demo_listen_address)
            config = demo_config(simulator.url, simulator.identifier, simulator.secret, simulator.world.tz_name)
        else:
            config = load(args.config_file)
        config = apply_collector_flags(config, args)
        web = read_web_config(args.web_config_file)
    except ConfigError as exc:
        print(f"whmcs-ticket-exporter: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    if args.config_check:
        names = ", ".join(i.name for i in config.installations)
        print(f"configuration OK: {len(config.installations)} installation(s): {names}")
        print("\n".join(describe(config)))
        return 0

    try:
        # The demo's simulated desk is new at every start: state saved from it would describe another desk.
        state = open_state(args.storage_path, config) if args.storage_path and not args.demo else None
    except StateLocked as exc:
        print(f"whmcs-ticket-exporter: {exc}", file=sys.stderr)
        return EXIT_STATE_LOCKED
    store = SnapshotStore(i.name for i in config.installations)
    pollers = [InstallationPoller(inst, store, state=state) for inst in config.installations]
    registry = build_registry(config, store, state)
    if args.once:
        return run_once(pollers, registry, simulator)
    code = serve_until_stopped(args, config, pollers, registry, store, web)
    if state is not None:
        state.close()  # waits for a write in progress; the pollers write no more
    if simulator is not None:
        simulator.stop()
    return code


def read_web_config(path: str | None) -> WebConfig | None:
    """--web.config.file, read at start (imported on use: bcrypt and ssl setup only when it is given)."""
    if not path:
        return None
    from exporter.web_config import load_web_config

    return load_web_config(path)


def build_registry(config: Config, store: SnapshotStore, state: StateStore | None) -> CollectorRegistry:
    caps = {i.name: i.max_series for i in config.installations}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotRenderer(store, lambda name: caps.get(name, 5000)))
    if state is not None:
        registry.register(StateMetrics(state))
    return registry


def serve_until_stopped(args: argparse.Namespace, config: Config, pollers: list[InstallationPoller],
                        registry: CollectorRegistry, store: SnapshotStore, web: WebConfig | None) -> int:
    """Serve HTTP and poll until SIGTERM or SIGINT."""
    try:
        host, port = parse_listen_address(args.listen_address)
        server = ExporterHTTPServer((host, port), registry, store,
                                    authenticate=web.authenticator() if web else None,
                                    max_connections=args.max_connections)
    except (ValueError, OSError) as exc:
        print(f"whmcs-ticket-exporter: cannot listen on {args.listen_address}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    wrap_socket = web.socket_wrapper() if web is not None else None
    if wrap_socket is not None:
        server.socket = wrap_socket(server.socket)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve(server)
    log.info("whmcs-ticket-exporter %s listening on %s, polling %s", __version__, args.listen_address,
             ", ".join(f"{i.name} every {i.poll_interval:g}s" for i in config.installations))
    start_pollers(pollers, stop)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


def open_state(path: str, config: Config) -> StateStore:
    """The state store under `path`, with the state of installations no longer configured dropped."""
    state = StateStore.open(path)
    state.keep_only(installation_key(i) for i in config.installations)
    log.info("state: %s", state.path)
    return state


def run_once(pollers: list[InstallationPoller], registry: CollectorRegistry, simulator: object | None) -> int:
    ok = True
    for poller in pollers:
        snap = poller.poll_once()
        if not snap.up:
            ok = False
            log.error("whmcs=%s: poll failed: %s", snap.name, snap.error)
    sys.stdout.write(generate_latest(registry).decode("utf-8"))
    sys.stdout.flush()
    if simulator is not None:
        simulator.stop()  # type: ignore[attr-defined]
    return 0 if ok else 1
