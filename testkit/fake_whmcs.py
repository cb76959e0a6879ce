"""An in-memory GetTickets for unit tests: a list sorted by lastreply DESC, answered the way WHMCS answers.

`FakeTickets(lastreplies)` takes Unix times (any order; sorted DESC, ties keep their order) and answers
`call("GetTickets", params)` with limitstart/limitnum paging, `totalresults` as int or str, string
numbers in every ticket, and no `tickets` key when a page is empty. `between_calls` lets a test move
tickets between two calls. It also answers GetSupportDepartments from `departments`. `truth_counts` is
the brute-force answer that wait-distribution tests compare with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")


def fmt(epoch: float, zone: ZoneInfo = UTC) -> str:
    return dt.datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class FakeTicket:
    id: int
    lastreply: int
    deptid: int = 1
    priority: str = "Medium"
    status: str = "Customer-Reply"


@dataclass
class FakeTickets:
    tickets: list[FakeTicket] = field(default_factory=list)
    string_numbers: bool = False
    zone: ZoneInfo = UTC
    departments: list[dict[str, Any]] | None = None
    between_calls: Callable[[FakeTickets], None] | None = None
    max_limitnum: int | None = None  # a gateway that caps limitnum answers short pages mid-list
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def of(cls, lastreplies: Sequence[int], **kwargs: Any) -> FakeTickets:
        fake = cls([FakeTicket(i + 1, int(t)) for i, t in enumerate(lastreplies)], **kwargs)
        fake.sort()
        return fake

    def sort(self) -> None:
        self.tickets.sort(key=lambda t: -t.lastreply)  # stable: ties keep their order, as WHMCS may

    def _num(self, value: int) -> int | str:
        return str(value) if self.string_numbers else value

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        params = dict(params or {})
        if self.calls and self.between_calls is not None:
            self.between_calls(self)
        self.calls.append((action, params))
        if action == "GetSupportDepartments":
            body: dict[str, Any] = {"result": "success", "totalresults": self._num(len(self.departments or []))}
            if self.departments:
                body["departments"] = {"department": self.departments}
            return body
        assert action == "GetTickets", action
        rows = self.tickets
        if params.get("deptid"):
            rows = [t for t in rows if t.deptid == int(params["deptid"])]
        start = int(params.get("limitstart", 0))
        num = int(params.get("limitnum", 0)) or 25
        if self.max_limitnum is not None:
            num = min(num, self.max_limitnum)
        page = rows[start:start + num]
        body = {"result": "success", "totalresults": self._num(len(rows)), "startnumber": start,
                "numreturned": len(page)}
        if page:
            body["tickets"] = {"ticket": [
                {"id": str(t.id), "tid": str(100000 + t.id), "deptid": str(t.deptid), "status": t.status,
                 "priority": t.priority, "date": fmt(t.lastreply - 60, self.zone),
                 "lastreply": fmt(t.lastreply, self.zone)} for t in page]}
        return body

    def ticket_calls(self) -> int:
        return sum(1 for action, _ in self.calls if action == "GetTickets")


def truth_counts(lastreplies: Sequence[float], now: float, bounds: Sequence[float]) -> list[int]:
    """Brute force: per bound, tickets whose wait is <= le; then the total (+Inf)."""
    return [sum(1 for t in lastreplies if now - t <= le) for le in bounds] + [len(lastreplies)]
