"""Bearer-token gateways (Keliweb API v2 style): action paths, the token lifecycle, 401 handling, secrets,
gateway field differences, and capabilities a gateway lacks.

The token lifecycle runs against a scripted token endpoint with a fake clock (no waiting); the transport
and capability tests run the client and poller in-process against the simulator in bearer mode.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import pytest

from exporter.bearer import GRANT_ACTION, OAuth2PasswordGrant, StaticToken, kebab_case, parse_grant
from exporter.client import WhmcsClient
from exporter.collectors.ticket_lists import parse_ticket
from exporter.config import Auth, BearerToken, InstallationConfig, OAuth2Login, Secret
from exporter.errors import AuthError, ConnectionFailed, InvalidResponse, RateLimited, Unsupported
from exporter.poller import InstallationPoller
from exporter.simulator import Simulator
from exporter.snapshot import SnapshotStore

CLIENT_SECRET = "client-secret-XYZ123"
PASSWORD = "hunter2-password"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """A scripted OAuth2 token endpoint: answers from `script` (by grant type) or issues tokens."""

    def __init__(self, ttl: float = 100.0) -> None:
        self.ttl = ttl
        self.grants: list[str] = []
        self.script: dict[str, list[tuple[int, dict | str]]] = {"password": [], "refresh_token": []}
        self.issued = 0

    def __call__(self, url: str, data: Mapping[str, str]) -> tuple[int, bytes, float | None]:
        kind = data["grant_type"]
        self.grants.append(kind)
        if self.script[kind]:
            status, body = self.script[kind].pop(0)
            if isinstance(body, Exception):
                raise body
            return status, (body if isinstance(body, str) else json.dumps(body)).encode(), None
        self.issued += 1
        return 200, json.dumps({"token_type": "Bearer", "expires_in": self.ttl, "access_token": f"access-{self.issued}",
                                "refresh_token": f"refresh-{self.issued}"}).encode(), None


def oauth(endpoint: TokenEndpoint, clock: Clock, records: list | None = None,
          password: Secret | None = None) -> OAuth2PasswordGrant:
    return OAuth2PasswordGrant("https://gw.example/oauth/token", "client-1", Secret(inline=CLIENT_SECRET), "api-user",
                               password or Secret(inline=PASSWORD), post=endpoint,
                               record=(lambda a, r: records.append((a, r))) if records is not None else None,
                               clock=clock, retry_after=1800.0, name="gw")


# -- names ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action, path", [
    ("GetTicketCounts", "get-ticket-counts"), ("GetTickets", "get-tickets"), ("GetTicket", "get-ticket"),
    ("GetSupportDepartments", "get-support-departments"), ("GetSupportStatuses", "get-support-statuses"),
    ("GetAPIVersion", "get-api-version"),
])
def test_kebab_case(action: str, path: str) -> None:
    assert kebab_case(action) == path


# -- token lifecycle --------------------------------------------------------------------------------

def test_token_is_reused_and_refreshed_at_80_percent_of_its_lifetime() -> None:
    endpoint, clock, records = TokenEndpoint(ttl=100), Clock(), []
    source = oauth(endpoint, clock, records)
    assert source.token() == "access-1"
    assert endpoint.grants == ["password"]
    clock.now += 79
    assert source.token() == "access-1"  # not yet due: no call
    assert endpoint.grants == ["password"]
    clock.now += 2  # 81 % of the lifetime
    assert source.token() == "access-2"
    assert endpoint.grants == ["password", "refresh_token"]
    for _ in range(10):  # ten more lifetimes: one refresh each, never a new login
        clock.now += 81
        source.token()
    assert endpoint.grants.count("password") == 1
    assert endpoint.grants.count("refresh_token") == 11
    assert records == [(GRANT_ACTION, None)] * 12


def test_refused_refresh_falls_back_to_one_password_grant() -> None:
    endpoint, clock = TokenEndpoint(ttl=100), Clock()
    source = oauth(endpoint, clock)
    source.token()
    refused = {"error": "invalid_grant", "message": "The refresh token is invalid."}
    endpoint.script["refresh_token"].append((400, refused))
    clock.now += 90
    assert source.token() == "access-2"
    assert endpoint.grants == ["password", "refresh_token", "password"]


def test_unreachable_endpoint_keeps_the_valid_token_and_retries_later() -> None:
    endpoint, clock = TokenEndpoint(ttl=100), Clock()
    source = oauth(endpoint, clock)
    source.token()
    endpoint.script["refresh_token"].append((0, ConnectionFailed(GRANT_ACTION, "connection refused")))
    clock.now += 85
    assert source.token() == "access-1"  # still valid for 15 s
    assert source.token() == "access-1"  # no second attempt right away
    assert endpoint.grants == ["password", "refresh_token"]
    clock.now += 10
    assert source.token() == "access-2"
    assert endpoint.grants == ["password", "refresh_token", "refresh_token"]


def test_expired_token_and_unreachable_endpoint_fail_the_call_without_a_login() -> None:
    endpoint, clock = TokenEndpoint(ttl=100), Clock()
    source = oauth(endpoint, clock)
    source.token()
    endpoint.script["refresh_token"].append((503, "<html>down</html>"))
    clock.now += 200
    with pytest.raises(Exception) as info:
        source.token()
    assert not isinstance(info.value, AuthError)  # the endpoint's load, not a refusal: no 30-minute pause
    assert endpoint.grants == ["password", "refresh_token"]


def test_refused_password_grant_is_not_repeated_within_the_backoff_unless_credentials_change() -> None:
    endpoint, clock, records = TokenEndpoint(), Clock(), []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "password")
        with open(path, "w") as handle:
            handle.write("wrong-password")
        source = oauth(endpoint, clock, records, password=Secret(path=path))
        endpoint.script["password"].append(
            (400, {"error": "invalid_grant", "message": "The user credentials were incorrect: wrong-password"}))
        with pytest.raises(AuthError) as first:
            source.token()
        assert "wrong-password" not in str(first.value) and "invalid_grant" in str(first.value)
        assert first.value.action == GRANT_ACTION
        clock.now += 60
        with pytest.raises(AuthError) as second:
            source.token()
        assert "not retried" in str(second.value)
        assert endpoint.grants == ["password"]  # one failed login, not two
        assert records == [(GRANT_ACTION, "auth")]
        with open(path, "w") as handle:
            handle.write(PASSWORD)  # rotated: tried at once
        assert source.token() == "access-1"
        assert endpoint.grants == ["password", "password"]


@pytest.mark.parametrize("status, body, kind", [
    (401, {"error": "invalid_client", "message": f"Client authentication failed for {CLIENT_SECRET}"}, AuthError),
    (400, {"error": "invalid_grant", "error_description": f"bad password {PASSWORD}"}, AuthError),
    (404, "<html>no such page</html>", AuthError),
    (429, {"message": "Too Many Attempts."}, RateLimited),
    (200, {"token_type": "Bearer"}, InvalidResponse),
    (200, "<html>login</html>", InvalidResponse),
])
def test_token_endpoint_errors_are_typed_one_line_and_secret_free(status: int, body: object, kind: type) -> None:
    endpoint, clock = TokenEndpoint(), Clock()
    endpoint.script["password"].append((status, body))
    with pytest.raises(kind) as info:
        oauth(endpoint, clock).token()
    text = str(info.value)
    assert CLIENT_SECRET not in text and PASSWORD not in text and "\n" not in text
    assert text.startswith(f"{GRANT_ACTION}: HTTP {status}")


def test_parse_grant_accepts_a_numeric_string_lifetime_and_no_refresh_token() -> None:
    grant = parse_grant(200, b'{"token_type":"bearer","expires_in":"3600","access_token":"abc"}')
    assert (grant.access_token, grant.refresh_token, grant.expires_in) == ("abc", None, 3600.0)


# -- the client against the simulator's gateway -----------------------------------------------------

def oauth2_login(sim: Simulator, **overrides: object) -> OAuth2Login:
    values: dict = dict(token_url=sim.url + "/oauth/token", client_id=sim.identifier,
                        client_secret=Secret(inline=sim.secret), username=sim.admin_username,
                        password=Secret(inline=sim.admin_password))
    return OAuth2Login(**{**values, **overrides})


def bearer_installation(sim: Simulator, auth: Auth | None = None) -> InstallationConfig:
    return InstallationConfig(name="gw", url=sim.url + "/api/v2/keliweb", auth=auth or oauth2_login(sim),
                              timezone=sim.world.tz_name, poll_interval=10.0, timeout=2.0)


@pytest.fixture
def gateway(simulators) -> Simulator:
    return simulators(style="bearer", tickets=40, token_ttl=3600)


def test_client_posts_kebab_paths_with_a_bearer_header(gateway: Simulator) -> None:
    client = WhmcsClient(bearer_installation(gateway))
    answer = client.call("GetTicketCounts", {"includeCountsByStatus": "1"})
    assert answer["result"] == "success"
    client.call("GetTickets", {"limitnum": 1})
    assert gateway.grant_counts == {"password": 1, "refresh_token": 0}
    requests, failures = client.stats.totals()
    assert requests == {GRANT_ACTION: 1, "GetTicketCounts": 1, "GetTickets": 1}
    assert failures == {}
    sent = gateway.calls_for("GetTicketCounts")[0].params
    assert "action" not in sent and "responsetype" not in sent and "identifier" not in sent


def test_a_401_gets_one_new_token_and_one_retry(gateway: Simulator) -> None:
    client = WhmcsClient(bearer_installation(gateway))
    client.call("GetTickets", {"limitnum": 1})
    gateway.tokens.expire_all()  # the gateway forgets the token early (revoked, restarted)
    client.call("GetTickets", {"limitnum": 1})
    assert gateway.grant_counts == {"password": 1, "refresh_token": 1}
    requests, failures = client.stats.totals()
    assert requests["GetTickets"] == 3 and failures == {("GetTickets", "auth"): 1}


def test_a_second_401_is_an_auth_error_and_the_token_is_not_in_it(gateway: Simulator) -> None:
    client = WhmcsClient(bearer_installation(gateway))
    gateway.tokens.valid = lambda token: False  # every token refused, fresh or not
    with pytest.raises(AuthError) as info:
        client.call("GetTickets", {"limitnum": 1})
    assert info.value.status == 401
    # One login, one refresh after the 401, one retry: then the poller's auth back-off takes over.
    assert gateway.grant_counts == {"password": 1, "refresh_token": 1}
    assert len(gateway.calls_for("GetTickets")) == 2
    for value in client.secret_values(client.credentials()):
        assert value not in str(info.value)


def test_the_poller_pauses_after_a_refused_login_and_makes_no_second_attempt(gateway: Simulator) -> None:
    inst = bearer_installation(gateway, oauth2_login(gateway, password=Secret(inline="wrong")))
    clock = Clock(gateway.world.clock())
    poller = InstallationPoller(inst, SnapshotStore(["gw"]), clock=clock)
    snap = poller.poll_once()
    assert not snap.up and snap.backoff_reason == "auth"
    assert "wrong" not in (snap.error or "") and CLIENT_SECRET not in (snap.error or "")
    for _ in range(5):
        clock.now += 60
        poller.poll_once()
    assert [c.action for c in gateway.calls] == ["OAuthToken"]
    assert snap.failures == {(GRANT_ACTION, "auth"): 1}


def test_static_token_file_is_re_read_on_every_call(gateway: Simulator, tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("token-one\n")
    gateway.tokens.static_tokens = {"token-one"}
    client = WhmcsClient(bearer_installation(gateway, BearerToken(Secret(path=str(path)))))
    assert isinstance(client.tokens, StaticToken)
    client.call("GetTickets", {"limitnum": 1})
    path.write_text("token-two\n")
    gateway.tokens.static_tokens = {"token-two"}  # rotated: the old one is revoked
    client.call("GetTickets", {"limitnum": 1})
    assert gateway.grant_counts == {"password": 0, "refresh_token": 0}
    assert client.stats.totals()[1] == {}
    # A revoked token that was not rotated: one call, no pointless retry, an AuthError without the token.
    gateway.tokens.static_tokens = set()
    with pytest.raises(AuthError) as info:
        client.call("GetTickets", {"limitnum": 1})
    assert "token-two" not in str(info.value)
    assert len(gateway.calls_for("GetTickets")) == 3


def test_poller_notices_a_rotated_token_file_during_the_auth_backoff(gateway: Simulator, tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("revoked")
    gateway.tokens.static_tokens = {"good"}
    clock = Clock(gateway.world.clock())
    poller = InstallationPoller(bearer_installation(gateway, BearerToken(Secret(path=str(path)))),
                                SnapshotStore(["gw"]), clock=clock)
    assert poller.poll_once().backoff_reason == "auth"
    clock.now += 5
    path.write_text("good")
    assert poller.poll_once().up


# -- capabilities -----------------------------------------------------------------------------------

def test_missing_action_is_unsupported_and_counts_are_derived(gateway: Simulator) -> None:
    gateway.drop_actions({"GetTicketCounts"})
    client = WhmcsClient(bearer_installation(gateway))
    with pytest.raises(Unsupported):
        client.call("GetTicketCounts", {})
    now = gateway.world.clock()
    poller = InstallationPoller(bearer_installation(gateway), SnapshotStore(["gw"]), clock=lambda: now)
    snap = poller.poll_once()
    assert snap.up
    assert all(state.success for state in snap.collectors.values())
    counts = snap.collectors["counts"].part
    truth = gateway.world.truth(now)
    assert counts.derived
    # GetSupportStatuses lists configured statuses only: a title left on tickets after its status was deleted
    # (GetTicketCounts lists it) is missing from derived counts; active/awaiting still include its tickets' flags.
    configured = {s.title for s in gateway.world.statuses}
    assert dict(counts.by_status) == {k: v for k, v in truth["status_counts"].items() if k in configured}
    assert (counts.active, counts.awaiting, counts.flagged) == (truth["active"], truth["awaiting"], None)
    assert snap.collectors["oldest_awaiting"].part.age == truth["oldest_awaiting_age"]
    assert snap.failures == {("GetTicketCounts", "unsupported"): 1}


def test_an_unsupported_view_is_logged_once_not_every_poll(gateway: Simulator, caplog) -> None:
    gateway.drop_actions({"GetTickets"})
    clock = Clock(gateway.world.clock())
    poller = InstallationPoller(bearer_installation(gateway), SnapshotStore(["gw"]), clock=clock)
    with caplog.at_level(logging.DEBUG, logger="exporter.poller"):
        for _ in range(4):
            snap = poller.poll_once()
            clock.now += 10
    assert snap.collectors["oldest_awaiting"].reason == "unsupported"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "collector=oldest_awaiting" in r.message]
    assert len(warnings) == 1


# -- gateway field differences (seed 004) -----------------------------------------------------------

def test_gateway_ticket_with_ticketnum_and_integer_fields() -> None:
    raw = {"result": "success", "ticketid": 1, "ticketnum": "516757", "deptid": 1, "flag": 0,
           "date": "2016-01-01 06:26:29", "lastreply": "2016-01-01 06:30:16", "status": "Closed",
           "priority": "Medium"}
    row = parse_ticket(raw, ZoneInfo("UTC"))
    assert (row.id, row.tid, row.deptid) == (1, "516757", 1)
    assert parse_ticket({**raw, "ticketnum": 516757}, ZoneInfo("UTC")).tid == "516757"
    # The seed's own example still says tid, with every number a string.
    example = {**{k: str(v) for k, v in raw.items()}, "tid": "516757"}
    del example["ticketnum"]
    assert parse_ticket(example, ZoneInfo("UTC")) == row


def test_get_ticket_through_the_gateway_reads_ticketnum(gateway: Simulator) -> None:
    client = WhmcsClient(bearer_installation(gateway))
    ticket = next(iter(gateway.world.tickets.values()))
    answer = client.call("GetTicket", {"ticketid": ticket.id})
    assert "ticketnum" in answer and "tid" not in answer
    assert parse_ticket(answer, ZoneInfo(gateway.world.tz_name)).tid == ticket.tid
