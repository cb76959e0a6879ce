"""Reading a process's CPU time, memory, threads and open files from /proc, and telling polls apart in the
simulator's call log."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from exporter.simulator import Simulator

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` in seconds (children excluded)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of `pid` in MiB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def proc_status(pid: int) -> dict[str, int]:
    """RSS in kB, threads and open file descriptors of `pid`."""
    return {"rss_kb": round(memory_mb(pid)["VmRSS"] * 1024), "threads": len(os.listdir(f"/proc/{pid}/task")),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


@dataclass
class PollWatch:
    """Polls as the simulator saw them: each starts with GetTicketCounts (the first view)."""

    sim: Simulator
    first_action: str = "GetTicketCounts"

    def starts(self) -> list[float]:
        return [c.time for c in self.sim.calls if c.action == self.first_action]

    def wait_polls(self, count: int, timeout: float, idle: float = 0.3) -> None:
        """Until `count` polls have started and the last one's calls stopped for `idle` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.sim.calls
            started = sum(1 for c in calls if c.action == self.first_action)
            if started >= count and calls and time.time() - calls[-1].time >= idle:
                return
            time.sleep(0.02)
        raise TimeoutError(f"{count} polls not seen within {timeout:g}s")

    def poll_windows(self) -> list[tuple[float, float]]:
        """(first call, last call) of every poll so far."""
        windows: list[tuple[float, float]] = []
        for call in self.sim.calls:
            if call.action == self.first_action or not windows:
                windows.append((call.time, call.time))
            else:
                windows[-1] = (windows[-1][0], call.time)
        return windows

    def actions_of_poll(self, index: int) -> dict[str, int]:
        """Calls by action of poll `index` (0 = first)."""
        out: dict[str, int] = {}
        poll = -1
        for call in self.sim.calls:
            if call.action == self.first_action:
                poll += 1
            if poll == index:
                out[call.action] = out.get(call.action, 0) + 1
        return dict(sorted(out.items()))
