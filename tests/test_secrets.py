"""Credentials never leak: not into the log, /metrics, the landing page, nor any exception text.

Every failure path runs with distinctive secret values, including answers that
echo the request back (as WAF block pages and PHP debug pages do). The MD5 of
the legacy password (what WHMCS's legacy login receives) is a secret too.
"""

from __future__ import annotations

import hashlib

import pytest
import requests

from exporter.client import WhmcsClient
from exporter.config import AdminLogin, ApiCredentials, Auth, InstallationConfig, Secret
from exporter.errors import WhmcsError
from exporter.simulator import Simulator
from testkit.reliability import start, wait_until, write_secret

IDENT = "IDENT-7f3a9c1e-unique"
SECRET = "SECRET-b41d-8e2f-unique"
WRONG = "WRONGSECRET-55aa-unique"
PASSWORD = "PASSWORD-c0ffee-unique"
ACCESSKEY = "ACCESSKEY-d00d-unique"
MD5 = hashlib.md5(PASSWORD.encode()).hexdigest()
ALL = (IDENT, SECRET, WRONG, PASSWORD, ACCESSKEY, MD5)
# What each installation sends (and its raw password): an echoing page can only repeat those.
SENT = {"api": (IDENT, SECRET, ACCESSKEY), "legacy": (PASSWORD, MD5, ACCESSKEY)}


def faults(echo: str) -> list[tuple[str, dict]]:
    return [
        ("slow", {"delay": 0.6}), ("reset", {}), ("reset", {"mode": "empty"}), ("truncated", {}), ("garbage", {}),
        ("http_error", {"status": 500, "body": f"<html><title>Blocked {echo}</title>{echo}</html>"}),
        ("http_error", {"status": 502}), ("html_200", {"body": f"<html><title>Maintenance</title>{echo}</html>"}),
        ("rate_limit", {"status": 429, "retry_after": "1"}),
        ("json", {"body": {"result": "error", "message": f"Authentication Failed for {echo}"}, "status": 403}),
        ("json", {"body": {"result": "error", "message": f"Database error near '{echo}'"}}),
        ("json", {"body": {"result": "success", "allActive": echo}}),
        ("text_error", {"message": f"Invalid IP 127.0.0.1 {echo}"}),
    ]


def leaks(text: str) -> list[str]:
    return [s for s in ALL if s in text]


@pytest.mark.process
@pytest.mark.parametrize("style", ["api", "legacy"])
def test_no_secret_anywhere(tmp_path, style):
    d = str(tmp_path)
    echo = " ".join(SENT[style])
    with Simulator(tickets=30, identifier=IDENT, secret=SECRET, admin_username="admin", admin_password=PASSWORD,
                   accesskey=ACCESSKEY, allow_ips=(), ban_window=2.0) as sim:
        secret_file = write_secret(d, "secret", SECRET if style == "api" else PASSWORD)
        common = {"name": "w", "url": sim.url, "timezone": sim.world.tz_name, "poll_interval": "0.5s",
                  "timeout": "0.3s", "max_age": "2s", "auth_backoff": "1s", "api_accesskey": ACCESSKEY}
        if style == "api":
            inst = {"api_identifier": IDENT, "api_secret_file": secret_file, **common}
        else:
            inst = {"username": "admin", "password_file": secret_file, **common}
        texts: list[str] = []
        with start(d, [inst]) as proc:
            def polled_twice() -> None:
                # The exporter's own count: the simulator does not log calls whose client hung up (timeouts).
                def count() -> float:
                    return proc.scrape().get("whmcs_exporter_polls_total", whmcs="w") or 0.0
                start_count = count()
                wait_until(lambda: count() >= start_count + 2, what="two more polls")

            def grab() -> None:
                texts.extend([requests.get(proc.base + "/metrics", timeout=5).text,
                              requests.get(proc.base + "/", timeout=5).text])

            wait_until(lambda: proc.scrape().get("whmcs_up", whmcs="w") == 1.0, what="up")
            for kind, opts in faults(echo):
                sim.faults.set(kind, action="GetTicketCounts", **opts)
                polled_twice()
                grab()
                sim.faults.clear()
            # Wrong credentials (the wrong value is a secret too), then permission refusals.
            write_secret(d, "secret", WRONG if style == "api" else "not-the-password")
            wait_until(lambda: any(c.login_failed for c in sim.calls), what="a failed login")
            grab()
            write_secret(d, "secret", SECRET if style == "api" else PASSWORD)
            wait_until(lambda: proc.scrape().get("whmcs_up", whmcs="w") == 1.0, what="up again")
            sim.deny_actions(["GetTickets", "GetTicketCounts"])
            polled_twice()
            grab()
            sim.deny_actions([])
            log = proc.log()
        assert "Blocked" in log and "Database error near" in log  # the echoing answers were logged ...
        assert "***" in log  # ... with the secrets scrubbed
        assert leaks(log) == [], log
        for text in texts:
            assert leaks(text) == [], text

        # Exception texts, straight from the client.
        if style == "api":
            auth: Auth = ApiCredentials(Secret(inline=IDENT), Secret(inline=SECRET), Secret(inline=ACCESSKEY))
        else:
            auth = AdminLogin("admin", Secret(inline=PASSWORD), Secret(inline=ACCESSKEY))
        config = InstallationConfig(name="w", url=sim.url, auth=auth, timeout=0.3, poll_interval=1.0)
        client = WhmcsClient(config)
        errors: list[WhmcsError] = []
        for kind, opts in faults(echo):
            sim.faults.set(kind, action="GetTicketCounts", times=1, **opts)
            try:
                client.call("GetTicketCounts", {})
            except WhmcsError as exc:
                errors.append(exc)
            sim.faults.clear()
        assert len(errors) == len(faults(echo)) - 1  # the wrong-shape success answer is the view's business
        for exc in errors:
            assert leaks(str(exc)) == [] and leaks(repr(exc)) == [] and leaks(exc.message) == [], repr(exc)
            assert leaks(" ".join(map(str, exc.args))) == []
