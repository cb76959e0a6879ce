"""`--web.config.file`: TLS and basic auth for the exporter's HTTP endpoints, exporter-toolkit style.

The file has the shape the Prometheus exporter-toolkit reads, so a web config
written for node_exporter works here:

    tls_server_config:
      cert_file: /etc/whmcs-exporter/tls.crt
      key_file: /etc/whmcs-exporter/tls.key
      client_ca_file: /etc/whmcs-exporter/clients.crt   # optional
      client_auth_type: RequireAndVerifyClientCert       # optional
      min_version: TLS12                                 # optional
    basic_auth_users:
      prometheus: $2b$12$...                             # bcrypt hash

`load_web_config()` checks everything up front (files exist, the certificate
and key load, hashes are bcrypt) and raises `ConfigError` listing every
problem, so a bad file stops the exporter at start rather than at the first
scrape. Python's `ssl` cannot accept a client certificate without verifying
it, so `RequestClientCert` and `RequireAnyClientCert` need `client_ca_file`
here and verify against it (the toolkit would accept any certificate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bcrypt

from exporter.config import ConfigError, read_yaml

CLIENT_AUTH_TYPES = ("NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
                     "RequireAndVerifyClientCert")
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}
_TOP_KEYS = {"tls_server_config", "basic_auth_users"}
# Toolkit keys with no equivalent in Python's ssl/http.server: named so the error says why, not just "unknown".
_UNSUPPORTED = {"cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans",
                "http_server_config"}
# $2a$, $2b$, $2y$ with a two-digit cost and 53 characters of salt + hash (bcrypt's modular crypt format).
_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
# Verified-good Authorization headers kept (as SHA-256 digests); past this the cache starts over.
_CACHE_LIMIT = 1024


@dataclass(frozen=True)
class TLSConfig:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str | None = None

    def context(self) -> ssl.SSLContext:
        """A server-side context. Raises ssl.SSLError/OSError when files do not load."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_auth_type == "NoClientCert":
            ctx.verify_mode = ssl.CERT_NONE
        else:
            assert self.client_ca_file is not None  # load_web_config guarantees it
            ctx.load_verify_locations(cafile=self.client_ca_file)
            optional = self.client_auth_type in ("RequestClientCert", "VerifyClientCertIfGiven")
            ctx.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
        return ctx


@dataclass(frozen=True)
class WebConfig:
    tls: TLSConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)

    def authenticator(self) -> Callable[[str | None], bool] | None:
        """A check of the Authorization header, or None when no basic_auth_users are configured."""
        if not self.users:
            return None
        return BasicAuth(self.users)

    def socket_wrapper(self) -> Callable[[socket.socket], socket.socket] | None:
        """Wraps the listening socket in TLS, or None without tls_server_config.

        The handshake is not done in accept() (`do_handshake_on_connect=False`):
        accept() runs in the server loop, and one slow or silent client would
        stop every other scrape. `ExporterHTTPServer.finish_request` does it in
        the connection's own thread, with a timeout.
        """
        if self.tls is None:
            return None
        ctx = self.tls.context()

        def wrap(sock: socket.socket) -> socket.socket:
            return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

        return wrap


