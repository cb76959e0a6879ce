"""Typed failures of one WHMCS API call.

Every way a call can fail maps to one class here, and each class carries the
`reason` label used by `whmcs_exporter_api_request_failures_total`. Messages
are one line and never contain credentials: the client builds them only from
the action name, the HTTP status and what WHMCS said.
"""

from __future__ import annotations

REASONS = (
    "auth",
    "permission",
    "http",
    "timeout",
    "connection",
    "invalid_response",
    "api_error",
    "rate_limited",
    "unsupported",
)


class WhmcsError(Exception):
    """A failed API call. `reason` is the metric label, `action` the API action."""

    reason = "api_error"

    def __init__(self, action: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None, overloaded: bool = False) -> None:
        self.action = action
        self.status = status
        # Seconds WHMCS (or a proxy) asked us to wait, from Retry-After.
        self.retry_after = retry_after
        # The server said it is overloaded (429/503): the poller backs off exponentially.
        self.overloaded = overloaded or retry_after is not None
        self.message = " ".join(message.split())  # one line, always
        prefix = f"{action}: " if action else ""
        http = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{prefix}{http}{self.message}")

    @property
    def aborts_poll(self) -> bool:
        """True when the rest of the poll's calls would fail the same way."""
        return True


class AuthError(WhmcsError):
    """Credentials, IP allow-list, access key or IP ban: every further call counts as a failed login."""

    reason = "auth"


class PermissionDenied(WhmcsError):
    """The API role lacks this one action; the login itself worked, other actions may still succeed."""

    reason = "permission"

    @property
    def aborts_poll(self) -> bool:
        return False


class Unsupported(WhmcsError):
    """The installation (usually a gateway) does not offer this action at all."""

    reason = "unsupported"

    @property
    def aborts_poll(self) -> bool:
        return False


class ApiError(WhmcsError):
    """WHMCS answered `result=error` for a reason other than access."""

    reason = "api_error"

    @property
    def aborts_poll(self) -> bool:
        return False


class NotFound(ApiError):
    """`Ticket ID Not Found`: the ticket was merged or deleted; views treat it as data, not failure."""


class HttpStatusError(WhmcsError):
    reason = "http"


class RateLimited(WhmcsError):
    """HTTP 429: too many requests. `retry_after` is seconds to wait, None when not given."""

    reason = "rate_limited"

    def __init__(self, action: str, message: str, **kwargs) -> None:
        kwargs["overloaded"] = True
        super().__init__(action, message, **kwargs)


class CallTimeout(WhmcsError):
    reason = "timeout"


class ConnectionFailed(WhmcsError):
    reason = "connection"


class InvalidResponse(WhmcsError):
    """The body is not what the action answers: HTML, garbage, truncated JSON, wrong shape."""

    reason = "invalid_response"



class ShapeError(InvalidResponse):
    """A `result=success` answer whose fields are missing or of the wrong type.

    Raised by the views while reading an answer; it fails that view only,
    since other actions may still answer well.
    """

    @property
    def aborts_poll(self) -> bool:
        return False


def scrub_secrets(exc: WhmcsError, secrets: list[str]) -> WhmcsError:
    """Defence in depth: a WAF or debug page may echo the request; never let a secret through."""
    for secret in secrets:
        if len(secret) >= 4 and secret in exc.message:
            exc.message = exc.message.replace(secret, "***")
            exc.args = (str(exc.args[0]).replace(secret, "***"),)
        # Messages quote at most 200 characters of a page, so an echoed secret may be cut in half at the end.
        for size in range(len(secret) - 1, 3, -1):
            if exc.message.endswith(secret[:size]):
                exc.message = exc.message[:-size] + "***"
                text = str(exc.args[0])
                exc.args = (text[:-size] + "***" if text.endswith(secret[:size]) else text,)
                break
    return exc
