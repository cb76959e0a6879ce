"""The WHMCS API actions the exporter uses, as pure functions: (world, params) -> (http status, body).

Also the PHP-isms WHMCS applies to parameters (truthiness, int casts) and the three response encodings
(json, nvp, xml). Authentication and transport live elsewhere (auth.py, http.py).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from xml.sax.saxutils import escape

from .staff import get_admin_users
from .stored_text import stored
from .world import Ticket, World, status_key

Body = dict
Result = tuple[int, Body]
_INT = re.compile(r"\s*[+-]?\d+")

# Lower-cased action -> canonical name; the simulator only knows the ticket calls the exporter needs.
ACTIONS = {n.lower(): n for n in (
    "GetTicketCounts", "GetTickets", "GetTicket", "GetSupportDepartments", "GetSupportStatuses",
    "GetAdminUsers")}


def php_truthy(value: str | None) -> bool:
    """PHP's truthiness of a request string: only absent, "" and "0" are false ("false" is TRUE)."""
    return value not in (None, "", "0")


def php_int(value: str | None, default: int = 0) -> int:
    """PHP's (int) cast: leading optional sign and digits, anything else gives 0."""
    if value is None:
        return default
    m = _INT.match(value)
    return int(m.group(0)) if m else 0


def canonical(action: str) -> str | None:
    return ACTIONS.get(action.lower())


def error(message: str, status: int = 200) -> Result:
    return status, {"result": "error", "message": message}


# ---- helpers -------------------------------------------------------------------------------------

def _admin_dept_filter(world: World, ignore: bool) -> frozenset[int] | None:
    """None = no filter. GetTickets-style: an admin with no departments filters to the empty set."""
    return None if ignore else frozenset(world.api_admin_departments)


def _titles(world: World, attr: str) -> frozenset[str]:
    return frozenset(s.title for s in world.statuses if getattr(s, attr))


def _n(world: World, value: int) -> int | str:
    # 8.x answers totalresults as an int, 7.x as a string.
    return str(value) if world.version.startswith("7") else value


def ticket_fields(world: World, t: Ticket, action: str = "GetTickets") -> dict:
    dept = world.department(t.deptid)
    guest = t.requestor_type == "Guest"
    attachments = [{"filename": t.attachment.split("_", 1)[-1], "index": 0}] if t.attachment else []
    out = {
        "id": str(t.id), "ticketid": str(t.id), "tid": t.tid, "c": t.c, "deptid": str(t.deptid),
        "deptname": stored(world, action, dept.name) if dept else "", "userid": str(t.userid),
        "contactid": str(t.contactid),
        "name": t.name, "owner_name": "" if guest else t.name, "email": t.email,
        "requestor_name": t.name, "requestor_email": t.email, "requestor_type": t.requestor_type,
        "cc": t.cc, "date": world.fmt(t.date), "subject": t.subject,
        "status": stored(world, action, t.status), "priority": stored(world, action, t.priority),
        "admin": stored(world, action, t.admin), "attachment": t.attachment, "attachments": attachments,
        "attachments_removed": False, "lastreply": world.fmt(t.lastreply), "flag": str(t.flag),
        "service": t.service,
    }
    if world.version.startswith("7"):
        for k in ("ticketid", "deptname", "requestor_name", "requestor_email", "requestor_type",
                  "owner_name", "attachments", "attachments_removed"):
            del out[k]
    return out


# ---- actions -------------------------------------------------------------------------------------

def _tally(world: World) -> tuple[dict[tuple[int, str], int], dict[str, int]]:
    """Non-merged tickets counted by (deptid, status), and by status for those flagged to the API admin.

    Cached until the next mutation, so the count calls stay cheap on 100k-ticket worlds.
    """
    def build() -> tuple[dict[tuple[int, str], int], dict[str, int]]:
        by: dict[tuple[int, str], int] = {}
        mine: dict[str, int] = {}
        me = world.api_admin_id
        for t in world.live_tickets():
            k = (t.deptid, t.status)
            by[k] = by.get(k, 0) + 1
            if t.flag == me:
                mine[t.status] = mine.get(t.status, 0) + 1
        return by, mine

    return world.cached("tally", build)  # type: ignore[return-value]


def get_ticket_counts(world: World, p: dict[str, str]) -> Result:
    ignore = php_truthy(p.get("ignoreDepartmentAssignments"))
    filtered = [] if ignore else sorted(world.api_admin_departments)
    active, awaiting = _titles(world, "showactive"), _titles(world, "showawaiting")
    by, mine = _tally(world)
    all_active = waiting = 0
    by_status: dict[str, int] = {}
    for (deptid, status), n in by.items():
        by_status[status] = by_status.get(status, 0) + n
        if not filtered or deptid in filtered:
            all_active += n if status in active else 0
            waiting += n if status in awaiting else 0
    flagged = sum(n for s, n in mine.items() if s in active)
    body: Body = {"result": "success", "filteredDepartments": filtered}
    if world.counts_disabled:
        body.update(allActive="x", awaitingReply="x", flaggedTickets="x")
    else:
        body.update(allActive=all_active, awaitingReply=waiting, flaggedTickets=flagged)
    if php_truthy(p.get("includeCountsByStatus")):
        smap: dict[str, dict] = {}
        titles = [s.title for s in sorted(world.statuses, key=lambda s: s.sortorder)]
        titles += [t for t in by_status if t not in titles]
        for title in titles:
            # Plain assignment: colliding keys overwrite each other, as in WHMCS (keyed by the stored title).
            shown = stored(world, "GetTicketCounts", title)
            smap[status_key(shown)] = {"title": shown, "count": by_status.get(title, 0)}
        body["status"] = smap
    return 200, body


