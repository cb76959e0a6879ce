"""The client's pure parts: classifying answers, the legacy password, Retry-After."""

from __future__ import annotations

import hashlib
import json

import pytest

from exporter.answers import classify
from exporter.client import flag, legacy_password, parse_retry_after
from exporter.errors import (
    ApiError,
    AuthError,
    HttpStatusError,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unsupported,
)


def test_success_json():
    assert classify("GetTicketCounts", 200, b'{"result":"success","allActive":"3"}') == {
        "result": "success", "allActive": "3"}


@pytest.mark.parametrize("message", [
    "IP Banned", "Invalid IP 1.2.3.4", "Invalid Access Key", "Invalid or missing credentials",
    "Invalid administrative identifier", "Administrator Account Disabled", "Authentication Failed",
    "Access Denied",
])
def test_auth_errors_as_text_or_json(message):
    # IP and auth checks run before WHMCS reads responsetype: the answer may be nvp text.
    for body in (f"result=error;message={message}".encode(),
                 json.dumps({"result": "error", "message": message}).encode()):
        with pytest.raises(AuthError) as err:
            classify("GetTickets", 403, body)
        assert str(err.value) == f"GetTickets: HTTP 403: {message}"
        assert err.value.reason == "auth" and err.value.aborts_poll


def test_permission_denied_for_one_action():
    body = b'{"result":"error","message":"Invalid Permissions: API action \\"gettickets\\" is not allowed"}'
    with pytest.raises(PermissionDenied) as err:
        classify("GetTickets", 403, body)
    assert err.value.reason == "permission" and not err.value.aborts_poll
    assert 'API action "gettickets" is not allowed' in str(err.value)


def test_handler_errors():
    with pytest.raises(NotFound):
        classify("GetTicket", 200, b'{"result":"error","message":"Ticket ID Not Found"}')
    with pytest.raises(Unsupported):
        classify("GetTickets", 200, b'{"result":"error","message":"Command Not Found"}')
    with pytest.raises(ApiError) as err:
        classify("GetTickets", 200, b'{"result":"error","message":"Something odd"}')
    assert type(err.value) is ApiError and not err.value.aborts_poll


def test_html_error_page_is_summarised():
    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>" + b"x" * 5000
    with pytest.raises(HttpStatusError) as err:
        classify("GetTicketCounts", 502, page)
    text = str(err.value)
    assert text.startswith("GetTicketCounts: HTTP 502: 502 Bad Gateway | Bad Gateway")
    assert len(err.value.message) <= 200 and "\n" not in text


def test_maintenance_page_with_200():
    with pytest.raises(InvalidResponse) as err:
        classify("GetTicketCounts", 200, b"<!DOCTYPE html><html><title>Down for maintenance</title></html>")
    assert "expected JSON, got HTML page: Down for maintenance" in str(err.value)


def test_truncated_and_garbage():
    with pytest.raises(InvalidResponse, match="truncated or malformed JSON"):
        classify("GetTickets", 200, b'{"result":"success","tickets":{"ticket":[{"id":')
    with pytest.raises(InvalidResponse, match="non-JSON text"):
        classify("GetTickets", 200, b"Warning: mysqli_connect() failed")
    with pytest.raises(InvalidResponse, match="expected a JSON object, got list"):
        classify("GetTickets", 200, b"[]")
    with pytest.raises(InvalidResponse, match="without result"):
        classify("GetTickets", 200, b'{"tickets":[]}')


def test_overload_answers():
    with pytest.raises(RateLimited) as err:
        classify("GetTickets", 429, b'{"message":"Rate Limit Exceeded"}', retry_after=30.0)
    assert err.value.retry_after == 30.0 and err.value.overloaded
    with pytest.raises(HttpStatusError) as err:
        classify("GetTickets", 503, b"<html><title>Service Unavailable</title></html>")
    assert err.value.overloaded and err.value.retry_after is None
    with pytest.raises(HttpStatusError) as err:
        classify("GetTickets", 500, b"<html><title>Error</title></html>")
    assert not err.value.overloaded


def test_gateway_answers():
    with pytest.raises(AuthError):
        classify("GetTickets", 401, b'{"message":"Unauthenticated."}', gateway=True)
    with pytest.raises(Unsupported):
        classify("GetTicketCounts", 404, b"<html><title>404 Not Found</title></html>", gateway=True)


def test_404_on_api_php_is_a_wrong_url_not_a_missing_action():
    with pytest.raises(HttpStatusError) as err:
        classify("GetTicketCounts", 404, b"<html><title>404 Not Found</title></html>")
    assert err.value.aborts_poll


def test_legacy_password_hashing():
    assert legacy_password("hunter2") == hashlib.md5(b"hunter2").hexdigest()
    already = hashlib.md5(b"x").hexdigest()
    assert legacy_password(already.upper()) == already


def test_flags_are_never_text_booleans():
    assert flag(True) == "1" and flag(False) == "0"


def test_retry_after_forms():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 25 Nov 2026 17:02:00 GMT", now=1795626000.0) == 120.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_secrets_are_scrubbed_also_url_encoded():
    from exporter.client import WhmcsClient
    from exporter.config import ApiCredentials, InstallationConfig, Secret
    from exporter.errors import scrub_secrets

    inst = InstallationConfig(name="t", url="http://w.test",
                              auth=ApiCredentials(Secret("ident-1"), Secret("p@ss+word/42")))
    client = WhmcsClient(inst)
    echoed = InvalidResponse("GetTickets", "expected JSON, got HTML page: Blocked | action=GetTickets&"
                             "identifier=ident-1&secret=p%40ss%2Bword%2F42&responsetype=json")
    text = str(scrub_secrets(echoed, client.secret_values(client.credentials())))
    assert "p%40ss" not in text and "ident-1" not in text and "secret=***" in text
