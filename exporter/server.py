"""The HTTP side: /metrics, the landing page, /healthz and /readyz.

A threading HTTP server from the standard library. Handlers only read the
snapshot store, so they answer in milliseconds whatever WHMCS does. TLS and
basic auth come from `--web.config.file` (see `web_config`).
"""

from __future__ import annotations

import errno
import html
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.connections import DEFAULT_MAX_CONNECTIONS, ConnectionTable, connection_limit
from exporter.exposition import ExpositionCache
from exporter.snapshot import SnapshotStore

log = logging.getLogger(__name__)


# A GET body (which no client of ours sends) is read and thrown away up to this size, refused beyond it.
MAX_GET_BODY = 64 * 1024
# A client gets this long to complete the TLS handshake, in its own thread (see finish_request).
HANDSHAKE_TIMEOUT = 10.0


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A flood fills the accept queue; a deep one keeps a scrape's SYN from being dropped (a 1 s retransmit).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, store: SnapshotStore,
                 authenticate: Callable[[str | None], bool] | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.exposition = ExpositionCache(registry, store)
        self.store = store
        self.authenticate = authenticate
        self.connections = ConnectionTable(connection_limit(max_connections))
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def get_request(self) -> tuple[Any, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            # Out of file descriptors: the listening socket stays readable, so without a pause the loop would spin
            # at 100% CPU; an idle connection gives its descriptor back for the next accept().
            if exc.errno in (errno.EMFILE, errno.ENFILE) and not self.connections.make_room():
                time.sleep(0.05)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.admit(request):
            log.debug("connection from %s refused: %d connections busy", client_address[0], len(self.connections))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.remove(request)
        super().shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's thread: do the TLS handshake here, never in the accept loop.

        With TLS the listening socket is wrapped with do_handshake_on_connect=False
        (web_config.socket_wrapper), so accept() returns at once and a slow or
        silent client only ever holds its own thread, for HANDSHAKE_TIMEOUT at most.
        """
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(HANDSHAKE_TIMEOUT)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as exc:  # socket.timeout is an OSError
                log.debug("TLS handshake with %s failed: %s", client_address[0], exc)
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for every dropped connection: one debug line instead.
        log.debug("connection from %s ended: %s", client_address[0], sys.exc_info()[1])


class Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    # An idle keep-alive connection gives its thread back after this long.
    timeout = 60
    # Headers and body are separate writes; with Nagle on, the body waits for the scraper's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = f"whmcs-ticket-exporter/{__version__}"

    def handle_one_request(self) -> None:
        self.server.connections.waiting(self.connection)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            self.server.connections.answering(self.connection)
        return parsed

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        try:
            if not self._discard_body():
                return
            path = self.path.split("?", 1)[0]
            # Liveness/readiness probes (Docker HEALTHCHECK, kubelet) carry no credentials and disclose
            # nothing, so basic auth guards every path but these two.
            if path not in ("/healthz", "/readyz") and not self._authenticated():
                self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                           {"WWW-Authenticate": 'Basic realm="whmcs-ticket-exporter"'})
                return
            if path == "/metrics":
                body, content_type = self.server.exposition.body(self.headers.get("Accept", ""))
                self._send(200, body, content_type)
            elif path == "/healthz":
                self._send(200, b"OK\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                pending = [s.name for s in self.server.store.all() if not s.completed_a_poll]
                if pending:
                    # Installation names only to those who may see /metrics; a probe needs the status alone.
                    names = f": {', '.join(pending)}" if self._authenticated() else ""
                    self._send(503, f"waiting for first poll{names}\n".encode("utf-8", "replace"),
                               "text/plain; charset=utf-8")
                else:
                    self._send(200, b"OK\n", "text/plain; charset=utf-8")
            elif path == "/":
                self._send(200, landing_page(self.server.store).encode("utf-8", "replace"), "text/html; charset=utf-8")
            else:
                self._send(404, b"Not Found: try /metrics\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:  # never let a handler bug take the exporter down
            log.exception("error answering %s", self.path)
            try:
                self._send(500, b"internal error, see the exporter's log\n", "text/plain; charset=utf-8")
            except OSError:
                pass

    def _authenticated(self) -> bool:
        return self.server.authenticate is None or self.server.authenticate(self.headers.get("Authorization"))

    def _discard_body(self) -> bool:
        """Read a GET's body, if it has one, so it is never taken for the next request on the connection (request
        smuggling behind a proxy); a chunked or oversized one is refused and the connection closed."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") is not None or (length is not None and not length.isdigit()):
            self.close_connection = True
            self._send(400, b"Bad Request: a GET has no body\n", "text/plain; charset=utf-8", {"Connection": "close"})
            return False
        if length is not None and int(length) > MAX_GET_BODY:
            self.close_connection = True
            self._send(413, b"Request body too large\n", "text/plain; charset=utf-8", {"Connection": "close"})
            return False
        if length:
            self.rfile.read(int(length))
        return True

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("http %s %s", self.address_string(), format % args)


def landing_page(store: SnapshotStore) -> str:
    rows = []
    now = time.time()
    for snap in store.all():
        if not snap.completed_a_poll:
            state = "waiting for the first poll"
        elif snap.up:
            state = "OK"
        else:
            state = "FAILED: " + (snap.error or "unknown error")
        if snap.backoff_until and snap.backoff_until > now:
            until = time.strftime("%H:%M:%S", time.gmtime(snap.backoff_until))
            state += f" (paused for {snap.backoff_reason} until {until} UTC)"
        last = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snap.last_poll_time)) if snap.last_poll_time else "-"
        views = ", ".join(f"{n}: {'ok' if v.success else html.escape(v.reason or 'failed')}"
                          for n, v in sorted(snap.collectors.items()))
        rows.append(f"<tr><td>{html.escape(snap.name)}</td><td>{last}</td><td>{html.escape(state)}</td>"
                    f"<td>{views}</td></tr>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>WHMCS ticket exporter</title></head><body>"
            f"<h1>WHMCS ticket exporter</h1><p>Version {html.escape(__version__)}</p>"
            "<p><a href='/metrics'>Metrics</a> &middot; <a href='/healthz'>Health</a> &middot; "
            "<a href='/readyz'>Readiness</a></p>"
            "<table border='1' cellpadding='4'><tr><th>installation</th><th>last poll</th><th>result</th>"
            f"<th>collectors</th></tr>{''.join(rows)}</table></body></html>\n")


def parse_listen_address(address: str) -> tuple[str, int]:
    """`:9720`, `0.0.0.0:9720`, `[::1]:9720` -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address must look like :9720 or 127.0.0.1:9720, got {address!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def serve(server: ExporterHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http",
                              daemon=True)
    thread.start()
    return thread