def _status_pred(world: World, status: str) -> Callable[[Ticket], bool] | None:
    low = status.strip().lower()
    if not low:
        return None
    if low == "awaiting reply":
        titles = _titles(world, "showawaiting")
        return lambda t: t.status in titles
    if low == "all active tickets":
        titles = _titles(world, "showactive")
        return lambda t: t.status in titles
    if low == "my flagged tickets":
        titles, me = _titles(world, "showactive"), world.api_admin_id
        return lambda t: t.flag == me and t.status in titles
    # MySQL's default collation compares case-insensitively.
    return lambda t: t.status.lower() == low


def _select(world: World, p: dict[str, str]) -> list[Ticket]:
    depts = _admin_dept_filter(world, php_truthy(p.get("ignore_dept_assignments")))
    deptid, clientid = php_int(p.get("deptid")), php_int(p.get("clientid"))
    email, subject = (p.get("email") or "").lower(), (p.get("subject") or "").lower()
    status = p.get("status") or ""
    key = ("GetTickets", depts, deptid, clientid, email, subject, status.lower())

    def build() -> list[Ticket]:
        preds: list[Callable[[Ticket], bool]] = []
        if depts is not None:
            preds.append(lambda t: t.deptid in depts)
        if deptid:
            preds.append(lambda t: t.deptid == deptid)
        if clientid:
            preds.append(lambda t: t.userid == clientid)
        if email:
            preds.append(lambda t: t.email.lower() == email)
        if subject:
            preds.append(lambda t: subject in t.subject.lower())
        sp = _status_pred(world, status)
        if sp:
            preds.append(sp)
        rows = world.sorted_tickets()
        return [t for t in rows if all(f(t) for f in preds)] if preds else rows

    return world.cached(key, build)  # type: ignore[return-value]


def _page(world: World, rows: list[Ticket], start: int, num: int) -> list[Ticket]:
    if not world.shuffle_ties or start >= len(rows):
        return rows[start:start + num]
    # Widen the window to whole runs of equal lastreply, shuffle inside each run, then cut the page:
    # a per-call order for ties, as MySQL may give without a tie-breaker.
    lo, hi = start, min(len(rows), start + num)
    while lo > 0 and rows[lo - 1].lastreply == rows[lo].lastreply:
        lo -= 1
    while hi < len(rows) and rows[hi].lastreply == rows[hi - 1].lastreply:
        hi += 1
    window, rng, i = rows[lo:hi], random.Random(), 0
    while i < len(window):
        j = i
        while j < len(window) and window[j].lastreply == window[i].lastreply:
            j += 1
        run = window[i:j]
        rng.shuffle(run)
        window[i:j] = run
        i = j
    return window[start - lo:start - lo + num]


def get_tickets(world: World, p: dict[str, str]) -> Result:
    start = max(0, php_int(p.get("limitstart")))
    num = php_int(p.get("limitnum")) or 25  # PHP empty(): 0 and "" mean the default
    num = num if num > 0 else 25
    rows = _select(world, p)
    page = _page(world, rows, start, num)
    body: Body = {"result": "success", "totalresults": _n(world, len(rows)), "startnumber": start,
                  "numreturned": len(page)}
    if page:  # WHMCS omits the key entirely when nothing matched
        body["tickets"] = {"ticket": [ticket_fields(world, t) for t in page]}
    return 200, body


def get_ticket(world: World, p: dict[str, str], gateway_ticketnum: bool = False) -> Result:
    t = None
    tid_param = php_int(p.get("ticketid"))
    if tid_param:
        t = world.tickets.get(tid_param)
    elif p.get("ticketnum"):
        t = next((x for x in world.tickets.values() if x.tid == p["ticketnum"]), None)
    if t is None or t.merged_into is not None:
        return error("Ticket ID Not Found")
    f = ticket_fields(world, t, "GetTicket")
    body: Body = {"result": "success", "ticketid": str(t.id)}
    keys = ("tid", "c", "deptid", "deptname", "userid", "contactid", "name", "email", "cc", "date", "subject",
            "status", "priority", "admin", "lastreply", "flag", "service")
    body.update({k: f[k] for k in keys if k in f})
    if gateway_ticketnum:
        body = {("ticketnum" if k == "tid" else k): v for k, v in body.items()}
    replies = [{"replyid": str(r.replyid), "userid": str(r.userid), "contactid": str(r.contactid),
                "name": r.name, "email": r.email, "date": world.fmt(r.date), "message": r.message,
                "attachment": r.attachment, "admin": stored(world, "GetTicket", r.admin),
                "rating": str(r.rating)}
               for r in world.replies(t)]
    if (p.get("repliessort") or "ASC").upper() == "DESC":
        replies.reverse()
    body["replies"] = {"reply": replies}
    body["notes"] = {"note": [{"noteid": str(n.noteid), "date": world.fmt(n.date), "message": n.message,
                               "admin": n.admin} for n in t.notes]}
    return 200, body


