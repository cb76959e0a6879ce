"""Bearer tokens for WHMCS-compatible gateways (Keliweb API v2 style): where they come from and when to renew.

A gateway re-exposes WHMCS's API actions as `POST <url>/<action-in-kebab-case>` with `Authorization: Bearer
<token>`. The token is static (`token` / `token_file`, re-read on every use so a rotated file is picked up)
or obtained with an OAuth2 password grant and kept fresh with the refresh grant:

- first use: one password grant; at `refresh_fraction` (80 %) of `expires_in`: one refresh grant, so a poll
  never starts on a token about to expire; refresh refused: one password grant; the token endpoint
  unreachable while the token is still valid: keep the token and try the refresh again later;
- a 401 from an API call: the client asks `renew()` once, which drops the token (the next `token()` refreshes
  or logs in again); a second 401 is an `AuthError` and the poller's auth back-off applies.

A refused password grant is a failed login, so it is never repeated within `retry_after` seconds with the
same credentials (the poller pauses an installation after an `AuthError` anyway; this is the second guard).
Messages carry the action, the HTTP status and the endpoint's `error` / `error_description` only, never a
token or a secret; `secret_values()` lists what the client must scrub besides.

No HTTP request is made here: the client passes `post` (its transport: timeout, TLS) and `record` (its
request counter), so the grants share the client's behaviour and metrics."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from exporter.config import Secret, credentials_digest
from exporter.errors import AuthError, HttpStatusError, InvalidResponse, RateLimited, WhmcsError, scrub_secrets

log = logging.getLogger(__name__)

# The `action` label of token endpoint calls in whmcs_exporter_api_requests_total.
GRANT_ACTION = "oauth_token"
# Refresh when this share of a token's lifetime has passed: early enough that a poll's calls never run
# into the expiry, late enough that a one-hour token costs one refresh per ~48 minutes.
REFRESH_FRACTION = 0.8
# Without `expires_in` a token is used until the gateway answers 401.
_NO_EXPIRY = math.inf

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

# (url, form fields) -> (HTTP status, body, Retry-After seconds); raises WhmcsError on transport failures.
Post = Callable[[str, Mapping[str, str]], tuple[int, bytes, float | None]]
# (action, failure reason or None) -> None: counts one request.
Record = Callable[[str, str | None], None]


def kebab_case(action: str) -> str:
    """WHMCS action name -> gateway path segment: GetTicketCounts -> get-ticket-counts."""
    return _CAMEL_BOUNDARY.sub("-", action).lower()


class TokenSource(Protocol):
    def token(self) -> str:
        """A token to send now. Raises `WhmcsError` (usually `AuthError`) when none can be had."""
        ...

    def renew(self, rejected: str) -> bool:
        """The gateway answered 401 to `rejected`: forget it; True if a retry with `token()` is worthwhile."""
        ...

    def inputs(self) -> dict[str, str]:
        """The configured credentials the tokens derive from (for noticing rotated files; never sent as is)."""
        ...

    def secret_values(self) -> list[str]:
        """Every value that must never appear in a message: tokens held and configured secrets."""
        ...


def _read(secret: Secret | None) -> str:
    return secret.read() if secret is not None else ""


class StaticToken:
    """A configured token. Read on every use: a rotated `token_file` takes effect with the next call."""

    def __init__(self, secret: Secret) -> None:
        self.secret = secret

    def token(self) -> str:
        try:
            value = self.secret.read()
        except OSError as exc:
            raise AuthError("", f"cannot read token_file: {exc.strerror}") from None
        if not value:
            raise AuthError("", "the configured bearer token is empty")
        return value

    def renew(self, rejected: str) -> bool:
        # Retrying the same token would only repeat the 401; a file rotated since the call is worth one try.
        try:
            return self.secret.read() not in ("", rejected)
        except OSError:
            return False

    def inputs(self) -> dict[str, str]:
        return {"token": self.secret.read()}

    def secret_values(self) -> list[str]:
        try:
            return [self.secret.read()]
        except OSError:
            return []


@dataclass(frozen=True)
class Grant:
    """One token endpoint answer."""

    access_token: str
    refresh_token: str | None
    expires_in: float | None


def parse_grant(status: int, body: bytes, retry_after: float | None = None) -> Grant:
    """A token endpoint answer -> `Grant`, or a typed error. Pure.

    Refusals (any 4xx but 429) are `AuthError`s: a wrong client, user, password or refresh token does not
    fix itself. 429 and 5xx are the endpoint's load, handled like WHMCS's. Messages use only the OAuth2
    `error` code and the endpoint's description, never the body as is (it might echo the request).
    """
    try:
        document = json.loads(body.decode("utf-8", errors="replace")) if body.strip() else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        document = None
    if status == 200 and document is not None:
        access = document.get("access_token")
        if not isinstance(access, str) or not access:
            raise InvalidResponse(GRANT_ACTION, "token endpoint answer without access_token", status=status)
        kind = document.get("token_type", "Bearer")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise InvalidResponse(GRANT_ACTION, f"token_type is {str(kind)[:20]!r}, expected Bearer", status=status)
        refresh = document.get("refresh_token")
        expires = document.get("expires_in")
        try:
            lifetime = float(expires) if expires is not None and not isinstance(expires, bool) else None
        except (TypeError, ValueError):
            lifetime = None
        return Grant(access, refresh if isinstance(refresh, str) and refresh else None,
                     lifetime if lifetime is not None and lifetime > 0 else None)
    if status == 200:
        raise InvalidResponse(GRANT_ACTION, f"token endpoint did not answer JSON ({len(body)} bytes)", status=status)

    described = ""
    if document is not None:
        code = document.get("error") if isinstance(document.get("error"), str) else ""
        text = document.get("error_description") or document.get("message") or document.get("hint") or ""
        text = text if isinstance(text, str) else ""
        described = ": ".join(p for p in (code, text) if p)
    described = " ".join(described.split())[:200] or ("no JSON error description" if document is None
                                                      else "no error description")
    if status == 429:
        raise RateLimited(GRANT_ACTION, f"token endpoint: {described}", status=status, retry_after=retry_after)
    if 400 <= status < 500:
        raise AuthError(GRANT_ACTION, f"token endpoint refused the grant: {described}", status=status)
    raise HttpStatusError(GRANT_ACTION, f"token endpoint: {described}", status=status, retry_after=retry_after,
                          overloaded=status == 503)


class OAuth2PasswordGrant:
    """Tokens from an OAuth2 password grant, renewed with the refresh grant before they expire.

    Thread-safe (one lock around the token state): one poller thread uses it, scrapes never do.
    `clock` is injectable so tests can walk through token lifetimes without waiting.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: Secret | None, username: str,
                 password: Secret | None, *, post: Post, record: Record | None = None,
                 clock: Callable[[], float] = time.monotonic, refresh_fraction: float = REFRESH_FRACTION,
                 retry_after: float = 1800.0, name: str = "") -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.post = post
        self.record = record or (lambda action, reason: None)
        self.clock = clock
        self.refresh_fraction = refresh_fraction
        self.retry_after = retry_after
        self.name = name
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self._refresh_due = 0.0
        self._failed: tuple[float, str, AuthError] | None = None  # (when, inputs digest, error)

    # -- the TokenSource interface ------------------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            now = self.clock()
            if self._access is not None and now < self._refresh_due:
                return self._access
            if self._refresh is not None:
                token = self._try_refresh(now)
                if token is not None:
                    return token
            return self._password_grant()

    def renew(self, rejected: str) -> bool:
        with self._lock:
            if self._access == rejected:
                # Keep the refresh token: it is the cheaper way back; if it fails too, the password grant runs.
                self._access, self._refresh_due, self._expires_at = None, 0.0, 0.0
            return True

    def inputs(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": _read(self.client_secret),
                "username": self.username, "password": _read(self.password)}

    def secret_values(self) -> list[str]:
        values = [v for v in (self._access, self._refresh) if v]
        for secret in (self.client_secret, self.password):
            try:
                values.append(_read(secret))
            except OSError:
                pass
        return [v for v in values if v]

    # -- grants -------------------------------------------------------------------------------------
    def _try_refresh(self, now: float) -> str | None:
        """The refreshed token, the still-valid old one when the endpoint is unreachable, or None
        when the refresh token was refused (the caller then logs in again)."""
        try:
            self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh or ""})
        except AuthError as exc:
            self._refresh = None
            log.warning("whmcs=%s: the OAuth2 refresh token was refused (%s); logging in again with the "
                        "password grant", self.name, exc.message)
            return None
        except WhmcsError as exc:
            if self._access is not None and now < self._expires_at:
                # The token still works: use it and retry the refresh a little later, not on every call.
                self._refresh_due = now + max(1.0, (self._expires_at - now) / 2)
                log.warning("whmcs=%s: cannot refresh the bearer token (%s); the current one is valid for "
                            "%.0fs more", self.name, exc, self._expires_at - now)
                return self._access
            raise
        return self._access

    def _password_grant(self) -> str:
        try:
            digest = credentials_digest(self.inputs())
        except OSError as exc:
            raise AuthError(GRANT_ACTION, f"cannot read a secret file: {exc.strerror}") from None
        now = self.clock()
        if self._failed is not None:
            when, failed_digest, error = self._failed
            if failed_digest == digest and now - when < self.retry_after:
                # A refused login repeated quickly is what gets hosts banned; the same answer stands.
                raise AuthError(GRANT_ACTION, f"{error.message} (not retried for {self.retry_after:.0f}s "
                                "unless the credentials change)", status=error.status)
        data = {"grant_type": "password", "client_id": self.client_id, "username": self.username,
                "password": _read(self.password)}
        if self.client_secret is not None:
            data["client_secret"] = _read(self.client_secret)
        try:
            grant = self._grant(data)
        except AuthError as exc:
            self._failed = (now, digest, exc)
            raise
        self._failed = None
        log.info("whmcs=%s: obtained a bearer token with the OAuth2 password grant (%s)", self.name,
                 f"valid for {grant.expires_in:.0f}s" if grant.expires_in else "no expiry given")
        return self._access or ""

    def _grant(self, fields: dict[str, str]) -> Grant:
        """One token endpoint call; on success the new tokens replace the old ones."""
        if fields["grant_type"] == "refresh_token":
            fields = {**fields, "client_id": self.client_id}
            if self.client_secret is not None:
                fields["client_secret"] = _read(self.client_secret)
        started = self.clock()  # measured before sending: the token's lifetime starts no earlier on the server
        try:
            status, body, retry_after = self.post(self.token_url, fields)
            grant = parse_grant(status, body, retry_after)
        except WhmcsError as exc:
            self.record(GRANT_ACTION, exc.reason)
            sent = [v for k, v in fields.items() if k in ("client_secret", "password", "refresh_token")]
            raise scrub_secrets(exc, sent + self.secret_values()) from None
        self.record(GRANT_ACTION, None)
        self._access = grant.access_token
        # Passport issues a new refresh token on each refresh; keep the old one when an endpoint does not.
        self._refresh = grant.refresh_token or (self._refresh if fields["grant_type"] == "refresh_token" else None)
        if grant.expires_in is None:
            self._expires_at = self._refresh_due = _NO_EXPIRY
        else:
            self._expires_at = started + grant.expires_in
            self._refresh_due = started + grant.expires_in * self.refresh_fraction
        return grant
