"""Loading: the YAML file or WHMCS_* environment variables -> validated `Config`.

Every problem is collected before reporting, named by its field path, and never echoes a secret's value:
`load()` raises `ConfigError` with the full list; the CLI prints it and exits 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

from exporter.config.auth import build_auth
from exporter.config.installation import INSTALLATION_SETTINGS, SETTINGS, Config, InstallationConfig
from exporter.config.kinds import ABSENT
from exporter.config.problems import ConfigError, Invalid

KNOWN_KEYS = frozenset(key for s in SETTINGS for key in s.keys())


def installation_from_env(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The raw installation mapping described by WHMCS_* variables, or None when WHMCS_URL is unset."""
    if not env.get("WHMCS_URL"):
        return None
    return {key: env[var] for s in SETTINGS for key, var in zip(s.keys(), s.env_vars()) if env.get(var)}


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
    """A validated `Config` from a parsed YAML document; ConfigError listing every problem."""
    if not isinstance(document, Mapping) or not isinstance(document.get("installations"), list):
        raise ConfigError([f"{source}: expected a mapping with an 'installations' list"])
    problems = [f"{source}: unknown key '{k}'" for k in sorted(map(str, set(document) - {"installations"}))]
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


def _installation(raw: Mapping[str, Any], where: str, problems: list[str]) -> InstallationConfig | None:
    start = len(problems)
    problems += [f"{where}: unknown key '{k}'" for k in sorted(map(str, set(raw) - KNOWN_KEYS))]
    values, invalid = _values(raw, where, problems)
    # Which login the keys describe depends on the style: with an unknown style, there is nothing to judge.
    auth = None if "api_style" in invalid else build_auth(values, where, problems, invalid)
    if auth is None or len(problems) > start:
        return None
    return InstallationConfig(auth=auth, **{s.key: values[s.key] for s in INSTALLATION_SETTINGS})


def _values(raw: Mapping[str, Any], where: str, problems: list[str]) -> tuple[dict[str, Any], set[str]]:
    """Every setting's value: as given when valid, else its default (settings without either are left out);
    and the keys of the invalid ones."""
    values: dict[str, Any] = {}
    invalid = set()
    for s in SETTINGS:
        try:
            value = s.kind.take(raw, s.key)
        except Invalid as exc:
            problems += [f"{where}.{at or s.key}: {message}" for at, message in exc.problems]
            invalid.add(s.key)
            continue
        if value is not ABSENT:
            values[s.key] = value
        elif s.required:
            problems.append(f"{where}.{s.key}: required ({s.help})")
    for s in SETTINGS:
        if s.key not in values and (default := s.default_for(values)) is not ABSENT:
            values[s.key] = default
    return values, invalid