def get_support_departments(world: World, p: dict[str, str]) -> Result:
    ignore = php_truthy(p.get("ignore_dept_assignments"))
    # Unlike GetTickets, an admin without departments sees all of them here.
    mine = set(world.api_admin_departments)
    depts = [d for d in world.departments if ignore or not mine or d.id in mine]
    active, awaiting = _titles(world, "showactive"), _titles(world, "showawaiting")
    counts = {d.id: [0, 0] for d in depts}
    for (deptid, status), n in _tally(world)[0].items():
        c = counts.get(deptid)
        if c is not None:
            c[0] += n if status in awaiting else 0
            c[1] += n if status in active else 0
    rows = [{"id": str(d.id), "name": stored(world, "GetSupportDepartments", d.name),
             "awaitingreply": str(counts[d.id][0]), "opentickets": str(counts[d.id][1])}
            for d in sorted(depts, key=lambda d: d.name)]
    body: Body = {"result": "success", "totalresults": _n(world, len(rows))}
    if rows:
        body["departments"] = {"department": rows}
    return 200, body


def get_support_statuses(world: World, p: dict[str, str]) -> Result:
    deptid = php_int(p.get("deptid"))
    counts: dict[str, int] = {}
    for (d, status), n in _tally(world)[0].items():
        if not deptid or d == deptid:
            counts[status] = counts.get(status, 0) + n
    rows = []
    for s in sorted(world.statuses, key=lambda s: s.sortorder):
        row: dict = {"title": stored(world, "GetSupportStatuses", s.title), "count": counts.get(s.title, 0)}
        if not world.version.startswith("7"):
            row["color"] = s.color
        rows.append(row)
    return 200, {"result": "success", "totalresults": _n(world, len(rows)), "statuses": {"status": rows}}


def handle(world: World, action: str, params: dict[str, str], gateway_ticketnum: bool = False) -> Result:
    """Run one (already authenticated) action against the world, holding the world lock (after its latency)."""
    name = canonical(action)
    world.take_call_time()
    with world.lock:
        if name == "GetTicketCounts":
            return get_ticket_counts(world, params)
        if name == "GetTickets":
            return get_tickets(world, params)
        if name == "GetTicket":
            return get_ticket(world, params, gateway_ticketnum)
        if name == "GetSupportDepartments":
            return get_support_departments(world, params)
        if name == "GetSupportStatuses":
            return get_support_statuses(world, params)
        if name == "GetAdminUsers":
            return get_admin_users(world, php_truthy(params.get("include_disabled")))
    return error("Command Not Found")


# ---- encodings -----------------------------------------------------------------------------------

def to_json(body: object) -> bytes:
    # PHP's json_encode escapes non-ASCII and slashes; clients must cope with both.
    return json.dumps(body, ensure_ascii=True).replace("/", "\\/").encode()


def to_nvp(body: dict) -> bytes:
    """WHMCS's flat `key=value;` text: nested maps cannot be carried, so they are dropped."""
    parts = []
    for k, v in body.items():
        if isinstance(v, dict):
            continue
        if isinstance(v, list):
            v = ",".join(str(x) for x in v)
        parts.append(f"{k}={v}")
    return (";".join(parts)).encode()


def _xml(value: object, tag: str) -> str:
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(_xml(v, k) for k, v in value.items()) + f"</{tag}>"
    if isinstance(value, list):
        return "".join(_xml(v, tag) for v in value)
    if isinstance(value, bool):
        value = int(value)
    return f"<{tag}>{escape(str(value))}</{tag}>"


def to_xml(body: dict, action: str) -> bytes:
    inner = f"<action>{escape(action.lower())}</action>" + "".join(_xml(v, k) for k, v in body.items())
    return f'<?xml version="1.0" encoding="utf-8"?>\n<whmcsapi version="8.7.3">{inner}</whmcsapi>'.encode()


def render(body: dict, responsetype: str | None, action: str) -> tuple[str, bytes]:
    """Encode as WHMCS would: json if asked; else nvp for GetTicketCounts, xml for the rest."""
    if (responsetype or "").lower() == "json":
        return "application/json; charset=utf-8", to_json(body)
    if (responsetype or "").lower() == "nvp" or canonical(action) == "GetTicketCounts":
        return "text/plain; charset=utf-8", to_nvp(body)
    return "text/xml; charset=utf-8", to_xml(body, action)


def text_error(message: str) -> bytes:
    """Auth/IP errors are written before the response type is read: always this plain text."""
    return f"result=error;message={message}".encode()
