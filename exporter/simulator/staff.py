"""The simulated desk's staff: GetAdminUsers, flags that move over time, and the flag truth.

Staff live in `World.admins` (admin id -> display name, as replies carry it); `World.admin_names` gives
first and last name where the display name is not simply split at its first space, and
`World.disabled_admins` the staff members who may no longer log in. A ticket's `flag` is an admin id
(0 = not flagged), possibly of an admin that no longer exists.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .stored_text import stored

if TYPE_CHECKING:
    from .world import World

ACTION = "GetAdminUsers"
# Staff a generated desk adds to the default three: names with characters WHMCS escapes, a disabled one.
EXTRA_STAFF = {4: ("Seán", "O'Brien"), 5: ("Zoë", "van der Berg & Co"), 6: ("Marta", "Nowak")}
DISABLED = {6}
# A flag to an admin deleted since: GetAdminUsers no longer lists the id.
DELETED_ADMIN = 9


def first_last(world: World, admin_id: int) -> tuple[str, str]:
    """(firstname, lastname) of a staff member."""
    if admin_id in world.admin_names:
        return world.admin_names[admin_id]
    first, _, last = world.admins[admin_id].partition(" ")
    return first, last


def add_staff(world: World) -> None:
    """Give a generated desk more staff (first and last names, one disabled); idempotent."""
    for admin_id, (first, last) in EXTRA_STAFF.items():
        world.admins[admin_id] = f"{first} {last}"
        world.admin_names[admin_id] = (first, last)
    world.disabled_admins |= DISABLED


def _user(world: World, admin_id: int) -> dict:
    first, last = first_last(world, admin_id)
    depts = ",".join(str(d.id) for d in world.departments)
    ident: int | str = str(admin_id) if world.version.startswith("7") else admin_id
    return {"id": ident, "uuid": f"00000000-0000-4000-8000-{admin_id:012d}",
            "roleId": 1, "username": f"{first}{last}".lower().replace(" ", "")[:16] or f"admin{admin_id}",
            "firstname": stored(world, ACTION, first), "lastname": stored(world, ACTION, last),
            "email": f"staff{admin_id}@example.com", "isDisabled": admin_id in world.disabled_admins,
            "supportDepartmentIds": depts, "receivesTicketNotifications": depts}


def get_admin_users(world: World, include_disabled: bool) -> tuple[int, dict]:
    """GetAdminUsers: every admin (disabled ones only with `include_disabled`); 403 when the role lacks it."""
    if world.admin_users_denied:
        return 403, {"result": "error", "message": f'Invalid Permissions: API action "{ACTION.lower()}" is not allowed'}
    ids = sorted(i for i in world.admins if include_disabled or i not in world.disabled_admins)
    users = [_user(world, i) for i in ids]
    return 200, {"result": "success", "count": len(users), "admin_users": users}


def move_flags(world: World, rng: random.Random) -> None:
    """One tick of flag changes: an active ticket gets flagged, moved to another admin or unflagged."""
    active = [t for t in world.live_tickets() if (s := world.status(t.status)) and s.showactive]
    if not active or rng.random() >= 0.4:
        return
    ticket = rng.choice(active)
    choices = [*world.admins, DELETED_ADMIN, 0]
    world.set_flag(ticket.id, rng.choice(choices))


def flagged_truth(world: World) -> dict[int, int]:
    """Active, non-merged tickets per flag admin id (unflagged left out): what an exporter should count."""
    with world.lock:
        out: dict[int, int] = {}
        for t in world.live_tickets():
            status = world.status(t.status)
            if t.flag and status is not None and status.showactive:
                out[t.flag] = out.get(t.flag, 0) + 1
        return out
