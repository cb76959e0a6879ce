"""Configuration: the YAML file or WHMCS_* environment variables -> validated dataclasses.

Validation collects every problem before reporting, names the field, and never
echoes a secret's value. `load()` raises `ConfigError` with the full list; the
CLI prints it and exits 2.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_BUCKETS = (900.0, 3600.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0, 604800.0)
API_STYLES = ("whmcs", "bearer")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def registered_collectors() -> tuple[tuple[str, ...], frozenset[str]]:
    """(every collector's name in poll order, the ones enabled by default), from the collector registry.

    Imported on use: the collectors import the client, which imports this module.
    """
    from exporter.collectors.registry import DEFAULTS, NAMES

    return NAMES, DEFAULTS


class ConfigError(Exception):
    """Every problem found in the configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Secret:
    """A credential given inline or as a file path. The value is read on use, so a
    rotated file is picked up without a restart, and it never shows in repr/str."""

    inline: str | None = None
    path: str | None = None

    def read(self) -> str:
        """The value; OSError when the file cannot be read as UTF-8 text (callers treat both alike)."""
        if self.path is not None:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    return handle.read().strip()
            except UnicodeDecodeError:
                raise OSError(errno.EILSEQ, "not UTF-8 text") from None
        return self.inline or ""

    def __repr__(self) -> str:
        return f"Secret(file={self.path!r})" if self.path else "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class InstallationConfig:
    name: str
    url: str
    api_style: str = "whmcs"
    identifier: Secret | None = None
    secret: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    accesskey: Secret | None = None
    # bearer style
    token: Secret | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    timezone: str = "UTC"
    poll_interval: float = 60.0
    timeout: float = 10.0
    tls_verify: bool = True
    ca_file: str | None = None
    ignore_department_assignments: bool = True
    max_age: float = 180.0
    auth_backoff: float = 1800.0
    max_backoff: float = 900.0
    collectors: frozenset[str] = field(default_factory=lambda: registered_collectors()[1])
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    sample_limit: int = 1000
    distribution_max_calls: int = 40
    response_window: float = 7 * 86400.0
    max_ticket_fetches_per_poll: int = 50
    max_series: int = 5000

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Config:
    installations: tuple[InstallationConfig, ...] = field(default_factory=tuple)


def credentials_digest(values: Mapping[str, str]) -> str:
    """A digest of credential values: notices a rotated secret without keeping a copy of it around."""
    return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()


def parse_duration(value: Any) -> float:
    """`90`, `90s`, `5m`, `1h30m`, `500ms` -> seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError("not a duration like 60s, 5m or 1h30m")
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


# (yaml key, env var) for the fields a single installation can take from the environment.
_ENV_PLAIN = {"url": "WHMCS_URL", "name": "WHMCS_NAME", "timezone": "WHMCS_TIMEZONE",
              "poll_interval": "WHMCS_POLL_INTERVAL"}
_ENV_SECRETS = {"api_identifier": "WHMCS_API_IDENTIFIER", "api_secret": "WHMCS_API_SECRET",
                "api_accesskey": "WHMCS_API_ACCESSKEY", "username": "WHMCS_USERNAME",
                "password": "WHMCS_PASSWORD"}

_SECRET_KEYS = {"api_identifier": "identifier", "api_secret": "secret", "api_accesskey": "accesskey",
                "password": "password", "token": "token", "client_secret": "client_secret"}
_KNOWN_KEYS = {
    "name", "url", "api_style", "username", "token_url", "client_id", "timezone", "poll_interval", "timeout",
    "tls_verify", "ca_file", "ignore_department_assignments", "max_age", "auth_backoff", "max_backoff",
    "collectors", "buckets", "sample_limit", "distribution_max_calls", "response_window",
    "max_ticket_fetches_per_poll", "max_series", "username_file",
} | set(_SECRET_KEYS) | {k + "_file" for k in _SECRET_KEYS}


def installation_from_env(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The raw installation mapping described by WHMCS_* variables, or None when WHMCS_URL is unset."""
    if not env.get("WHMCS_URL"):
        return None
    raw: dict[str, Any] = {}
    for key, var in _ENV_PLAIN.items():
        if env.get(var):
            raw[key] = env[var]
    for key, var in _ENV_SECRETS.items():
        if env.get(var):
            raw[key] = env[var]
        if env.get(var + "_FILE"):
            raw[key + "_file"] = env[var + "_FILE"]
    return raw


def read_yaml(path: str, what: str = "config") -> Any:
    """A YAML document, or ConfigError saying why the file cannot be used (never its content)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read {what}: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError([f"{path}: not valid YAML{where}"]) from None


def load(path: str | None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (or, without one, the environment) and validate it."""
    env = os.environ if env is None else env
    if path is not None:
        return parse(read_yaml(path), source=path)
    raw = installation_from_env(env)
    if raw is None:
        raise ConfigError(["no WHMCS configured: pass --config.file, set WHMCS_URL (and credentials), "
                           "or run --demo"])
    return parse({"installations": [raw]}, source="environment")


def parse(document: Any, source: str = "config") -> Config:
    problems: list[str] = []
    if not isinstance(document, Mapping) or not isinstance(document.get("installations"), list):
        raise ConfigError([f"{source}: expected a mapping with an 'installations' list"])
    unknown_top = set(document) - {"installations"}
    problems += [f"{source}: unknown key '{k}'" for k in sorted(map(str, unknown_top))]
    installations = []
    for index, raw in enumerate(document["installations"]):
        where = f"installations[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a mapping")
            continue
        inst = _installation(raw, where, problems)
        if inst is not None:
            installations.append(inst)
    if not document["installations"]:
        problems.append(f"{source}: 'installations' is empty")
    names = [i.name for i in installations]
    problems += [f"installations: name '{n}' is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise ConfigError(problems)
    return Config(installations=tuple(installations))


def _secret(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> Secret | None:
    inline, path = raw.get(key), raw.get(key + "_file")
    if inline is not None and path is not None:
        problems.append(f"{where}.{key}: set either {key} or {key}_file, not both")
        return None
    if path is not None:
        path = str(path)
        if not os.path.isfile(path):
            problems.append(f"{where}.{key}_file: file {path} does not exist")
        elif not os.access(path, os.R_OK):
            problems.append(f"{where}.{key}_file: file {path} is not readable")
        return Secret(path=path)
    if inline is not None:
        if not isinstance(inline, (str, int)) or isinstance(inline, bool):
            problems.append(f"{where}.{key}: must be a string")
            return None
        return Secret(inline=str(inline))
    return None


def _installation(raw: Mapping[str, Any], where: str, problems: list[str]) -> InstallationConfig | None:
    start = len(problems)
    problems += [f"{where}: unknown key '{k}'" for k in sorted(map(str, set(raw) - _KNOWN_KEYS))]
    values: dict[str, Any] = {}

    url = raw.get("url")
    parsed = urllib.parse.urlsplit(str(url)) if url else None
    if not url:
        problems.append(f"{where}.url: required (the WHMCS base URL, e.g. https://billing.example.com)")
    elif parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        problems.append(f"{where}.url: must be an http(s) URL like https://billing.example.com")
    else:
        values["url"] = str(url).rstrip("/")
    name = raw.get("name") or (parsed.hostname if parsed and parsed.hostname else None)
    values["name"] = str(name) if name else "whmcs"

    style = raw.get("api_style", "whmcs")
    if style not in API_STYLES:
        problems.append(f"{where}.api_style: must be one of {', '.join(API_STYLES)}")
    values["api_style"] = style

    for key, attr in _SECRET_KEYS.items():
        secret = _secret(raw, key, where, problems)
        if secret is not None:
            values[attr] = secret
    if raw.get("username_file") is not None:
        user = _secret(raw, "username", where, problems)
        try:
            values["username"] = user.read() if user is not None and user.path and os.path.isfile(user.path) \
                else None
        except OSError as exc:
            problems.append(f"{where}.username_file: cannot read: {exc.strerror}")
    elif raw.get("username") is not None:
        values["username"] = str(raw["username"])
    for key in ("token_url", "client_id", "ca_file"):
        if raw.get(key) is not None:
            values[key] = str(raw[key])
    if values.get("ca_file") and not os.path.isfile(values["ca_file"]):
        problems.append(f"{where}.ca_file: file {values['ca_file']} does not exist")

    _check_credentials(values, where, problems)

    tz = str(raw.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
        values["timezone"] = tz
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}.timezone: unknown time zone '{tz[:60]}' (use an IANA name like Europe/Berlin)")

    for key in ("poll_interval", "timeout", "max_age", "auth_backoff", "max_backoff", "response_window"):
        if raw.get(key) is not None:
            try:
                values[key] = parse_duration(raw[key])
            except ValueError as exc:
                problems.append(f"{where}.{key}: {exc}")
    if "max_age" not in values:
        values["max_age"] = 3 * values.get("poll_interval", 60.0)
    # No rule tying timeout to poll_interval: an overrunning poll delays the next one (polls never pile
    # up, see backoff.next_poll_time), so a timeout above a very short interval is safe.

    for key in ("tls_verify", "ignore_department_assignments"):
        if key in raw:
            if isinstance(raw[key], bool):
                values[key] = raw[key]
            else:
                problems.append(f"{where}.{key}: must be true or false")
    for key, low in (("sample_limit", 1), ("distribution_max_calls", 4), ("max_ticket_fetches_per_poll", 0),
                     ("max_series", 10)):
        if key in raw:
            if isinstance(raw[key], int) and not isinstance(raw[key], bool) and raw[key] >= low:
                values[key] = raw[key]
            else:
                problems.append(f"{where}.{key}: must be a whole number >= {low}")
    if "buckets" in raw:
        values["buckets"] = _buckets(raw["buckets"], f"{where}.buckets", problems)
    if "collectors" in raw:
        values["collectors"] = _collectors(raw["collectors"], f"{where}.collectors", problems)

    if len(problems) > start:
        return None
    return InstallationConfig(**values)


def _check_credentials(values: dict[str, Any], where: str, problems: list[str]) -> None:
    if values.get("api_style") == "bearer":
        if values.get("token") is not None and values.get("token_url"):
            problems.append(f"{where}: set either token/token_file or token_url (OAuth2), not both")
        if values.get("token") is None and not values.get("token_url"):
            problems.append(f"{where}: bearer style needs token/token_file or token_url with OAuth2 credentials")
        if values.get("token_url"):
            for key in ("client_id", "username", "password"):
                if not values.get(key):
                    problems.append(f"{where}.{key}: required with token_url (OAuth2 password grant)")
        return
    has_api = values.get("identifier") is not None or values.get("secret") is not None
    has_admin = values.get("username") is not None or values.get("password") is not None
    if has_api and has_admin:
        problems.append(f"{where}: set either api_identifier/api_secret or username/password, not both")
    elif has_api:
        for key, attr in (("api_identifier", "identifier"), ("api_secret", "secret")):
            if values.get(attr) is None:
                problems.append(f"{where}.{key}: required with API credentials")
    elif has_admin:
        for key in ("username", "password"):
            if values.get(key) is None:
                problems.append(f"{where}.{key}: required with admin login")
    else:
        problems.append(f"{where}: credentials required: api_identifier + api_secret "
                        "(or username + password), inline or as *_file")


def _buckets(raw: Any, where: str, problems: list[str]) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: must be a non-empty list of durations")
        return DEFAULT_BUCKETS
    try:
        buckets = tuple(parse_duration(b) for b in raw)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return DEFAULT_BUCKETS
    if list(buckets) != sorted(set(buckets)):
        problems.append(f"{where}: must be strictly increasing")
    return buckets


def _collectors(raw: Any, where: str, problems: list[str]) -> frozenset[str]:
    names, defaults = registered_collectors()
    if isinstance(raw, list):
        chosen = {str(c) for c in raw}
    elif isinstance(raw, Mapping):
        chosen = set(defaults)
        for key, enabled in raw.items():
            if not isinstance(enabled, bool):
                problems.append(f"{where}.{key}: must be true or false")
            elif enabled:
                chosen.add(str(key))
            else:
                chosen.discard(str(key))
    else:
        problems.append(f"{where}: must be a list of names or a mapping name: true/false")
        return defaults
    unknown = chosen - set(names)
    if unknown:
        problems.append(f"{where}: unknown collector(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(names)}")
    return frozenset(chosen & set(names))
