"""The simulated WHMCS support desk: statuses, departments, tickets, replies and notes.

This module owns the data and nothing about HTTP or the API wire format. It provides a seeded generator
for realistic worlds (small demo desks up to 100k-ticket benchmark desks), thread-safe mutations, an
optional "live" thread that keeps the desk moving, indexes that let the API answer quickly, and
`World.truth()`: ground truth computed straight from the raw tickets, for tests to compare against.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from .flow_traffic import rate_some
from .staff import add_staff, move_flags

DEFAULT_BUCKETS = (900, 3600, 14400, 28800, 86400, 172800, 259200, 604800)


@dataclass(slots=True)
class Status:
    title: str
    showactive: bool
    showawaiting: bool
    sortorder: int = 0
    color: str = "#888888"


@dataclass(slots=True)
class Department:
    id: int
    name: str


@dataclass(slots=True)
class Reply:
    replyid: int
    date: int
    admin: str = ""
    userid: int = 0
    contactid: int = 0
    name: str = ""
    email: str = ""
    message: str = ""
    attachment: str = ""
    rating: int = 0
    rated_at: int = 0  # when the customer rated it (flow_traffic.py); not part of any answer


@dataclass(slots=True)
class Note:
    noteid: int
    date: int
    message: str
    admin: str


@dataclass(slots=True)
class Ticket:
    id: int
    tid: str
    c: str
    deptid: int
    userid: int
    name: str
    email: str
    date: int
    subject: str
    status: str
    priority: str
    lastreply: int
    contactid: int = 0
    cc: str = ""
    admin: str = ""
    flag: int = 0
    service: str = ""
    attachment: str = ""
    requestor_type: str = "Owner"
    merged_into: int | None = None
    # None = not generated yet: big worlds build reply histories on first use (see World.replies).
    replies: list[Reply] | None = None
    notes: list[Note] = field(default_factory=list)


def default_statuses() -> list[Status]:
    """The six statuses a fresh WHMCS installation ships with."""
    return [
        Status("Open", True, True, 1, "#779500"),
        Status("Answered", True, False, 2, "#000000"),
        Status("Customer-Reply", True, True, 3, "#ff6600"),
        Status("On Hold", True, False, 4, "#224488"),
        Status("In Progress", True, False, 5, "#cc0000"),
        Status("Closed", False, False, 10, "#888888"),
    ]


def status_key(title: str) -> str:
    """GetTicketCounts' map key: lower-cased, everything but [a-z0-9] dropped (so non-ASCII vanishes)."""
    return "".join(ch for ch in title.lower() if ch in "abcdefghijklmnopqrstuvwxyz0123456789")


_FIRST = ["Cynthia", "Marco", "Aiko", "Jörg", "Fatima", "Liam", "Zoë", "Pedro", "Olga", "Chen"]
_LAST = ["Reilly", "Rossi", "Tanaka", "Müller", "Haddad", "Walsh", "O'Brien", "Silva", "Ivanova", "Wei"]
_SUBJECTS = ["Site down", "Invoice question", "DNS not resolving", "Upgrade plan", "Email bounces",
             "SSL renewal", "Refund request", "Spam report", "Backup restore", "Slow VPS"]
_STAFF = ("Alice", "Bob")
# Weights of the generated status mix; "Awaiting Parts" is a title left on tickets after its status was
# deleted from the configuration, which WHMCS still reports.
_MIX = {"Closed": 50, "Answered": 12, "Open": 9, "Customer-Reply": 10, "On Hold": 4, "In Progress": 4,
        "Escalated": 3, "Wartend – Kunde": 3, "Überprüfung": 3, "Awaiting Parts": 0.3}