class BasicAuth:
    """Checks `Authorization: Basic ...` against bcrypt hashes, remembering headers that passed.

    bcrypt costs tens of milliseconds by design; Prometheus sends the same
    header on every scrape, so a verified header is remembered by its SHA-256
    digest. Concurrent first scrapes with one header wait for a single bcrypt
    check instead of each paying for it.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = [(name.encode("utf-8"), hashed) for name, hashed in users.items()]
        # Unknown users are checked against this so a miss costs as much as a wrong password (no enumeration).
        self._dummy = dummy_hash(max((int(h[4:6]) for h in users.values()), default=10))
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        self._inflight: dict[bytes, threading.Lock] = {}

    def __call__(self, header: str | None) -> bool:
        if not header:
            return False
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        if key in self._verified:
            return True
        with self._lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            if key in self._verified:  # another thread verified this header while we waited
                return True
            ok = self._check(header)
            with self._lock:
                if ok:
                    if len(self._verified) >= _CACHE_LIMIT:
                        self._verified.clear()
                    self._verified.add(key)
                self._inflight.pop(key, None)
        return ok

    def _check(self, header: str) -> bool:
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        # Compare against every user in constant time, so timing does not reveal which names exist.
        hashed = self._dummy
        found = False
        for name, candidate in self._users:
            if hmac.compare_digest(name, user):
                hashed, found = candidate, True
        try:
            ok = bcrypt.checkpw(password, hashed)
        except ValueError:  # a hash bcrypt rejects at check time; load_web_config should have caught it
            return False
        return ok and found


def dummy_hash(cost: int) -> bytes:
    """A bcrypt hash of nothing anyone knows, checked at `cost`. Made at cost 4 with the cost field raised: a
    check reads the cost from the hash, and making one at cost 31 would take days."""
    made = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(rounds=4))
    return made[:4] + f"{cost:02d}".encode() + made[6:]


def load_web_config(path: str) -> WebConfig:
    """Read and validate the web config. Raises ConfigError listing every problem."""
    return parse_web_config(read_yaml(path, "web config"), source=path)


def parse_web_config(document: Any, source: str = "web config") -> WebConfig:
    if document is None:
        return WebConfig()  # an empty file: plain HTTP, no auth, as the toolkit does
    if not isinstance(document, Mapping):
        raise ConfigError([f"{source}: expected a mapping with tls_server_config and/or basic_auth_users"])
    problems: list[str] = []
    for key in sorted(map(str, set(document) - _TOP_KEYS)):
        problems.append(_unknown(source, key))
    tls = _tls(document.get("tls_server_config"), f"{source}: tls_server_config", problems)
    users = _users(document.get("basic_auth_users"), f"{source}: basic_auth_users", problems)
    if problems:
        raise ConfigError(problems)
    return WebConfig(tls=tls, users=users)


def _unknown(where: str, key: str) -> str:
    if key in _UNSUPPORTED:
        return f"{where}: '{key}' is not supported by this exporter"
    return f"{where}: unknown key '{key}'"


def _tls(raw: Any, where: str, problems: list[str]) -> TLSConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping")
        return None
    start = len(problems)
    for key in sorted(map(str, set(raw) - _TLS_KEYS)):
        problems.append(_unknown(where, key))
    files = _tls_files(raw, where, problems)
    default_auth = "RequireAndVerifyClientCert" if files["client_ca_file"] else "NoClientCert"
    auth = str(raw.get("client_auth_type") or default_auth)
    if auth not in CLIENT_AUTH_TYPES:
        problems.append(f"{where}.client_auth_type: unknown '{auth[:60]}'; one of {', '.join(CLIENT_AUTH_TYPES)}")
    elif auth != "NoClientCert" and not files["client_ca_file"]:
        problems.append(f"{where}.client_auth_type: {auth} needs client_ca_file (the CA that signs client "
                        "certificates; Python's TLS cannot accept client certificates unverified)")
    versions = _tls_versions(raw, where, problems)
    if len(problems) > start or files["cert_file"] is None or files["key_file"] is None:
        return None
    tls = TLSConfig(cert_file=files["cert_file"], key_file=files["key_file"],
                    client_ca_file=files["client_ca_file"], client_auth_type=auth,
                    min_version=versions["min_version"] or "TLS12", max_version=versions["max_version"])
    try:
        tls.context()
    except ssl.SSLError as exc:
        problems.append(f"{where}: cannot load cert_file/key_file/client_ca_file: {exc.reason or exc} "
                        "(are they PEM, and does the key belong to the certificate?)")
        return None
    except (OSError, ValueError) as exc:
        problems.append(f"{where}: cannot load cert_file/key_file/client_ca_file: {exc}")
        return None
    return tls


def _tls_files(raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, str | None]:
    """cert_file, key_file (both required) and client_ca_file: paths of readable files, or None."""
    files: dict[str, str | None] = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        value = raw.get(key)
        if value in (None, ""):
            files[key] = None
            if key != "client_ca_file":
                problems.append(f"{where}.{key}: required")
            continue
        files[key] = str(value)
        if not os.path.isfile(files[key]):
            problems.append(f"{where}.{key}: file {value} does not exist")
        elif not os.access(files[key], os.R_OK):
            problems.append(f"{where}.{key}: file {value} is not readable")
    return files


def _tls_versions(raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, str | None]:
    """min_version (default TLS12) and max_version (default none), each a known version, in order."""
    versions: dict[str, str | None] = {}
    for key, default in (("min_version", "TLS12"), ("max_version", None)):
        value = raw.get(key, default)
        if value is not None and str(value) not in TLS_VERSIONS:
            problems.append(f"{where}.{key}: unknown '{str(value)[:20]}'; one of {', '.join(TLS_VERSIONS)}")
            value = default
        versions[key] = None if value is None else str(value)
    if versions["max_version"] and versions["min_version"] and \
            TLS_VERSIONS[versions["max_version"]] < TLS_VERSIONS[versions["min_version"]]:
        problems.append(f"{where}: max_version is below min_version")
    return versions


def _users(raw: Any, where: str, problems: list[str]) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping of username: bcrypt hash")
        return {}
    users: dict[str, bytes] = {}
    for name, hashed in raw.items():
        if not isinstance(name, str) or not name or ":" in name:
            problems.append(f"{where}: user name {str(name)[:40]!r} must be non-empty text without ':'")
            continue
        # Never echo the value: someone may have put a plain password here by mistake.
        if not isinstance(hashed, str) or not _BCRYPT.match(hashed.strip()):
            problems.append(f"{where}.{name}: not a bcrypt hash (expected $2y$/$2b$/$2a$ with cost 04-31; "
                            "make one with: htpasswd -nBC 10 '' | tr -d ':\\n')")
            continue
        users[name] = hashed.strip().encode("ascii")
    return users
