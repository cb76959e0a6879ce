"""Configuration: YAML and WHMCS_* environment, every problem reported at once, no secret echoed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exporter.config import ConfigError, installation_from_env, load, parse, parse_duration


def test_durations():
    assert parse_duration("60s") == 60
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration(90) == 90
    assert parse_duration("2") == 2
    for bad in ("", "5 minutes", "-1s", "0s", "1x", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_env_single_installation(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t-from-file\n")
    env = {"WHMCS_URL": "https://billing.example.com/", "WHMCS_API_IDENTIFIER": "ident",
           "WHMCS_API_SECRET_FILE": str(secret_file), "WHMCS_TIMEZONE": "Europe/Berlin",
           "WHMCS_POLL_INTERVAL": "5m", "WHMCS_API_ACCESSKEY": "ak"}
    config = load(None, env)
    (inst,) = config.installations
    assert inst.name == "billing.example.com"  # default name: the URL's host
    assert inst.url == "https://billing.example.com"
    assert inst.auth.identifier.read() == "ident"
    assert inst.auth.secret.read() == "s3cr3t-from-file"
    assert inst.auth.accesskey.read() == "ak"
    assert inst.timezone == "Europe/Berlin"
    assert inst.poll_interval == 300
    assert inst.max_age == 900  # 3 poll intervals
    assert inst.ignore_department_assignments is True
    assert "s3cr3t" not in repr(inst)


def test_env_legacy_login_and_name():
    env = {"WHMCS_URL": "http://w.example", "WHMCS_USERNAME": "admin", "WHMCS_PASSWORD": "pw",
           "WHMCS_NAME": "brand-a"}
    (inst,) = load(None, env).installations
    assert inst.name == "brand-a"
    assert inst.auth.username == "admin"
    assert inst.auth.password.read() == "pw"


def test_no_configuration_says_what_to_do():
    with pytest.raises(ConfigError) as err:
        load(None, {})
    assert "WHMCS_URL" in str(err.value) and "--demo" in str(err.value)
    assert installation_from_env({}) is None


def test_every_problem_listed_and_no_secret_echoed(tmp_path):
    document = {"installations": [
        {"url": "ftp://x", "api_secret": "TOPSECRET-VALUE", "timezone": "Mars/Base", "poll_interval": "soon",
         "colour": "blue", "collectors": ["departments", "nonsense"], "buckets": ["1h", "5m"]},
        {"name": "b", "url": "https://b.example", "username": "u", "password_file": str(tmp_path / "missing")},
        {"name": "b", "url": "https://c.example", "api_identifier": "i", "api_secret": "s",
         "username": "u", "password": "p"},
    ]}
    with pytest.raises(ConfigError) as err:
        parse(document)
    problems = err.value.problems
    text = "\n".join(problems)
    assert "TOPSECRET" not in text
    expected = [
        "installations[0].url: must be an http(s) URL",
        "installations[0].api_identifier: required with API credentials",
        "installations[0].timezone: unknown time zone 'Mars/Base'",
        "installations[0].poll_interval: not a duration",
        "installations[0]: unknown key 'colour'",
        "installations[0].collectors: unknown collector(s) nonsense",
        "installations[0].buckets: must be strictly increasing",
        "installations[1].password_file: file",
        "installations[2]: set either api_identifier/api_secret or username/password, not both",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)


def test_duplicate_names_rejected():
    inst = {"url": "https://a.example", "api_identifier": "i", "api_secret": "s"}
    with pytest.raises(ConfigError) as err:
        parse({"installations": [inst, dict(inst)]})
    assert "name 'a.example' is used twice" in str(err.value)


def test_collectors_as_mapping():
    config = parse({"installations": [{"url": "https://a.example", "api_identifier": "i", "api_secret": "s",
                                       "collectors": {"first_response": False}}]})
    assert "first_response" not in config.installations[0].collectors
    assert "counts" in config.installations[0].collectors


@pytest.mark.process
def test_bad_config_file_exits_2_listing_problems(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("installations:\n  - url: nope\n    api_secret: HIDDEN-SECRET-1\n    timezone: Nowhere/X\n")
    proc = subprocess.run([sys.executable, "-m", "exporter", "--config.file", str(path), "--config.check"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "installations[0].url" in proc.stderr and "installations[0].timezone" in proc.stderr
    assert "HIDDEN-SECRET-1" not in proc.stderr + proc.stdout


@pytest.mark.process
def test_config_check_ok(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("installations:\n  - url: https://a.example\n    api_identifier: i\n    api_secret: s\n")
    proc = subprocess.run([sys.executable, "-m", "exporter", "--config.file", str(path), "--config.check"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK: 1 installation(s): a.example" in proc.stdout


def test_unreadable_yaml(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("installations: [\n")
    with pytest.raises(ConfigError) as err:
        load(str(path))
    assert "not valid YAML" in str(err.value)


def test_username_from_a_file(tmp_path):
    user = tmp_path / "user"
    user.write_text("api-admin\n")
    config = parse({"installations": [{"url": "https://a.example", "username_file": str(user),
                                       "password": "pw"}]})
    assert config.installations[0].auth.username == "api-admin"
