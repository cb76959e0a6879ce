"""How WHMCS stores admin-entered text: HTML-escaped by its input sanitising, sometimes twice.

WHMCS runs input through `htmlspecialchars(..., ENT_QUOTES)` on save, so names come back from the API as
`Sales &amp; Billing` or `Partner&#039;s &lt;VIP&gt; Desk`. Whether a field is escaped depends on the
version and on how the value was saved (admin area, API, import); a value saved twice is escaped twice.
The world holds names as the admin typed them; `World.escape_names` says how many times the answers of
the actions in `World.escape_actions` (all when empty) carry them escaped.
"""

from __future__ import annotations

_PHP_SPECIALCHARS = {"&": "&amp;", '"': "&quot;", "'": "&#039;", "<": "&lt;", ">": "&gt;"}


def php_escape(value: str, times: int = 1) -> str:
    """`htmlspecialchars($value, ENT_QUOTES)` applied `times` times (`&` first, as PHP does it per character)."""
    for _ in range(times):
        value = "".join(_PHP_SPECIALCHARS.get(ch, ch) for ch in value)
    return value


def stored(world: object, action: str, value: str) -> str:
    """A name as `action` answers it in this world: escaped `escape_names` times where the switch applies."""
    times = getattr(world, "escape_names", 0)
    actions = getattr(world, "escape_actions", frozenset())
    if not times or (actions and action not in actions):
        return value
    return php_escape(value, times)
