"""How many HTTP connections the exporter holds, and which one gives way when a new one arrives.

A thread per connection is fine for Prometheus and a few probes, but a flood of
slow connections (slowloris) would take every thread and, at systemd's default
of 1,024 open files, every file descriptor: accept() then fails and /metrics is
unreachable. So the server holds at most `limit` connections and keeps the
remaining descriptors in reserve (pollers, log, config files). When the table
is full, the connection that has waited longest for a request is shut down to
make room: a scrape sends its request at once and is answered in milliseconds,
a slow client is always the oldest idle one. Connections busy answering are
never cut; when all are busy, the newcomer is refused.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from typing import Any

# File descriptors kept free for everything but client connections.
FD_RESERVE = 64
DEFAULT_MAX_CONNECTIONS = 64


def connection_limit(wanted: int = DEFAULT_MAX_CONNECTIONS) -> int:
    """`wanted`, lowered to what the open-files limit allows with the reserve kept free."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


class ConnectionTable:
    """Live connections: for each, since when it has been waiting for a request (None while answering)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle_since: dict[Any, float | None] = {}
        self._lock = threading.Lock()
        self.evicted = 0
        self.refused = 0

    def admit(self, conn: Any) -> bool:
        """Make room for `conn` (shutting the oldest idle connection down) or refuse it."""
        with self._lock:
            if len(self._idle_since) >= self.limit and not self._evict_oldest_idle():
                self.refused += 1
                return False
            self._idle_since[conn] = time.monotonic()
            return True

    def make_room(self) -> bool:
        """accept() ran out of file descriptors: free one if an idle connection can go."""
        with self._lock:
            return self._evict_oldest_idle()

    def waiting(self, conn: Any) -> None:
        with self._lock:
            if conn in self._idle_since:
                self._idle_since[conn] = time.monotonic()

    def answering(self, conn: Any) -> None:
        with self._lock:
            if conn in self._idle_since:
                self._idle_since[conn] = None

    def remove(self, conn: Any) -> None:
        with self._lock:
            self._idle_since.pop(conn, None)

    def __len__(self) -> int:
        return len(self._idle_since)

    def _evict_oldest_idle(self) -> bool:
        idle = [(since, id(conn), conn) for conn, since in self._idle_since.items() if since is not None]
        if not idle:
            return False
        _since, _key, victim = min(idle)
        del self._idle_since[victim]
        try:
            # The plain socket's shutdown even for TLS (SSLSocket.shutdown would drop the TLS state under the
            # thread still reading it): the blocked read returns and that thread closes the connection.
            socket.socket.shutdown(victim, socket.SHUT_RDWR)
        except OSError:
            pass
        self.evicted += 1
        return True
