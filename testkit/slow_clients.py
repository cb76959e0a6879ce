"""A slowloris: `count` connections that each send a request head one byte at a time and never finish it.

Sockets are non-blocking and driven from one thread, so a test can hold over a thousand of them. A connection the
server closes is opened again at once, so the flood keeps its size for as long as it runs.
"""

from __future__ import annotations

import errno
import resource
import socket
import threading
import time

_HEAD = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Slow: "


class SlowClients:
    def __init__(self, port: int, count: int, interval: float = 1.0, host: str = "127.0.0.1") -> None:
        self.address = (host, port)
        self.count = count
        self.interval = interval
        self.opened = 0
        self.closed_by_server = 0
        self._sent: dict[socket.socket, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def __enter__(self) -> SlowClients:
        _allow_open_files(self.count + 256)  # CI runners often start with a soft limit of 1,024
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in list(self._sent):
            sock.close()

    @property
    def holding(self) -> int:
        return len(self._sent)

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(self.address)
        self._sent[sock] = 0
        self.opened += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            while len(self._sent) < self.count:
                self._open()
            for sock in list(self._sent):
                if not self._nudge(sock):
                    sock.close()
                    del self._sent[sock]
                    self.closed_by_server += 1
            self._stop.wait(self.interval)

    def _nudge(self, sock: socket.socket) -> bool:
        """Send the next byte of the never-ending head; False when the server has closed the connection."""
        sent = self._sent[sock]
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                return False
        except BlockingIOError:
            pass  # nothing to read: still open
        except OSError as exc:
            return exc.errno in (errno.ENOTCONN, errno.EINPROGRESS)
        piece = _HEAD[sent:sent + 1] or b"a"
        try:
            sock.send(piece)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            return exc.errno in (errno.ENOTCONN, errno.EINPROGRESS, errno.EAGAIN)
        self._sent[sock] = sent + 1
        return True


def _allow_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"the slowloris needs {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def scrape_latencies(url: str, count: int, pause: float = 0.2, timeout: float = 5.0) -> list[float]:
    """Seconds each of `count` fresh-connection GETs of `url` took; a failed one counts as `timeout`."""
    import requests

    latencies = []
    for _ in range(count):
        started = time.monotonic()
        try:
            ok = requests.get(url, timeout=timeout, headers={"Connection": "close"}).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.monotonic() - started if ok else timeout)
        time.sleep(pause)
    return latencies

