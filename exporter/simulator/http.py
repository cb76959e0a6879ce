"""The simulator's HTTP face: a threaded server speaking WHMCS's api.php (or a bearer-token gateway),
injectable faults that model what sits in front of real installations, a call log, and a small
`/_sim/...` control surface for tests that run the simulator out of process.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import api
from .auth import Auth, TokenStore
from .oops_page import oops_page
from .world import World

FAULT_KINDS = {"slow", "http_error", "html_200", "truncated", "garbage", "reset", "rate_limit", "json",
               "text_error", "oops"}
_SECRET_PARAMS = {"identifier", "secret", "username", "password", "accesskey", "client_secret",
                  "refresh_token"}
_ERROR_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1><p>The server is unhappy.</p></body></html>"
_MAINTENANCE = ("<!DOCTYPE html><html><head><title>Down for Maintenance</title></head><body>"
                "<h1>We'll be back soon</h1><p>WHMCS is being upgraded.</p></body></html>")


@dataclass(frozen=True, slots=True)
class CallRecord:
    time: float
    client_ip: str
    action: str
    params: dict
    http_status: int
    auth_ok: bool | None
    login_failed: bool


class Faults:
    """Thread-safe fault rules; each may target one action and may expire after `times` uses."""

    def __init__(self) -> None:
        self._rules: list[dict] = []
        self._lock = threading.Lock()

    def set(self, kind: str, action: str | None = None, times: int | None = None, **opts: object) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        with self._lock:
            self._rules.append({"kind": kind, "action": action, "times": times, **opts})

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def active(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def take(self, action: str) -> list[dict]:
        """Rules hitting this call: every matching "slow" plus the first other one; uses are counted."""
        hit: list[dict] = []
        with self._lock:
            for r in list(self._rules):
                if r["action"] is not None and r["action"].lower() != action.lower():
                    continue
                if r["kind"] != "slow" and any(h["kind"] != "slow" for h in hit):
                    continue
                hit.append(dict(r))
                if r["times"] is not None:
                    r["times"] -= 1
                    if r["times"] <= 0:
                        self._rules.remove(r)
        return hit


def _kebab_to_action(kebab: str) -> str | None:
    return api.canonical(kebab.replace("-", ""))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: Simulator

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Open keep-alive connections, so that stop() ends them as a dying WHMCS would.
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.connections_lock:
            connections, self.connections = self.connections, set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Apache/nginx in front of WHMCS
    # Headers and body go out as separate writes; with Nagle on, clients' delayed ACKs add ~40 ms a call.
    disable_nagle_algorithm = True
    server_version = "Apache"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests and benchmarks would drown in access logs

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # ---- plumbing ---------------------------------------------------------------------------------

    def _read_params(self) -> dict[str, str]:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type", "")
        self._json_body: dict = {}
        if ctype.startswith("application/json"):
            # Only the /_sim control surface takes JSON; WHMCS itself would ignore such a body.
            try:
                loaded = json.loads(raw or b"{}")
            except ValueError:
                loaded = {}
            self._json_body = loaded if isinstance(loaded, dict) else {}
        elif ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=email_policy).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    content = part.get_content()
                    params[str(name)] = content if isinstance(content, str) else content.decode()
        elif raw:
            # PHP keeps the last of repeated keys.
            for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items():
                params[k] = v[-1]
        return params

    def _client_ip(self) -> str:
        fwd = self.headers.get("X-Forwarded-For")
        if self.server.sim.trust_forwarded_for and fwd:
            return fwd.split(",")[0].strip()
        return self.client_address[0]

    def _send(self, status: int, body: bytes, ctype: str = "application/json; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self, partial: bytes | None) -> None:
        if partial is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(partial) * 2 + 10))
            self.end_headers()
            self.wfile.write(partial)
            self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- dispatch ---------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        sim = self.server.sim
        path = urlsplit(self.path).path
        params = self._read_params()
        if path.startswith("/_sim/"):
            status, body = sim.control(self.command, path, params, urlsplit(self.path).query, self._json_body)
            return self._send(status, json.dumps(body).encode())
        ip = self._client_ip()
        if sim.style == "bearer" and path == "/oauth/token":
            action = "OAuthToken"
        elif sim.style == "bearer" and path.startswith(sim.base_path):
            action = _kebab_to_action(path[len(sim.base_path):].strip("/")) or path
        elif sim.style == "whmcs" and path.endswith("/includes/api.php"):  # WHMCS may live in a subdir
            raw = params.get("action", "")
            action = api.canonical(raw) or raw
        else:
            return self._send(404, _ERROR_PAGE.format("404 Not Found").encode(), "text/html")

        rules = sim.faults.take(action)
        for r in rules:
            if r["kind"] == "slow":
                time.sleep(float(r.get("delay", 1.0)))
        fault = next((r for r in rules if r["kind"] != "slow"), None)
        if fault is not None and fault["kind"] not in ("truncated", "reset"):
            status = self._fault_answer(fault)
            return sim._log(ip, action, params, status, None, False)

        status, body, ctype, auth_ok, failed, headers = sim.answer(ip, action, path, params, self.headers)
        if fault is not None and fault["kind"] == "truncated":
            body = body[: len(body) // 2]
        # Logged before answering: a client that has its answer must find its call in the log.
        if fault is not None and fault["kind"] == "reset":
            sim._log(ip, action, params, 0, auth_ok, failed)
            return self._reset(None if fault.get("mode") == "empty" else body[: len(body) // 2])
        sim._log(ip, action, params, status, auth_ok, failed)
        self._send(status, body, ctype, headers)

    def _fault_answer(self, f: dict) -> int:
        kind = f["kind"]
        if kind == "http_error":
            status = int(f.get("status", 500))
            body = f.get("body") or _ERROR_PAGE.format(f"{status} Error")
            self._send(status, str(body).encode(), "text/html; charset=utf-8")
        elif kind == "oops":  # output before WHMCS's answer: its generic error page, the cause far down
            status = 500
            page = oops_page(extra=str(f.get("echo", "")))
            self._send(500, page.encode(), "text/html; charset=utf-8")
        elif kind == "html_200":
            status = 200
            self._send(200, str(f.get("body") or _MAINTENANCE).encode(), "text/html; charset=utf-8")
        elif kind == "garbage":
            status = 200
            self._send(200, str(f.get("body") or "Warning: mysqli_connect(): (HY000/2002) ...\x00\x01{{{").encode(),
                       "text/html; charset=utf-8")
        elif kind == "rate_limit":
            status = int(f.get("status", 429))
            hdrs = {"Retry-After": str(f["retry_after"])} if f.get("retry_after") is not None else {}
            if status == 429:
                self._send(429, b'{"message":"Rate Limit Exceeded"}', headers=hdrs)
            else:
                self._send(status, _ERROR_PAGE.format(f"{status} Service Unavailable").encode(), "text/html", hdrs)
        elif kind == "json":
            status = int(f.get("status", 200))
            self._send(status, json.dumps(f.get("body")).encode())
        else:  # text_error
            status = int(f.get("status", 403))
            self._send(status, api.text_error(str(f.get("message", "Access Denied"))), "text/plain; charset=utf-8")
        return status


class Simulator:
    """A running fake WHMCS: `Simulator(...).start()`, then point the exporter at `sim.url`.

    `clock` drives ban windows and token expiry (the world has its own clock for ticket times);
    `latency` is the seconds every API call takes (the world's knob, set here for convenience);
    `ban_exempt_ips` never get banned, as WHMCS's ban whitelist.
    """

    def __init__(self, world: World | None = None, style: str = "whmcs", identifier: str = "sim-identifier",
                 secret: str = "sim-secret", admin_username: str = "admin",
                 admin_password: str = "admin-password", accesskey: str | None = None,
                 allow_ips: Iterable[str] = ("127.0.0.1", "::1"), ban_window: float = 1800.0,
                 host: str = "127.0.0.1", port: int = 0, live: bool = False, seed: int = 1,
                 tickets: int = 200, tz: str = "America/Chicago", token_ttl: float = 3600.0,
                 refresh_ttl: float = 10 * 86400.0, static_tokens: Iterable[str] = (),
                 base_path: str = "/api/v2/keliweb/", gateway_ticketnum: bool | None = None,
                 trust_forwarded_for: bool = False, live_interval: float = 3.0,
                 clock: Callable[[], float] = time.time, call_log_size: int = 100_000,
                 ban_exempt_ips: Iterable[str] = (), latency: float | None = None):
        if style not in ("whmcs", "bearer"):
            raise ValueError("style must be 'whmcs' or 'bearer'")
        self.world = world if world is not None else World.generate(seed=seed, tickets=tickets, tz=tz)
        if latency is not None:
            self.world.latency = latency  # seconds per API call (see World.latency)
        self.style, self.host, self._port = style, host, port
        self.base_path = "/" + base_path.strip("/") + "/"
        self.gateway_ticketnum = style == "bearer" if gateway_ticketnum is None else gateway_ticketnum
        self.trust_forwarded_for = trust_forwarded_for
        self.identifier, self.secret = identifier, secret
        self.admin_username, self.admin_password = admin_username, admin_password
        self.auth = Auth(identifier, secret, admin_username, admin_password, accesskey, allow_ips,
                         ban_window, ban_exempt_ips=ban_exempt_ips, clock=clock)
        self.tokens = TokenStore(identifier, secret, admin_username, admin_password, token_ttl, refresh_ttl,
                                 static_tokens, clock=clock)
        self.faults = Faults()
        self.dropped: set[str] = set()
        self.live, self.live_interval = live, live_interval
        self._calls: deque[CallRecord] = deque(maxlen=call_log_size)
        self._calls_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Simulator:
        self._server = _Server((self.host, self._port), _Handler)
        self._server.sim = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="whmcs-sim",
                                        daemon=True)
        self._thread.start()
        if self.live:
            self.world.start_live(self.live_interval)
        return self

    def stop(self) -> None:
        self.world.stop_live()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ---- switches ---------------------------------------------------------------------------------

    def deny_actions(self, actions: Iterable[str]) -> None:
        """Actions the API role lacks (403 Invalid Permissions); replaces the previous set."""
        self.auth.denied = set(actions)

    def drop_actions(self, actions: Iterable[str]) -> None:
        """Actions this installation lacks: 404 on the gateway, "Command Not Found" on api.php."""
        self.dropped = {a.lower() for a in actions}

    def unban(self, ip: str | None = None) -> None:
        self.auth.unban(ip)

    @property
    def grant_counts(self) -> dict[str, int]:
        return dict(self.tokens.grant_counts)

    # ---- call log ---------------------------------------------------------------------------------

    def _log(self, ip: str, action: str, params: dict, status: int, auth_ok: bool | None, failed: bool) -> None:
        safe = {k: ("***" if k in _SECRET_PARAMS else v) for k, v in params.items()}
        with self._calls_lock:
            self._calls.append(CallRecord(time.time(), ip, action, safe, status, auth_ok, failed))

    @property
    def calls(self) -> list[CallRecord]:
        with self._calls_lock:
            return list(self._calls)

    def calls_for(self, action: str) -> list[CallRecord]:
        return [c for c in self.calls if c.action.lower() == action.lower()]

    def failed_logins(self) -> list[float]:
        return [c.time for c in self.calls if c.login_failed]

    def reset_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    # ---- answering --------------------------------------------------------------------------------

    def answer(self, ip: str, action: str, path: str, params: dict[str, str],
               headers: object) -> tuple[int, bytes, str, bool | None, bool, dict[str, str]]:
        """(status, body, content type, auth_ok, login_failed, extra headers) for one API request."""
        if self.style == "bearer":
            return self._answer_bearer(action, params, headers)
        plain = "text/plain; charset=utf-8"
        if not params.get("action"):
            return 400, api.text_error("No API action specified"), plain, None, False, {}
        res = self.auth.check(ip, params)
        if not res.ok:
            return 403, api.text_error(res.message), plain, False, res.login_failed, {}
        rtype = params.get("responsetype")
        if action.lower() in self.dropped:
            status, body = api.error("Command Not Found")
        elif msg := self.auth.permission(params["action"]):
            return 403, api.text_error(msg), plain, True, False, {}
        else:
            status, body = api.handle(self.world, params["action"], params, self.gateway_ticketnum)
        ctype, data = api.render(body, rtype, params["action"])
        return status, data, ctype, True, False, {}

    def _answer_bearer(self, action: str, params: dict[str, str],
                       headers: object) -> tuple[int, bytes, str, bool | None, bool, dict[str, str]]:
        if action == "OAuthToken":
            status, body, failed = self.tokens.grant(params)
            return status, api.to_json(body), "application/json", status == 200, failed, {}
        if api.canonical(action) is None or action.lower() in self.dropped:
            return 404, b'{"message":"Not Found"}', "application/json", None, False, {}
        authz = headers.get("Authorization", "") if hasattr(headers, "get") else ""
        token = authz[7:].strip() if authz.lower().startswith("bearer ") else ""
        if not self.tokens.valid(token):
            return 401, b'{"message":"Unauthenticated."}', "application/json", False, False, {}
        if msg := self.auth.permission(action):
            return 403, api.to_json({"result": "error", "message": msg}), "application/json", True, False, {}
        status, body = api.handle(self.world, action, params, self.gateway_ticketnum)
        return status, api.to_json(body), "application/json", True, False, {}

    # ---- control surface --------------------------------------------------------------------------

    def control(self, method: str, path: str, params: dict[str, str], query: str,
                payload: dict) -> tuple[int, object]:
        """`/_sim/...`: fault, clear, calls, reset_calls, truth, unban, world (switches)."""
        name = path[len("/_sim/"):].strip("/")
        data = payload or params
        if name == "fault" and method == "POST":
            opts = {k: v for k, v in data.items() if k not in ("kind", "action", "times")}
            times = data.get("times")
            self.faults.set(str(data.get("kind")), data.get("action"), int(times) if times else None, **opts)
            return 200, {"ok": True, "faults": self.faults.active()}
        if name == "clear" and method == "POST":
            self.faults.clear()
            return 200, {"ok": True}
        if name == "calls":
            return 200, [asdict(c) for c in self.calls]
        if name == "reset_calls" and method == "POST":
            self.reset_calls()
            return 200, {"ok": True}
        if name == "unban" and method == "POST":
            self.unban(data.get("ip"))
            return 200, {"ok": True}
        if name == "truth":
            q = {k: v[-1] for k, v in parse_qs(query).items()}
            now = float(q.get("now") or self.world.clock())
            return 200, _json_keys(self.world.truth(now))
        if name == "world" and method == "POST":
            return 200, self._switch(data)
        return 404, {"error": f"unknown control {method} {path}"}

    def _switch(self, data: dict) -> dict:
        w = self.world
        with w.lock:
            for key in ("counts_disabled", "shuffle_ties", "version", "api_admin_departments", "escape_names"):
                if key in data:
                    setattr(w, key, data[key])
            if "escape_actions" in data:
                w.escape_actions = frozenset(data["escape_actions"])
        if "deny_actions" in data:
            self.deny_actions(data["deny_actions"])
        if "drop_actions" in data:
            self.drop_actions(data["drop_actions"])
        return {"ok": True, "counts_disabled": w.counts_disabled, "shuffle_ties": w.shuffle_ties,
                "version": w.version, "api_admin_departments": w.api_admin_departments,
                "escape_names": w.escape_names, "escape_actions": sorted(w.escape_actions),
                "deny_actions": sorted(self.auth.denied), "drop_actions": sorted(self.dropped)}


def _json_keys(obj: object) -> object:
    if isinstance(obj, dict):
        return {str(k): _json_keys(v) for k, v in obj.items()}
    return obj
