"""One WHMCS API call: build the request, send it, turn every answer into data or a typed error.

The client knows nothing about tickets. `call(action, params)` returns the
decoded JSON object of a `result=success` answer, or raises a `WhmcsError`
subclass whose one-line message says what happened. Credentials are read on
every call (so rotated secret files work) and scrubbed from every message.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
import urllib3

from exporter import __version__
from exporter.answers import classify
from exporter.bearer import GRANT_ACTION, OAuth2PasswordGrant, StaticToken, TokenSource, kebab_case
from exporter.config import AdminLogin, ApiCredentials, BearerToken, InstallationConfig, OAuth2Login
from exporter.errors import (
    AuthError,
    CallTimeout,
    InvalidResponse,
    WhmcsError,
    scrub_secrets,
)
from exporter.transport import (
    ACCEPT_ENCODING,
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    Deadline,
    DeadlinePassed,
    UnknownEncoding,
    read_body,
    transport_error,
    watched_session,
)

_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
# A Laravel gateway answers an unauthenticated request with a redirect to its login page unless the request
# looks like an API call (seed 004 sends X-Requested-With); with these it answers 401 JSON instead.
_BEARER_HEADERS = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}


class ApiClient(Protocol):
    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]: ...


@dataclass
class CallStats:
    """Calls made and failed, by action. Written by one poller thread, read by scrapes."""

    requests: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # (action, reason) -> n
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, action: str, reason: str | None) -> None:
        with self.lock:
            self.requests[action] += 1
            if reason is not None:
                self.failures[(action, reason)] += 1

    def record_failure(self, action: str, reason: str) -> None:
        """A failure found after the call itself succeeded (an answer of the wrong shape)."""
        with self.lock:
            self.failures[(action, reason)] += 1

    def totals(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        with self.lock:
            return dict(self.requests), dict(self.failures)


def flag(value: bool) -> str:
    """WHMCS reads flags with PHP truthiness: the text "false" is true. Send 1/0 only."""
    return "1" if value else "0"


def legacy_password(password: str) -> str:
    """WHMCS's legacy admin login wants the MD5 hex of the password, unless it already is one."""
    if _MD5_HEX.match(password):
        return password.lower()
    return hashlib.md5(password.encode("utf-8")).hexdigest()  # noqa: S324 - WHMCS's protocol, not our choice


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds (`120`) or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WhmcsClient:
    """Calls one installation's API with the configured credentials, in its `api_style`:

    - `whmcs`: `POST <url>/includes/api.php` with `action`, `responsetype=json` and the credentials as form fields;
    - `bearer`: `POST <url>/<action-in-kebab-case>` with the same parameters minus action and credentials, and
      `Authorization: Bearer <token>` from `exporter.bearer` (token grants count as action `oauth_token`).
    """

    def __init__(self, installation: InstallationConfig, session: requests.Session | None = None,
                 stats: CallStats | None = None, tokens: TokenSource | None = None) -> None:
        self.installation = installation
        self.session = watched_session(session)
        self.session.headers["User-Agent"] = f"whmcs-ticket-exporter/{__version__}"
        self.stats = stats or CallStats()
        self.endpoint = installation.url + "/includes/api.php"
        self.tokens = tokens
        if self.tokens is None and installation.api_style == "bearer":
            self.tokens = self._token_source()

    def _token_source(self) -> TokenSource:
        inst, auth = self.installation, self.installation.auth
        if isinstance(auth, BearerToken):
            return StaticToken(auth.token)
        assert isinstance(auth, OAuth2Login)  # the other bearer-style login
        return OAuth2PasswordGrant(
            auth.token_url, auth.client_id, auth.client_secret, auth.username, auth.password,
            post=lambda url, data: self._post(GRANT_ACTION, url, data, _BEARER_HEADERS),
            record=self.stats.record, retry_after=inst.auth_backoff, name=inst.name)

    def credentials(self) -> dict[str, str]:
        """The auth parameters as WHMCS wants them; in bearer style the inputs the tokens come from (used to
        notice a rotated secret file, never sent as they are). Raises OSError when a secret file went missing."""
        if self.tokens is not None:
            return self.tokens.inputs()
        auth = self.installation.auth
        params: dict[str, str] = {}
        if isinstance(auth, ApiCredentials):
            params["identifier"] = auth.identifier.read()
            params["secret"] = auth.secret.read()
        elif isinstance(auth, AdminLogin):
            params["username"] = auth.username
            params["password"] = legacy_password(auth.password.read())
        if isinstance(auth, (ApiCredentials, AdminLogin)) and auth.accesskey is not None:
            params["accesskey"] = auth.accesskey.read()
        return params

    def secret_values(self, auth: Mapping[str, str]) -> list[str]:
        """Every value that must never appear in a message: sent credentials, every credential the login holds
        (the raw password too: WHMCS gets only its MD5), tokens."""
        values = [v for k, v in auth.items() if k not in ("username", "client_id") and v]
        for secret in self.installation.auth.secrets():
            try:
                values.append(secret.read())
            except OSError:
                pass
        if self.tokens is not None:
            values += self.tokens.secret_values()
        # scrub_secrets also looks for every encoding of them.
        return list(dict.fromkeys(v for v in values if v))

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        form = {k: str(v) for k, v in (params or {}).items()}
        try:
            if self.tokens is not None:
                return self._call_bearer(action, form)
            return self._call_whmcs(action, form)
        except WhmcsError as exc:
            try:
                secrets = self.secret_values(self.credentials())
            except OSError:
                secrets = self.secret_values({})
            raise scrub_secrets(exc, secrets).with_traceback(None) from None

    def _call_whmcs(self, action: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            auth = self.credentials()
        except OSError as exc:
            self.stats.record(action, "auth")
            raise AuthError(action, f"cannot read a secret file: {exc.strerror}") from None
        return self._exchange(action, self.endpoint, {"action": action, "responsetype": "json", **auth, **form}, {})

    def _call_bearer(self, action: str, form: dict[str, str]) -> dict[str, Any]:
        """One call; after a 401 one renewed token and one retry, then the AuthError stands (auth back-off)."""
        assert self.tokens is not None
        url = f"{self.installation.url}/{kebab_case(action)}"
        token = self.tokens.token()  # grant failures are counted as oauth_token, not as this action
        try:
            return self._exchange(action, url, form, {**_BEARER_HEADERS, "Authorization": f"Bearer {token}"})
        except AuthError as exc:
            if exc.status != 401 or not self.tokens.renew(token):
                raise
        token = self.tokens.token()
        return self._exchange(action, url, form, {**_BEARER_HEADERS, "Authorization": f"Bearer {token}"})

    def _exchange(self, action: str, url: str, data: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
        """One HTTP request, counted under `action` with its failure reason."""
        try:
            status, body, retry_after = self._post(action, url, data, headers)
            result = classify(action, status, body, retry_after, gateway=self.tokens is not None)
        except WhmcsError as exc:
            self.stats.record(action, exc.reason)
            raise
        self.stats.record(action, None)
        return result

    def _post(self, action: str, url: str, data: Mapping[str, str],
              headers: Mapping[str, str]) -> tuple[int, bytes, float | None]:
        """POST and read the whole answer within `timeout` seconds in total (connect to last byte), at most
        MAX_ANSWER_BYTES of it. Errors carry no traceback or context: a kept error must not keep a buffer."""
        try:
            return self._bounded_post(action, url, data, headers)
        except WhmcsError as exc:
            exc.__context__ = exc.__cause__ = None
            raise exc.with_traceback(None) from None

    def _bounded_post(self, action: str, url: str, data: Mapping[str, str],
                      headers: Mapping[str, str]) -> tuple[int, bytes, float | None]:
        inst = self.installation
        verify: bool | str = inst.ca_file if inst.ca_file else inst.tls_verify
        deadline = Deadline(inst.timeout)
        try:
            with deadline:
                response = self.session.post(url, data=data, headers={**headers, "Accept-Encoding": ACCEPT_ENCODING},
                                             timeout=inst.timeout, verify=verify, stream=True, allow_redirects=False)
                with response:
                    body = read_body(response)
                    if deadline.expired:  # the watchdog's shutdown can look like the end of the body
                        raise DeadlinePassed()
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    return response.status_code, body, retry_after
        except AnswerTooLarge:
            raise InvalidResponse(action, f"answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB, "
                                  "not read further") from None
        except UnknownEncoding as exc:
            raise InvalidResponse(action, f"answer in an encoding not asked for: {exc}") from None
        except (DeadlinePassed, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise CallTimeout(action, f"no answer within {inst.timeout:g}s") from None
        except Exception as exc:
            if deadline.expired:  # any error after the watchdog fired is its doing
                raise CallTimeout(action, f"no answer within {inst.timeout:g}s") from None
            raise transport_error(action, exc) from None
