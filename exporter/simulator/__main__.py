"""`python -m exporter.simulator`: run a fake WHMCS for manual testing and demos until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import hashlib
import signal
import threading

from .http import Simulator
from .world import World


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tickets", type=int, default=200)
    p.add_argument("--timezone", default="America/Chicago")
    p.add_argument("--identifier", default="sim-identifier")
    p.add_argument("--secret", default="sim-secret")
    p.add_argument("--admin-username", default="admin")
    p.add_argument("--admin-password", default="admin-password")
    p.add_argument("--accesskey", default=None)
    p.add_argument("--allow-ip", action="append", default=None,
                   help="API IP allow-list entry (repeatable; '*' = everyone). Default: loopback only.")
    p.add_argument("--style", choices=("whmcs", "bearer"), default="whmcs")
    p.add_argument("--token-ttl", type=float, default=3600.0)
    p.add_argument("--static-token", action="append", default=[])
    p.add_argument("--live", action="store_true", help="keep tickets arriving, being answered and closed")
    p.add_argument("--live-interval", type=float, default=3.0)
    p.add_argument("--latency", type=float, default=0.0,
                   help="seconds every API call takes, as on a slow WHMCS (0.6 is common on shared hosting)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    world = World.generate(seed=a.seed, tickets=a.tickets, tz=a.timezone)
    sim = Simulator(world=world, style=a.style, identifier=a.identifier, secret=a.secret,
                    admin_username=a.admin_username, admin_password=a.admin_password, accesskey=a.accesskey,
                    allow_ips=a.allow_ip or ("127.0.0.1", "::1"), host=a.host, port=a.port, live=a.live,
                    live_interval=a.live_interval, token_ttl=a.token_ttl, static_tokens=a.static_token,
                    latency=a.latency)
    # Handlers first: a caller may send SIGTERM as soon as it has read the URL line.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.start()
    md5 = hashlib.md5(a.admin_password.encode()).hexdigest()
    if a.style == "whmcs":
        print(f"WHMCS simulator: {sim.url}/includes/api.php  ({len(world.tickets)} tickets, tz {a.timezone}, "
              f"{a.latency:g} s per call)")
        print(f"  API credentials: identifier={a.identifier} secret={a.secret}")
        print(f"  legacy login:    username={a.admin_username} password={md5} (md5 of {a.admin_password})")
        if a.accesskey:
            print(f"  accesskey:       {a.accesskey}")
    else:
        print(f"Bearer gateway simulator: {sim.url}{sim.base_path}<action>  token: {sim.url}/oauth/token")
        print(f"  client_id={a.identifier} client_secret={a.secret} "
              f"username={a.admin_username} password={a.admin_password}")
        for t in a.static_token:
            print(f"  static token:    {t}")
    print(f"  control:         {sim.url}/_sim/(fault|clear|calls|truth|unban|world)", flush=True)

    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
