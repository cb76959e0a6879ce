"""The settings table: the reference in docs/configuration.md, `--config.check`'s listing, the logins, and the
contract of keys, environment variables and defaults that the table must keep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import (
    SETTINGS,
    AdminLogin,
    ApiCredentials,
    BearerToken,
    ConfigError,
    OAuth2Login,
    Secret,
    format_duration,
    installation_from_env,
    parse,
    parse_duration,
)
from exporter.config.reference import REGENERATE, current_block, reference_block, with_reference

ROOT = Path(__file__).resolve().parent.parent
API = {"url": "https://a.example", "api_identifier": "i", "api_secret": "s"}


def problems_of(**raw: object) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse({"installations": [raw]})
    return err.value.problems


def test_the_reference_in_the_docs_is_the_settings_table():
    block = current_block((ROOT / "docs/configuration.md").read_text(encoding="utf-8"))
    assert block is not None, f"docs/configuration.md has no config-keys block: run `{REGENERATE}`"
    assert block == reference_block(), f"docs/configuration.md is out of date with exporter/config: run `{REGENERATE}`"


def test_every_key_and_variable_has_a_row():
    block = reference_block()
    for s in SETTINGS:
        assert s.help, s.key
        for name in s.keys() + s.env_vars():
            assert f"`{name}`" in block, name


def test_rewriting_the_reference_keeps_the_prose_around_it():
    document = "# Title\n\nprose before\n\n<!-- config-keys:start -->\nold\n<!-- config-keys:end -->\n\nprose after\n"
    rewritten = with_reference(document)
    assert rewritten.startswith("# Title\n\nprose before\n\n") and rewritten.endswith("\n\nprose after\n")
    assert current_block(rewritten) == reference_block()
    assert current_block(with_reference("# Title\n")) == reference_block()


def test_the_environment_variables_are_the_contract():
    variables = {var for s in SETTINGS for var in s.env_vars()}
    secrets = ("WHMCS_API_IDENTIFIER", "WHMCS_API_SECRET", "WHMCS_API_ACCESSKEY", "WHMCS_USERNAME", "WHMCS_PASSWORD")
    assert variables == {"WHMCS_URL", "WHMCS_NAME", "WHMCS_TIMEZONE", "WHMCS_POLL_INTERVAL", *secrets,
                         *(v + "_FILE" for v in secrets)}
    for s in SETTINGS:
        for key, var in zip(s.keys(), s.env_vars()):
            assert installation_from_env({"WHMCS_URL": "https://a.example", var: "value"})[key] == "value", var


def test_defaults_are_the_documented_ones():
    (inst,) = parse({"installations": [API]}).installations
    assert (inst.name, inst.api_style, inst.timezone, inst.poll_interval, inst.timeout) == (
        "a.example", "whmcs", "UTC", 60.0, 10.0)
    assert (inst.tls_verify, inst.ca_file, inst.ignore_department_assignments) == (True, None, True)
    assert (inst.max_age, inst.auth_backoff, inst.max_backoff, inst.response_window) == (180.0, 1800.0, 900.0, 604800.0)
    assert inst.buckets == (900.0, 3600.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0, 604800.0)
    assert (inst.sample_limit, inst.distribution_max_calls, inst.max_ticket_fetches_per_poll, inst.max_series) == (
        1000, 40, 50, 5000)
    assert inst.collectors == {"counts", "oldest_awaiting", "departments", "wait_distribution", "priorities",
                               "first_response", "flow", "sla", "staff"}  # sla: with `sla`; staff: staff_metrics
    assert (inst.sla, inst.staff_metrics, inst.max_staff) == (None, False, 50)
    assert inst.rating_delay == 172800.0


@pytest.mark.parametrize(("key", "lowest"), [("sample_limit", 1), ("distribution_max_calls", 4),
                                             ("max_ticket_fetches_per_poll", 0), ("max_series", 10)])
def test_whole_number_bounds(key: str, lowest: int):
    (inst,) = parse({"installations": [{**API, key: lowest}]}).installations
    assert getattr(inst, key) == lowest
    for bad in (lowest - 1, "12", True, 2.5):
        assert problems_of(**API, **{key: bad}) == [f"installations[0].{key}: must be a whole number >= {lowest}"]


def test_durations_are_shown_as_they_are_written():
    for seconds in (0.5, 1.0, 2.5, 60.0, 90.0, 5400.0, 86400.0, 604800.0, 694861.0):
        assert parse_duration(format_duration(seconds)) == seconds
    assert [format_duration(s) for s in (0.25, 60.0, 5400.0, 604800.0)] == ["250ms", "1m", "1h30m", "1w"]


def test_each_login_is_its_own_object(tmp_path):
    key_file = tmp_path / "accesskey"
    key_file.write_text("AK\n")
    (api, admin, token, oauth) = parse({"installations": [
        {**API, "name": "api", "api_accesskey_file": str(key_file)},
        {"name": "admin", "url": "https://b.example", "username": "u", "password": "p"},
        {"name": "token", "url": "https://c.example", "api_style": "bearer", "token": "T"},
        {"name": "oauth", "url": "https://d.example", "api_style": "bearer", "token_url": "https://d.example/t",
         "client_id": "cid", "username": "u", "password": "p"},
    ]}).installations
    assert api.auth == ApiCredentials(Secret(inline="i"), Secret(inline="s"), Secret(path=str(key_file)))
    assert admin.auth == AdminLogin("u", Secret(inline="p"))
    assert token.auth == BearerToken(Secret(inline="T")) and token.api_style == "bearer"
    assert oauth.auth == OAuth2Login("https://d.example/t", "cid", "u", Secret(inline="p"))
    assert [s.read() for s in api.auth.secrets()] == ["i", "s", "AK"]
    assert admin.auth.secrets() == [Secret(inline="p")]  # the login name is no secret


def test_bearer_logins_say_what_is_missing_or_too_much():
    bearer = {"url": "https://a.example", "api_style": "bearer"}
    assert problems_of(**bearer) == ["installations[0]: bearer style needs token/token_file or token_url with "
                                     "OAuth2 credentials"]
    assert problems_of(**bearer, token="T", token_url="https://a.example/t") == [
        "installations[0]: set either token/token_file or token_url (OAuth2), not both"]
    assert problems_of(**bearer, token_url="https://a.example/t", password="HIDDEN") == [
        "installations[0].client_id: required with token_url (OAuth2 password grant)",
        "installations[0].username: required with token_url (OAuth2 password grant)"]
    assert problems_of(url="https://a.example", api_style="oauth", token="T") == [
        "installations[0].api_style: must be one of whmcs, bearer"]


def test_secret_problems_name_the_key_and_never_the_value(tmp_path):
    text = "\n".join(problems_of(url="https://a.example", api_identifier="ID-VALUE", api_secret="SECRET-VALUE",
                                 api_secret_file=str(tmp_path / "nope"), password_file=str(tmp_path / "nope"),
                                 token=["LIST-VALUE"], collectors={"counts": "yes"}))
    assert "installations[0].api_secret: set either api_secret or api_secret_file, not both" in text
    assert f"installations[0].password_file: file {tmp_path / 'nope'} does not exist" in text
    assert "installations[0].token: must be a string" in text
    assert "installations[0].collectors.counts: must be true or false" in text
    assert "VALUE" not in text


@pytest.mark.process
def test_config_check_prints_the_validated_configuration(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("FILE-SECRET-VALUE\n")
    path = tmp_path / "c.yml"
    path.write_text(f"installations:\n  - url: https://a.example/\n    api_identifier: INLINE-IDENT-VALUE\n"
                    f"    api_secret_file: {secret}\n    poll_interval: 5m\n"
                    "    collectors: {first_response: false}\n")
    proc = subprocess.run([sys.executable, "-m", "exporter", "--config.file", str(path), "--config.check"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:5] == ["configuration OK: 1 installation(s): a.example", "installations[0]:", "  name: a.example",
                         "  url: https://a.example", "  api_style: whmcs"]
    for line in ("  api_identifier: <secret>", f"  api_secret: <secret from {secret}>", "  poll_interval: 5m",
                 "  max_age: 15m", "  buckets: 15m, 1h, 4h, 8h, 1d, 2d, 3d, 1w",
                 "  collectors: counts, oldest_awaiting, departments, priorities, staff, wait_distribution, flow, sla"):
        assert line in lines, (line, lines)
    assert "VALUE" not in proc.stdout + proc.stderr


@pytest.mark.process
def test_the_reference_command_rewrites_a_file(tmp_path):
    path = tmp_path / "configuration.md"
    path.write_text("# Configuration\n\nprose\n")
    subprocess.run([sys.executable, "-m", "exporter.config", "--reference", str(path)], check=True, timeout=30,
                   capture_output=True)
    assert path.read_text().startswith("# Configuration\n\nprose\n\n")
    assert current_block(path.read_text()) == reference_block()


def test_every_key_a_login_holds_is_in_the_table():
    table = {s.key for s in SETTINGS}
    for login in (ApiCredentials, AdminLogin, BearerToken, OAuth2Login):
        assert set(login.keys()) <= table, login
