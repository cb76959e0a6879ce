"""Who may call the simulated API: WHMCS credential checks with the IP allow-list and brute-force ban,
and the OAuth2 bearer tokens of a WHMCS-compatible gateway.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    message: str = ""
    login_failed: bool = False


class Auth:
    """The checks WHMCS's api.php runs before it even reads `responsetype`.

    `allow_ips` is the API IP allow-list ("*" allows everyone); `ban_exempt_ips` is the separate list of
    IPs WHMCS never bans. Three failed logins from one IP within `ban_window` seconds ban that IP.
    """

    def __init__(self, identifier: str = "sim-identifier", secret: str = "sim-secret",
                 admin_username: str = "admin", admin_password: str = "admin-password",
                 accesskey: str | None = None, allow_ips: Iterable[str] = ("127.0.0.1", "::1"),
                 ban_window: float = 1800.0, ban_threshold: int = 3, ban_exempt_ips: Iterable[str] = (),
                 clock: Callable[[], float] = time.time):
        self.identifier, self.secret = identifier, secret
        self.admin_username = admin_username
        self.admin_password_md5 = hashlib.md5(admin_password.encode()).hexdigest()
        self.accesskey = accesskey
        self.allow_ips = set(allow_ips)
        self.ban_window, self.ban_threshold = ban_window, ban_threshold
        self.ban_exempt_ips = set(ban_exempt_ips)
        self.clock = clock
        self.denied: set[str] = set()
        self._failures: dict[str, list[float]] = {}
        self._banned: set[str] = set()
        self._lock = threading.Lock()

    def check(self, ip: str, params: dict[str, str]) -> AuthResult:
        """Ban, then IP/access key, then credentials, in WHMCS's order."""
        with self._lock:
            if ip in self._banned:
                return AuthResult(False, "IP Banned")
        if "*" not in self.allow_ips and ip not in self.allow_ips:
            given = params.get("accesskey")
            if self.accesskey is None or given is None:
                return AuthResult(False, f"Invalid IP {ip}")
            if not secrets.compare_digest(given, self.accesskey):
                return AuthResult(False, "Invalid Access Key")
        msg = self._credentials(params)
        if msg is None:
            return AuthResult(True)
        self._record_failure(ip)
        return AuthResult(False, msg, login_failed=True)

    def _credentials(self, p: dict[str, str]) -> str | None:
        user = p.get("identifier") or p.get("username") or ""
        pwd = p.get("secret") if p.get("identifier") else p.get("password")
        if not user or not pwd:
            return "Invalid or missing credentials"
        if user == self.identifier:
            return None if secrets.compare_digest(pwd, self.secret) else "Authentication Failed"
        if user == self.admin_username:
            if not _MD5.match(pwd):
                return "Invalid password provided"
            return None if secrets.compare_digest(pwd, self.admin_password_md5) else "Authentication Failed"
        return "Authentication Failed"

    def _record_failure(self, ip: str) -> None:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(ip, []) if now - t < self.ban_window] + [now]
            self._failures[ip] = recent
            if len(recent) >= self.ban_threshold and ip not in self.ban_exempt_ips:
                self._banned.add(ip)

    def permission(self, action: str) -> str | None:
        """The 403 message for an action the API role does not allow, else None."""
        if action.lower() in {a.lower() for a in self.denied}:
            return f'Invalid Permissions: API action "{action.lower()}" is not allowed'
        return None

    def banned(self) -> set[str]:
        with self._lock:
            return set(self._banned)

    def unban(self, ip: str | None = None) -> None:
        """What the administrator does in Configuration > Banned IPs (None = everyone)."""
        with self._lock:
            if ip is None:
                self._banned.clear()
                self._failures.clear()
            else:
                self._banned.discard(ip)
                self._failures.pop(ip, None)


class TokenStore:
    """OAuth2 password / refresh_token grants and bearer-token validation (Laravel Passport style)."""

    def __init__(self, client_id: str, client_secret: str, username: str, password: str,
                 token_ttl: float = 3600.0, refresh_ttl: float = 10 * 86400.0,
                 static_tokens: Iterable[str] = (), clock: Callable[[], float] = time.time):
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.token_ttl, self.refresh_ttl = token_ttl, refresh_ttl
        self.static_tokens = set(static_tokens)
        self.clock = clock
        self.grant_counts = {"password": 0, "refresh_token": 0}
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        self._lock = threading.Lock()

    def valid(self, token: str) -> bool:
        if token in self.static_tokens:
            return True
        with self._lock:
            exp = self._access.get(token)
            return exp is not None and self.clock() < exp

    def expire_all(self) -> None:
        """Make every issued access token stale at once (refresh tokens survive)."""
        with self._lock:
            self._access.clear()

    def grant(self, p: dict[str, str]) -> tuple[int, dict, bool]:
        """Answer POST /oauth/token: (status, body, login_failed)."""
        kind = p.get("grant_type", "")
        if kind not in self.grant_counts:
            return 400, {"error": "unsupported_grant_type",
                         "message": "The authorization grant type is not supported."}, False
        if p.get("client_id") != self.client_id or p.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "message": "Client authentication failed"}, True
        now = self.clock()
        with self._lock:
            if kind == "password":
                if p.get("username") != self.username or p.get("password") != self.password:
                    return 400, {"error": "invalid_grant",
                                 "message": "The user credentials were incorrect."}, True
            else:
                exp = self._refresh.pop(p.get("refresh_token", ""), None)  # one use only
                if exp is None or now >= exp:
                    return 400, {"error": "invalid_grant",
                                 "message": "The refresh token is invalid."}, True
            self.grant_counts[kind] += 1
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._access[access] = now + self.token_ttl
            self._refresh[refresh] = now + self.refresh_ttl
        return 200, {"token_type": "Bearer", "expires_in": int(self.token_ttl), "access_token": access,
                     "refresh_token": refresh}, False
