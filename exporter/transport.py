"""Reading one HTTP answer within a deadline and a size cap, whatever the server sends.

`requests` bounds each socket read, not the whole answer: a server (or proxy)
trickling one byte per second keeps a call alive as long as it likes. Here a
watchdog timer shuts the call's socket down at the deadline, which wakes any
blocked read (headers, TLS handshake or body), and the call then fails as a
timeout. The body is read raw and counted while it streams; gzip/deflate are
decompressed piece by piece under the same cap, so neither a huge answer nor a
compression bomb ever sits in memory beyond `MAX_ANSWER_BYTES`. `transport_error` names
what went wrong on the wire as a typed error.
"""

from __future__ import annotations

import heapq
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from exporter.errors import ConnectionFailed, InvalidResponse, WhmcsError

# The largest real answer is a GetTickets page of collectors.ticket_lists.MAX_PAGE_ROWS (3,000) tickets, asked
# for only to read a long run of equal lastreply: ~600 bytes of JSON per ticket in WHMCS 8, so ~1.8 MB; the
# usual pages (250-1,000 rows) stay far below. And a hostile answer of 2 MiB, parsed (JSON like `[[],[],...]`
# expands ~20x into Python objects), keeps the peak RSS under 128 MB, half the shipped Kubernetes limit
# (docs/reliability.md has the figures).
MAX_ANSWER_BYTES = 2 * 1024 * 1024
READ_SIZE = 16 * 1024
ACCEPT_ENCODING = "gzip, deflate"


class AnswerTooLarge(Exception):
    """The (decompressed) answer exceeded the cap."""


class DeadlinePassed(Exception):
    """The watchdog cut the call at its deadline."""


class UnknownEncoding(Exception):
    """A Content-Encoding we did not offer."""


_in_flight = threading.local()


def _register(connection: HTTPConnection) -> None:
    """Remember the connection the current thread's call uses, for its watchdog."""
    watch = getattr(_in_flight, "watch", None)
    if watch is not None:
        watch.connections.append(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:  # the TLS handshake happens here, before request()
        _register(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """An adapter whose connections can be cut by the calling thread's `Deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        return manager


def watched_session(session: requests.Session | None = None) -> requests.Session:
    session = session or requests.Session()
    adapter = WatchedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Deadline:
    """`with Deadline(seconds):` around one call; past the deadline its sockets are shut down.

    `expired` tells the caller that whatever the read returned (an error, or a body cut short that looks
    complete) is the watchdog's doing.
    """

    def __init__(self, seconds: float) -> None:
        self.connections: list[HTTPConnection] = []
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._seconds = seconds

    def __enter__(self) -> Deadline:
        _in_flight.watch = self
        _WATCHDOG.arm(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            _in_flight.watch = None
            self.connections = []

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for connection in self.connections:
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in the calling thread
                    except OSError:
                        pass


class _Watchdog:
    """One thread for every call's deadline (a timer thread per call would start a thread per API call)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Deadline]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._due, (when, id(deadline), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="call-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _when, _key, deadline = heapq.heappop(self._due)
            deadline._expire()  # a no-op for a call that has ended


_WATCHDOG = _Watchdog()


def read_body(response: requests.Response, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The whole body, decoded from gzip/deflate, at most `limit` bytes after decoding."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    raw = _raw_chunks(response)
    if encoding in ("", "identity"):
        return _collect(raw, limit)
    if encoding in ("gzip", "x-gzip", "deflate"):
        # wbits 47 reads a gzip or zlib header; a raw deflate stream (some servers send one) needs -15.
        return _collect(_inflate(raw, limit, 47 if encoding != "deflate" else None), limit)
    raise UnknownEncoding(encoding[:40])


def _raw_chunks(response: requests.Response) -> Iterator[bytes]:
    # decode_content=False: urllib3 would inflate a whole read at once, a bomb included.
    yield from response.raw.stream(READ_SIZE, decode_content=False)


def _collect(chunks: Iterator[bytes], limit: int) -> bytes:
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge()
    return bytes(body)


def _inflate(chunks: Iterator[bytes], limit: int, wbits: int | None) -> Iterator[bytes]:
    """Inflate piece by piece, never producing more than `limit` + 1 bytes in total."""
    inflater: Any = None
    produced = 0
    for chunk in chunks:
        if inflater is None:
            inflater = zlib.decompressobj(wbits if wbits is not None else _deflate_wbits(chunk))
        pending = chunk
        while pending and not inflater.eof:
            piece = inflater.decompress(pending, limit + 1 - produced)
            produced += len(piece)
            yield piece
            if produced > limit:
                return
            pending = inflater.unconsumed_tail
    if inflater is not None:
        yield inflater.flush()


def _deflate_wbits(first: bytes) -> int:
    """`Content-Encoding: deflate` is meant to be zlib-wrapped; some servers send raw deflate."""
    if len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0:
        return 15
    return -15


def transport_error(action: str, exc: Exception) -> WhmcsError:
    """A requests/urllib3/zlib failure as a typed error."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionFailed(action, f"TLS failed: {_root_cause(exc)} (check ca_file / tls_verify)")
    if isinstance(exc, requests.exceptions.InvalidHeader):
        # Its message quotes the header value (a token): never pass it on.
        return ConnectionFailed(action, "invalid request header: a credential or token contains whitespace or "
                                "control characters (check the secret/token file)")
    if isinstance(exc, zlib.error):
        return InvalidResponse(action, "answer declared gzip/deflate but does not decompress")
    if isinstance(exc, requests.exceptions.RequestException) and not isinstance(
            exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return ConnectionFailed(action, _connection_message(exc))
    if isinstance(exc, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return ConnectionFailed(action, "connection broken in the middle of the answer")
    raise exc


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen)
    match = re.search(r"\] (.*)$", text)
    return (match.group(1) if match else text)[:160]


def _connection_message(exc: requests.exceptions.RequestException) -> str:
    text = str(exc)
    if "NameResolutionError" in text or "Name or service not known" in text or "nodename nor servname" in text \
            or "Temporary failure in name resolution" in text:
        return "DNS lookup failed for the WHMCS host name (check url)"
    if "Connection refused" in text:
        return "connection refused (is WHMCS reachable on that host and port?)"
    if "Connection reset" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection reset by the server before a complete answer"
    return f"connection failed: {_root_cause(exc)}"