class World:
    """All state of one simulated desk. Every public method takes `self.lock`."""

    def __init__(self, seed: int = 1, tz: str = "America/Chicago", clock: Callable[[], float] = time.time,
                 latency: float = 0.0, sleep: Callable[[float], None] = time.sleep):
        self.seed = seed
        self.tz = ZoneInfo(tz)
        self.tz_name = tz
        self.clock = clock
        # Seconds every API call takes (WHMCS boots and logs an admin in per call: 0.6 s on shared hosting
        # is common). `sleep` passes it: a test with a fake clock advances the clock instead of waiting.
        self.latency = latency
        self.sleep = sleep
        self.lock = threading.RLock()
        self.statuses: list[Status] = default_statuses()
        self.departments: list[Department] = []
        self.priorities = ["Low", "Medium", "High"]
        self.admins: dict[int, str] = {1: "API Bot", 2: "Alice", 3: "Bob"}
        # First and last name where the display name is not split at its first space (see staff.py).
        self.admin_names: dict[int, tuple[str, str]] = {}
        self.disabled_admins: set[int] = set()
        self.admin_users_denied = False  # the API role lacks GetAdminUsers: it answers 403
        self.api_admin_id = 1
        self.api_admin_departments: list[int] = []
        self.tickets: dict[int, Ticket] = {}
        # Switches modelling installation settings and versions.
        self.counts_disabled = False
        self.version = "8.7"
        self.shuffle_ties = False
        # Names (departments, statuses, priorities, staff) HTML-escaped this many times in the answers of
        # `escape_actions` (canonical action names; empty = every action): see stored_text.py.
        self.escape_names = 0
        self.escape_actions: frozenset[str] = frozenset()
        self._next_id = 1
        self._version = 0
        self._cache: dict[object, object] = {}
        self._cache_version: object = None
        self._live: threading.Thread | None = None
        self._live_stop = threading.Event()

    # ---- generation -------------------------------------------------------------------------------

    @classmethod
    def generate(cls, seed: int = 1, tickets: int = 200, departments: Iterable[str] | None = None,
                 now: float | None = None, tz: str = "America/Chicago",
                 clock: Callable[[], float] = time.time, mix: dict[str, float] | None = None,
                 eager_replies: int = 5000) -> World:
        """Build a realistic desk; `mix` maps status title -> weight to override the status spread.

        Worlds above `eager_replies` tickets get their reply histories lazily (same result, built on
        first use) so that 100k-ticket worlds generate in about a second.
        """
        w = cls(seed=seed, tz=tz, clock=clock)
        now = int(clock() if now is None else now)
        names = list(departments) if departments is not None else [
            "Sales", "Technical Support", "Billing", "Abuse", 'Ünïcode "Quoted" Dept']
        w.departments = [Department(i + 1, n) for i, n in enumerate(names)]
        add_staff(w)
        # The API admin is a member of all but the 4th department, so department filtering is visible.
        w.api_admin_departments = [d.id for d in w.departments if d.id != 4]
        w.priorities = ["Low", "Medium", "High", "Urgent"]
        w.statuses += [Status("Escalated", True, True, 6, "#ff0000"),
                       Status("Wartend – Kunde", True, True, 7, "#aa00aa"),
                       Status("Überprüfung", True, False, 8, "#00aaaa")]
        weights = mix or _MIX
        titles, cum = list(weights), []
        total = 0.0
        for t in titles:
            total += weights[t]
            cum.append(total)
        rng = random.Random(seed)
        lazy = tickets > eager_replies
        dept_ids = [d.id for d in w.departments] or [1]
        prev_last = now
        for _ in range(tickets):
            status = rng.choices(titles, cum_weights=cum)[0]
            opened = now - int(rng.expovariate(1 / (9 * 86400))) - 60
            if rng.random() < 0.08 and opened < prev_last:
                last = prev_last  # deliberate ties in lastreply: WHMCS has no tie-breaker
            else:
                last = opened if rng.random() < 0.15 else rng.randint(opened, now)
            t = w._new_ticket(rng, opened, last, status, rng.choice(dept_ids))
            if rng.random() < 0.1 and w._is_active(status):
                t.flag = rng.choice((1, 1, 2, 3))
            prev_last = last
            if not lazy:
                w.replies(t)
        # A few merged tickets: they exist but must vanish from every count and list.
        ids = list(w.tickets)
        for _ in range(max(1, tickets // 50) if tickets >= 10 else 0):
            a, b = rng.sample(ids, 2)
            if w.tickets[a].merged_into is None and w.tickets[b].merged_into is None:
                w.tickets[a].merged_into = b
        w._bump()
        return w

    def _new_ticket(self, rng: random.Random, opened: int, last: int, status: str, deptid: int) -> Ticket:
        tid_num = self._next_id
        self._next_id += 1
        guest = rng.random() < 0.1
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        t = Ticket(
            id=tid_num,
            # A bijection on 6-digit numbers: unique, but not guessable from the id.
            tid=str((tid_num * 7919 + 104729) % 900000 + 100000),
            c="".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", k=8)),
            deptid=deptid, userid=0 if guest else rng.randint(1, 5000), name=name,
            email=f"{name.split()[0].lower()}.{tid_num}@example.com", date=opened,
            subject=rng.choice(_SUBJECTS), status=status, priority=rng.choice(self.priorities),
            lastreply=last, requestor_type="Guest" if guest else "Owner",
        )
        if rng.random() < 0.05:
            t.admin = rng.choice(_STAFF)  # staff opened it on the customer's behalf
        if rng.random() < 0.1:
            t.attachment = f"{rng.randint(100000, 999999)}_screenshot.png"
        self.tickets[t.id] = t
        return t

    def replies(self, t: Ticket) -> list[Reply]:
        """The ticket's replies (reply 0 = opening message), built deterministically on first use."""
        with self.lock:
            if t.replies is None:
                t.replies = self._build_replies(t)
            return t.replies

    def _build_replies(self, t: Ticket) -> list[Reply]:
        rng = random.Random(self.seed * 1_000_003 + t.id)
        st = self.status(t.status)
        opening = Reply(0, t.date, admin=t.admin, userid=t.userid, name=t.name, email=t.email,
                        message=f"Hello,\r\n\r\n{t.subject}.\r\n\r\nThanks\r\n\r\n{t.name}")
        out = [opening]
        if t.lastreply <= t.date:
            return out
        # Awaiting statuses end with the customer, Answered with staff; others either way.
        if st is not None and st.showawaiting:
            last_staff = False
        elif t.status == "Answered":
            last_staff = True
        else:
            last_staff = rng.random() < 0.5
        n = rng.randint(1, 5)
        times = sorted(rng.randint(t.date, t.lastreply) for _ in range(n - 1)) + [t.lastreply]
        for i, when in enumerate(times):
            # "Open" means staff have not answered yet: only customer follow-ups.
            staff = t.status != "Open" and (last_staff if (n - 1 - i) % 2 == 0 else not last_staff)
            out.append(self._reply(len(out), when, rng.choice(_STAFF) if staff else "", t))
        return out

    @staticmethod
    def _reply(replyid: int, when: int, admin: str, t: Ticket) -> Reply:
        if admin:
            return Reply(replyid, when, admin=admin, message=f"Hi {t.name.split()[0]},\r\n\r\nWe are on it.")
        return Reply(replyid, when, userid=t.userid, name=t.name, email=t.email, message="Any news?")

    # ---- lookup helpers ---------------------------------------------------------------------------

    def status(self, title: str) -> Status | None:
        for s in self.statuses:
            if s.title == title:
                return s
        return None

    def _is_active(self, title: str) -> bool:
        s = self.status(title)
        return bool(s and s.showactive)

    def department(self, deptid: int) -> Department | None:
        for d in self.departments:
            if d.id == deptid:
                return d
        return None

    def take_call_time(self) -> None:
        """Spend one API call's latency, outside the lock: concurrent calls overlap as they do in WHMCS."""
        if self.latency > 0:
            self.sleep(self.latency)

    def fmt(self, epoch: int) -> str:
        """WHMCS's date format: server-local time, no zone marker."""
        return datetime.fromtimestamp(epoch, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def live_tickets(self) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.merged_into is None]

    # ---- mutations --------------------------------------------------------------------------------

    def _bump(self) -> None:
        self._version += 1

    def _now(self, at: float | None) -> int:
        return int(self.clock() if at is None else at)

    def add_status(self, title: str, showactive: bool, showawaiting: bool, sortorder: int | None = None,
                   color: str = "#888888") -> Status:
        with self.lock:
            order = sortorder if sortorder is not None else max((s.sortorder for s in self.statuses), default=0) + 1
            s = Status(title, showactive, showawaiting, order, color)
            self.statuses.append(s)
            self._bump()
            return s

    def add_ticket(self, deptid: int = 1, subject: str = "Help", status: str = "Open", priority: str = "Medium",
                   userid: int = 1, name: str = "Test Customer", email: str = "customer@example.com",
                   at: float | None = None, admin: str = "", flag: int = 0) -> Ticket:
        """Open a ticket (reply 0 = opening message; `admin` set = staff opened it for the customer)."""
        with self.lock:
            when = self._now(at)
            t = Ticket(id=self._next_id, tid=str((self._next_id * 7919 + 104729) % 900000 + 100000),
                       c=f"c{self._next_id:07d}", deptid=deptid, userid=userid, name=name, email=email,
                       date=when, subject=subject, status=status, priority=priority, lastreply=when,
                       admin=admin, flag=flag, requestor_type="Owner" if userid else "Guest")
            self._next_id += 1
            t.replies = [Reply(0, when, admin=admin, userid=userid, name=name, email=email, message=subject)]
            self.tickets[t.id] = t
            self._bump()
            return t

    def _get(self, ticket_id: int) -> Ticket:
        t = self.tickets.get(ticket_id)
        if t is None:
            raise KeyError(f"no ticket {ticket_id}")
        return t

    def customer_reply(self, ticket_id: int, at: float | None = None, message: str = "Any news?") -> Reply:
        with self.lock:
            t = self._get(ticket_id)
            reps = self.replies(t)
            r = Reply(len(reps), self._now(at), userid=t.userid, name=t.name, email=t.email, message=message)
            reps.append(r)
            t.lastreply, t.status = r.date, "Customer-Reply"
            self._bump()
            return r

    def staff_reply(self, ticket_id: int, admin: str = "Alice", at: float | None = None,
                    message: str = "We are on it.") -> Reply:
        with self.lock:
            t = self._get(ticket_id)
            reps = self.replies(t)
            r = Reply(len(reps), self._now(at), admin=admin, message=message)
            reps.append(r)
            t.lastreply, t.status = r.date, "Answered"
            self._bump()
            return r

    def mass_reply(self, ticket_ids: Iterable[int], at: float | None = None, admin: str = "Alice") -> None:
        """One staff reply to each ticket in the same second (a scripted update, a mass reply, a bulk
        import): a run of equal `lastreply`, which GetTickets orders arbitrarily (see `shuffle_ties`)."""
        with self.lock:
            when = self._now(at)
            for ident in ticket_ids:
                self.staff_reply(ident, admin=admin, at=when)

    def set_status(self, ticket_id: int, status: str) -> None:
        with self.lock:
            self._get(ticket_id).status = status
            self._bump()

    def close(self, ticket_id: int) -> None:
        self.set_status(ticket_id, "Closed")

    def set_flag(self, ticket_id: int, admin_id: int) -> None:
        with self.lock:
            self._get(ticket_id).flag = admin_id
            self._bump()

    def merge(self, ticket_id: int, into_id: int) -> None:
        with self.lock:
            self._get(into_id)
            self._get(ticket_id).merged_into = into_id
            self._bump()

    def delete(self, ticket_id: int) -> None:
        with self.lock:
            del self.tickets[ticket_id]
            self._bump()

    def add_note(self, ticket_id: int, message: str, admin: str = "Alice", at: float | None = None) -> Note:
        with self.lock:
            t = self._get(ticket_id)
            n = Note(len(t.notes) + 1, self._now(at), message, admin)
            t.notes.append(n)
            return n

    # ---- indexes for the API (cached per mutation version) ---------------------------------------

    def cached(self, key: object, build: Callable[[], object]) -> object:
        """Memoise `build()` until the next mutation; callers hold `self.lock`."""
        # Tests flip statuses, departments and switches by plain assignment, so those are part of the
        # cache's validity stamp along with the mutation counter.
        stamp = (self._version, self.api_admin_id, tuple(self.api_admin_departments),
                 tuple((s.title, s.showactive, s.showawaiting) for s in self.statuses))
        if self._cache_version != stamp:
            self._cache.clear()
            self._cache_version = stamp
        if key not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = build()
        return self._cache[key]

    def sorted_tickets(self) -> list[Ticket]:
        """Non-merged tickets by lastreply DESC; ties keep insertion order (stable sort)."""
        return self.cached("sorted", lambda: sorted(self.live_tickets(), key=lambda t: -t.lastreply))

    # ---- ground truth -----------------------------------------------------------------------------

    def truth(self, now: float, buckets: Iterable[int] = DEFAULT_BUCKETS,
              response_window: float = 7 * 86400) -> dict:
        """What an exporter should report, computed directly from the raw tickets (no API code)."""
        buckets = tuple(buckets)
        with self.lock:
            conf = {s.title: s for s in self.statuses}
            status_counts = {s.title: 0 for s in self.statuses}
            depts = {d.id: {"awaiting": 0, "active": 0, "oldest_awaiting_age": 0.0} for d in self.departments}
            prio: dict[str, int] = {}
            wait_b = dict.fromkeys(buckets, 0)
            fr_b = dict.fromkeys(buckets, 0)
            active = awaiting = flagged = wait_count = fr_count = no_staff = 0
            wait_sum = fr_sum = oldest = oldest_no_staff = 0.0
            for t in self.tickets.values():
                if t.merged_into is not None:
                    continue
                status_counts[t.status] = status_counts.get(t.status, 0) + 1
                s = conf.get(t.status)
                d = depts.setdefault(t.deptid, {"awaiting": 0, "active": 0, "oldest_awaiting_age": 0.0})
                if s is not None and s.showactive:
                    active += 1
                    d["active"] += 1
                    prio[t.priority] = prio.get(t.priority, 0) + 1
                    if t.flag == self.api_admin_id:
                        flagged += 1
                if s is not None and s.showawaiting:
                    age = now - t.lastreply
                    awaiting += 1
                    d["awaiting"] += 1
                    d["oldest_awaiting_age"] = max(d["oldest_awaiting_age"], age)
                    oldest = max(oldest, age)
                    wait_count += 1
                    wait_sum += age
                    for le in buckets:
                        if age <= le:
                            wait_b[le] += 1
                if t.date >= now - response_window:
                    first = next((r for r in self.replies(t)[1:] if r.admin), None)
                    if first is None:
                        no_staff += 1
                        oldest_no_staff = max(oldest_no_staff, now - t.date)
                    else:
                        v = first.date - t.date
                        fr_count += 1
                        fr_sum += v
                        for le in buckets:
                            if v <= le:
                                fr_b[le] += 1
            names = {d.id: d.name for d in self.departments}
            return {
                "status_counts": status_counts, "active": active, "awaiting": awaiting, "flagged": flagged,
                "oldest_awaiting_age": oldest,
                "departments": {names.get(k, str(k)): v for k, v in depts.items()},
                "wait_buckets": wait_b, "wait_count": wait_count, "wait_sum": wait_sum, "priorities": prio,
                "first_response": {"buckets": fr_b, "count": fr_count, "sum": fr_sum,
                                   "without_staff_reply": no_staff,
                                   "oldest_without_staff_reply_age": oldest_no_staff},
            }

    # ---- live movement ----------------------------------------------------------------------------

    def step(self, rng: random.Random, max_tickets: int) -> None:
        """One tick of desk life: arrivals, replies, closures; deletes old closed tickets past the bound."""
        with self.lock:
            now = self._now(None)
            # Closures outpace arrivals on average, so the backlog hovers instead of growing.
            if rng.random() < 0.5:
                dept = rng.choice([d.id for d in self.departments] or [1])
                self.add_ticket(deptid=dept, subject=rng.choice(_SUBJECTS), at=now,
                                priority=rng.choice(self.priorities), userid=rng.randint(1, 5000),
                                name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}")
            live = self.live_tickets()
            awaiting = [t for t in live if (s := self.status(t.status)) and s.showawaiting]
            answered = [t for t in live if t.status == "Answered"]
            # Nobody answers within the second a ticket was opened or last replied to.
            awaiting = [t for t in awaiting if t.lastreply < now]
            if awaiting and rng.random() < 0.6:
                self.staff_reply(rng.choice(awaiting).id, admin=rng.choice(_STAFF), at=now)
            if answered and rng.random() < 0.25:
                self.customer_reply(rng.choice(answered).id, at=now)
            if answered and rng.random() < 0.5:
                self.close(rng.choice(answered).id)
            move_flags(self, rng)
            rate_some(self, rng, now)  # customers rate staff replies later, without moving lastreply
            # Hard bound: drop the oldest tickets, closed ones first.
            excess = len(self.tickets) - max_tickets
            if excess > 0:
                victims = sorted(self.tickets.values(), key=lambda t: (t.status != "Closed", t.lastreply))
                for t in victims[:excess]:
                    self.delete(t.id)

    def start_live(self, interval: float = 3.0, max_tickets: int | None = None) -> None:
        """Keep the desk moving in a daemon thread (deterministic from the seed; bounded size)."""
        if self._live is not None:
            return
        bound = max_tickets or max(len(self.tickets) + 50, int(len(self.tickets) * 1.2))
        rng = random.Random(self.seed + 7)
        self._live_stop.clear()

        def run() -> None:
            while not self._live_stop.wait(interval):
                self.step(rng, bound)

        self._live = threading.Thread(target=run, name="whmcs-sim-live", daemon=True)
        self._live.start()

    def stop_live(self) -> None:
        self._live_stop.set()
        if self._live is not None:
            self._live.join(timeout=5)
        self._live = None
