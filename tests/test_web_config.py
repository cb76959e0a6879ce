"""--web.config.file: validation, basic auth (bcrypt, cached), TLS and mTLS on the real exporter process."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
import threading
import time

import bcrypt
import pytest
import requests
import yaml

from exporter import web_config
from exporter.config import ConfigError
from exporter.simulator import Simulator
from exporter.web_config import load_web_config, parse_web_config
from testkit.reliability import installation, start
from testkit.tls_certs import make_tls

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write(tmp_path, document) -> str:
    path = tmp_path / "web.yml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return str(path)


# -- validation --------------------------------------------------------------------------------------

def test_every_problem_is_listed_at_once(tmp_path):
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    path = write(tmp_path, {
        "tls_server_config": {"cert_file": str(tmp_path / "missing.crt"), "key_file": str(garbage),
                              "client_auth_type": "Sometimes", "colour": "blue"},
        "basic_auth_users": {"alice": "plain-password", "bob": HASH},
        "extra": 1,
    })
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    problems = caught.value.problems
    assert f"{path}: unknown key 'extra'" in problems
    assert f"{path}: tls_server_config: unknown key 'colour'" in problems
    assert f"{path}: tls_server_config.cert_file: file {tmp_path / 'missing.crt'} does not exist" in problems
    assert any(p.startswith(f"{path}: tls_server_config.client_auth_type: unknown 'Sometimes'") for p in problems)
    assert any(p.startswith(f"{path}: basic_auth_users.alice: not a bcrypt hash") for p in problems)
    assert len(problems) == 5, problems
    assert "plain-password" not in str(caught.value)  # a mistaken plain password is never echoed


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read web config"):
        load_web_config(str(tmp_path / "nope.yml"))
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load_web_config(write(tmp_path, "basic_auth_users:\n  a: b: c\n"))


def test_unloadable_certificate_and_mismatched_key(tmp_path):
    tls = make_tls(str(tmp_path))
    bad = tmp_path / "bad.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="cannot load cert_file/key_file"):
        load_web_config(write(tmp_path, {"tls_server_config": {"cert_file": str(bad), "key_file": tls.key}}))
    with pytest.raises(ConfigError, match="cannot load cert_file/key_file"):
        load_web_config(write(tmp_path, {"tls_server_config": {"cert_file": tls.cert, "key_file": tls.client_key}}))


def test_client_auth_rules(tmp_path):
    tls = make_tls(str(tmp_path))
    base = {"cert_file": tls.cert, "key_file": tls.key}
    with pytest.raises(ConfigError, match="RequireAnyClientCert needs client_ca_file"):
        parse_web_config({"tls_server_config": {**base, "client_auth_type": "RequireAnyClientCert"}})
    with pytest.raises(ConfigError, match="min_version: unknown 'TLS9'"):
        parse_web_config({"tls_server_config": {**base, "min_version": "TLS9"}})
    # client_ca_file alone means verify clients, as in the exporter-toolkit.
    cfg = parse_web_config({"tls_server_config": {**base, "client_ca_file": tls.ca}})
    assert cfg.tls is not None and cfg.tls.client_auth_type == "RequireAndVerifyClientCert"
    assert cfg.tls.context().verify_mode == ssl.CERT_REQUIRED
    optional = parse_web_config({"tls_server_config": {**base, "client_ca_file": tls.ca,
                                                       "client_auth_type": "VerifyClientCertIfGiven"}})
    assert optional.tls.context().verify_mode == ssl.CERT_OPTIONAL
    assert parse_web_config({"tls_server_config": base}).tls.context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_empty_file_means_plain_http_without_auth(tmp_path):
    cfg = load_web_config(write(tmp_path, ""))
    assert cfg.authenticator() is None and cfg.socket_wrapper() is None


# -- basic auth ---------------------------------------------------------------------------------------

def test_authenticator_accepts_only_the_right_password():
    check = parse_web_config({"basic_auth_users": {"prom": HASH, "other": HASH}}).authenticator()
    assert check is not None
    assert check(basic("prom", "s3cret")) is True
    assert check(basic("other", "s3cret")) is True
    assert check(basic("prom", "wrong")) is False
    assert check(basic("nobody", "s3cret")) is False
    assert check(basic("prom", "s3cret").replace("Basic", "Bearer")) is False
    for header in (None, "", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        assert check(header) is False
    assert check(basic("prom", "s3cret")) is True  # from the cache now


def test_fifty_concurrent_scrapers_pay_bcrypt_once(monkeypatch):
    calls = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        time.sleep(0.05)  # keep every thread in flight together
        return real(password, hashed)

    monkeypatch.setattr(web_config.bcrypt, "checkpw", counting)
    check = parse_web_config({"basic_auth_users": {"prom": HASH}}).authenticator()
    results: list[bool] = []
    barrier = threading.Barrier(50)

    def scrape() -> None:
        barrier.wait()
        results.append(check(basic("prom", "s3cret")))

    threads = [threading.Thread(target=scrape) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 50
    assert len(calls) == 1
    # Failures are not cached: each wrong guess costs a bcrypt check.
    assert check(basic("prom", "guess")) is False and check(basic("prom", "guess")) is False
    assert len(calls) == 3


def test_unknown_users_cost_as_much_as_the_configured_hashes():
    slow = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=12))
    auth = web_config.BasicAuth({"alice": slow})
    assert auth._dummy[:7] == slow[:7] == b"$2b$12$"  # an unknown user is checked at cost 12 too
    header = "Basic " + base64.b64encode(b"mallory:pw").decode()
    assert auth(header) is False


# -- the real process -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    with Simulator(tickets=40) as s:
        yield s


@pytest.mark.process
def test_tls_and_basic_auth_on_the_real_exporter(tmp_path, sim):
    tls = make_tls(str(tmp_path))
    path = write(tmp_path, {"tls_server_config": {"cert_file": tls.cert, "key_file": tls.key},
                            "basic_auth_users": {"prometheus": HASH}})
    auth = ("prometheus", "s3cret")
    with start(str(tmp_path), [installation(sim)], [f"--web.config.file={path}"], scheme="https",
               ready=False) as proc:
        proc.wait_ready(verify=tls.ca, auth=auth)
        assert proc.scrape(verify=tls.ca, auth=auth).get("whmcs_up", whmcs="w") == 1.0
        refused = requests.get(proc.base + "/metrics", verify=tls.ca, timeout=5)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(proc.base + "/", verify=tls.ca, auth=("prometheus", "x"), timeout=5).status_code == 401
        with pytest.raises(requests.exceptions.SSLError):  # our CA is not in the system store
            requests.get(proc.base + "/metrics", auth=auth, timeout=5)
        with pytest.raises(requests.exceptions.ConnectionError):  # plain HTTP to the TLS port
            requests.get(proc.base.replace("https", "http") + "/metrics", auth=auth, timeout=5)

        # Silent clients that never start the handshake must not hold up anyone else:
        # the handshake runs in each connection's thread, not in accept().
        silent = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(5)]
        try:
            started = time.monotonic()
            for _ in range(5):
                assert requests.get(proc.base + "/metrics", verify=tls.ca, auth=auth, timeout=3).status_code == 200
            assert time.monotonic() - started < 2.0
        finally:
            for s in silent:
                s.close()
        assert proc.proc.poll() is None


@pytest.mark.process
def test_mutual_tls(tmp_path, sim):
    tls = make_tls(str(tmp_path))
    path = write(tmp_path, {"tls_server_config": {"cert_file": tls.cert, "key_file": tls.key,
                                                  "client_ca_file": tls.ca,
                                                  "client_auth_type": "RequireAndVerifyClientCert"}})
    client = (tls.client_cert, tls.client_key)
    with start(str(tmp_path), [installation(sim)], [f"--web.config.file={path}"], scheme="https",
               ready=False) as proc:
        proc.wait_ready(verify=tls.ca, cert=client)
        assert proc.scrape(verify=tls.ca, cert=client).get("whmcs_up", whmcs="w") == 1.0
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(proc.base + "/metrics", verify=tls.ca, timeout=5)
        # A certificate from another CA is refused too.
        (tmp_path / "other").mkdir()
        other = make_tls(str(tmp_path / "other"))
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(proc.base + "/metrics", verify=tls.ca, cert=(other.client_cert, other.client_key), timeout=5)


@pytest.mark.process
def test_cli_refuses_a_bad_web_config(tmp_path, sim):
    path = write(tmp_path, {"basic_auth_users": {"prom": "nope"}, "tls_server_config": {"cert_file": "/x"}})
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"installations": [installation(sim)]}))
    done = subprocess.run([sys.executable, "-m", "exporter", f"--config.file={cfg}", f"--web.config.file={path}",
                           "--config.check"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "tls_server_config.cert_file: file /x does not exist" in done.stderr
    assert "tls_server_config.key_file: required" in done.stderr
    assert "basic_auth_users.prom: not a bcrypt hash" in done.stderr
