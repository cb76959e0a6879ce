"""The scrape baseline: a trivial ThreadingHTTPServer (HTTP/1.1, keep-alive) serving a fixed body.

Run as `python -m bench.bench_static SIZE [nodelay]`; prints the port on stdout, serves until killed.
By default the handler keeps http.server's defaults, as the exporter's does (Nagle's algorithm on: the
body, written after the headers, waits for the client's delayed ACK, ~40 ms on Linux); `nodelay`
sets TCP_NODELAY (BaseHTTPRequestHandler.disable_nagle_algorithm) to show what that costs.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


def main() -> None:
    server = make_server(int(sys.argv[1]), nodelay=sys.argv[2:] == ["nodelay"])
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
