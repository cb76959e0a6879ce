"""A hostile WHMCS stand-in: a proxy in front of the simulator that answers chosen actions the nasty way.

`HostileWhmcs(sim)` forwards every call to the simulator unchanged until `attack(kind, action=None, ...)`
says otherwise. Attacks (each answer is written straight to the socket, so nothing in between helps):

- `trickle`: headers at once, then the body one byte every `interval` seconds, for as long as the client reads;
- `huge`: a `Content-Length` of `size` bytes of JSON-looking text, streamed as fast as the client takes it;
- `gzip_bomb`: a gzip body of `size` bytes of spaces (a ~1000:1 ratio) with `Content-Encoding: gzip`;
- `body`: any status, headers and body, for echoed secrets, surrogates and control characters.

tests/test_hardening.py and bench/bench_hostile.py use it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import urllib.parse
import zlib
from typing import Any

import requests


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            piece = self.request.recv(65536)
            if not piece:
                return
            head += piece
        header_block, _, body = head.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            piece = self.request.recv(65536)
            if not piece:
                return
            body += piece
        form = dict(urllib.parse.parse_qsl(body.decode("latin-1")))
        self.server.owner.answer(self.request, method, path, headers, body, form.get("action", ""))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: HostileWhmcs


class HostileWhmcs:
    def __init__(self, upstream_url: str) -> None:
        self.upstream = upstream_url
        self._attacks: dict[str | None, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HostileWhmcs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def attack(self, kind: str, action: str | None = None, **options: Any) -> None:
        """Answer `action` (every action when None) with `kind` from now on."""
        with self._lock:
            self._attacks[action] = {"kind": kind, **options}

    def calm(self) -> None:
        with self._lock:
            self._attacks.clear()

    def answer(self, sock: socket.socket, method: str, path: str, headers: dict[str, str], body: bytes,
               action: str) -> None:
        with self._lock:
            attack = self._attacks.get(action) or self._attacks.get(None)
        try:
            if attack is None:
                self._forward(sock, method, path, headers, body)
            else:
                getattr(self, "_" + attack["kind"])(sock, **{k: v for k, v in attack.items() if k != "kind"})
        except OSError:
            pass  # the client gave up: that is what the attacks are for

    def _forward(self, sock: socket.socket, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        keep = {k: v for k, v in headers.items() if k in ("content-type", "authorization", "x-requested-with",
                                                           "accept")}
        reply = requests.request(method, self.upstream + path, data=body, headers=keep, timeout=30)
        _write(sock, reply.status_code, reply.content, {"Content-Type": reply.headers.get("Content-Type", "")})

    def _trickle(self, sock: socket.socket, interval: float = 0.2) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        for byte in (b'{"result":"success","x":"' + b"a" * 99_000):
            if self._stop.wait(interval):
                return
            sock.sendall(bytes([byte]))

    def _huge(self, sock: socket.socket, size: int = 200 * 1024 * 1024) -> None:
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode())
        chunk = b'{"result":"success","tickets":{"ticket":[' + b"[]," * 21_000
        sent = 0
        while sent < size and not self._stop.is_set():
            piece = chunk[: size - sent]
            sock.sendall(piece)
            sent += len(piece)

    def _gzip_bomb(self, sock: socket.socket, size: int = 200 * 1024 * 1024) -> None:
        payload = bomb(size)
        _write(sock, 200, payload, {"Content-Type": "application/json", "Content-Encoding": "gzip"})

    def _body(self, sock: socket.socket, status: int = 200, body: bytes | str = b"",
              content_type: str = "text/html; charset=utf-8", headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        _write(sock, status, data, {"Content-Type": content_type, **(headers or {})})


_BOMBS: dict[int, bytes] = {}
_BOMB_LOCK = threading.Lock()


def bomb(size: int) -> bytes:
    """gzip of `size` spaces inside a JSON string: ~1 KB per MB. Made once per size (call it before an attack:
    making a 1 GB one takes seconds)."""
    with _BOMB_LOCK:
        return _BOMBS[size] if size in _BOMBS else _make_bomb(size)


def _make_bomb(size: int) -> bytes:
    block = b" " * (1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header
    parts = [compressor.compress(b'{"result":"success","x":"')]
    for _ in range(size // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(b'"}'))
    parts.append(compressor.flush())
    _BOMBS[size] = b"".join(parts)
    return _BOMBS[size]


def _write(sock: socket.socket, status: int, body: bytes, headers: dict[str, str]) -> None:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items() if v]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
