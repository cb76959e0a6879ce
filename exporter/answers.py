"""A WHMCS answer -> the decoded success object or a typed error: pure, tested without HTTP.

WHMCS answers JSON (`result=success|error`), `result=...;message=...` text for access errors (they come
before the response type is read), or no API answer at all (an error page, a proxy's page, plain text).
Every outcome is a `WhmcsError` subclass with a one-line message; `exporter.client` makes the call.
"""

from __future__ import annotations

import json
from typing import Any

from exporter.error_pages import excerpt
from exporter.errors import (
    ApiError,
    AuthError,
    HttpStatusError,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unsupported,
    WhmcsError,
)

_AUTH_MESSAGES = (
    "ip banned", "invalid ip", "invalid access key", "invalid or missing credentials",
    "invalid administrative identifier", "administrator account disabled", "authentication failed",
    "access denied", "invalid password", "unauthenticated", "invalid_grant", "invalid_client",
)
_UNSUPPORTED_MESSAGES = ("command not found", "invalid api command", "unknown action")


def classify(action: str, status: int, body: bytes, retry_after: float | None = None, *,
             gateway: bool = False) -> dict[str, Any]:
    """Turn an HTTP status and body into the decoded success object or a typed error. Pure.

    On a bearer gateway (one URL per action) a 404 means the action is not offered: `Unsupported`, which
    fails that collector only. On api.php a 404 is a wrong URL or a proxy's page: an HTTP error that ends the poll.
    """
    text = body.decode("utf-8", errors="replace")
    document = _document(action, status, text, len(body))
    message: str | None = None
    if isinstance(document, dict):
        result = document.get("result")
        message = document.get("message") if isinstance(document.get("message"), str) else None
        if message is None and isinstance(document.get("error"), str):
            message = str(document.get("error_description") or document["error"])
        if result == "success" and status < 300:
            return document
        if result not in ("success", "error") and status < 300:
            raise InvalidResponse(action, "JSON answer without result=success/error", status=status)
    elif document is not None and status < 300:
        raise InvalidResponse(action, f"expected a JSON object, got {type(document).__name__}", status=status)
    if message is not None:
        raise _error_of_message(action, status, " ".join(message.split())[:200], retry_after, gateway)
    raise _error_of_page(action, status, text, retry_after, gateway)


def _document(action: str, status: int, text: str, size: int) -> Any:
    """The answer's JSON, or its `result=...;message=...` text (WHMCS's access errors ignore responsetype) as a
    mapping, or None for anything else (an HTML page, plain text)."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            if status < 400:
                raise InvalidResponse(action, f"truncated or malformed JSON ({size} bytes): {excerpt(stripped)}",
                                      status=status) from None
            return None
    if stripped.startswith("result="):
        pairs = dict(part.split("=", 1) for part in stripped.split(";") if "=" in part)
        return {"result": pairs.get("result", ""), "message": pairs.get("message", "")}
    return None


def _error_of_message(action: str, status: int, message: str, retry_after: float | None,
                      gateway: bool) -> WhmcsError:
    """The typed error for an answer that says what went wrong."""
    lowered = message.lower()
    if "invalid permissions" in lowered:
        return PermissionDenied(action, message, status=status)
    if status == 401 or any(m in lowered for m in _AUTH_MESSAGES):
        return AuthError(action, message, status=status)
    if (status == 404 and gateway) or any(m in lowered for m in _UNSUPPORTED_MESSAGES):
        return Unsupported(action, message, status=status)
    if "not found" in lowered and status < 300:
        return NotFound(action, message, status=status)
    if status == 429:
        return RateLimited(action, message, status=status, retry_after=retry_after, overloaded=True)
    if status == 403:
        return AuthError(action, message, status=status)
    if status >= 400:
        return HttpStatusError(action, message, status=status, retry_after=retry_after,
                               overloaded=status in (429, 503))
    return ApiError(action, message, status=status)


def _error_of_page(action: str, status: int, text: str, retry_after: float | None, gateway: bool) -> WhmcsError:
    """The typed error for an answer that is no API answer at all: an error page, a proxy's page, plain text."""
    summary = excerpt(text) or "empty body"
    if status == 429:
        return RateLimited(action, f"too many requests: {summary}", status=status, retry_after=retry_after)
    if status in (401, 403):
        return AuthError(action, f"access refused: {summary}", status=status)
    if status == 404 and gateway:
        return Unsupported(action, f"not found: {summary}", status=status)
    if status >= 300:
        return HttpStatusError(action, summary, status=status, retry_after=retry_after,
                               overloaded=status in (429, 503))
    kind = "HTML page" if "<" in text.lstrip()[:200] else "non-JSON text"
    return InvalidResponse(action, f"expected JSON, got {kind}: {summary}", status=status)
