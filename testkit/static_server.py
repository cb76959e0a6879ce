"""The scrape baseline: a trivial ThreadingHTTPServer (HTTP/1.1, keep-alive) serving a fixed body.

`start_static_server(size)` runs it in a process of its own (`python -m testkit.static_server SIZE
[nodelay]`, which prints the port on stdout and serves until killed), so it shares no interpreter lock with
the caller: the floor of the exporter's own stack (http.server) on the same machine in the same run.
By default the handler keeps http.server's defaults (Nagle's algorithm on: the body, written after the
headers, waits for the client's delayed ACK, ~40 ms on Linux); `nodelay` sets TCP_NODELAY
(BaseHTTPRequestHandler.disable_nagle_algorithm), as the exporter's handler does.
"""

from __future__ import annotations

import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_server(size: int, nodelay: bool = False) -> ThreadingHTTPServer:
    line = b"# static baseline body line for the scrape benchmark of whmcs-ticket-exporter\n"
    body = (line * (size // len(line) + 1))[:size]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = nodelay

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    return Server(("127.0.0.1", 0), Handler)


def start_static_server(size: int, nodelay: bool = False) -> tuple[subprocess.Popen, str]:
    """The baseline serving `size` bytes in its own process, and its /metrics URL (listening on return)."""
    args = [sys.executable, "-m", "testkit.static_server", str(size), *(["nodelay"] if nodelay else [])]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    if not port:
        proc.kill()
        raise RuntimeError(f"static server exited with {proc.wait()} before printing its port")
    return proc, f"http://127.0.0.1:{port}/metrics"


def main() -> None:
    server = make_server(int(sys.argv[1]), nodelay=sys.argv[2:] == ["nodelay"])
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
