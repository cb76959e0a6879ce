"""WHMCS's "Oops! Something went wrong" page: the cause, far down the page, is quoted with advice.

When a hook, add-on, BOM or PHP notice prints output before WHMCS's answer, WHMCS 7.3+ answers HTTP 500 with
a generic page whose cause (`...EmitterException: Output has been emitted previously ...`) stands below the
first 200 characters. The simulator's `oops` fault answers that page.
"""

from __future__ import annotations

import re

import pytest
import requests

from exporter.advice import advice
from exporter.answers import classify
from exporter.client import WhmcsClient
from exporter.config import ApiCredentials, InstallationConfig, Secret
from exporter.error_pages import excerpt
from exporter.errors import HttpStatusError, WhmcsError
from exporter.simulator import Simulator
from exporter.simulator.oops_page import CAUSE, NOTICE, oops_page
from testkit.reliability import installation, start, up

HOOK = "Warning: Undefined variable $ticket in /home/whmcs/public_html/includes/hooks/ticket_sync.php on line 12"


def test_the_cause_stands_beyond_the_first_200_characters():
    page = oops_page()
    assert page.index("EmitterException") > 2000
    visible = " ".join(re.sub(r"<[^>]*>", " ", re.sub(r"<style.*?</style>", " ", page, flags=re.S)).split())
    assert visible.index("EmitterException") > 400  # past the old 200-character excerpt, even without styles


def test_the_oops_page_is_quoted_by_title_cause_and_notice_with_advice():
    with pytest.raises(HttpStatusError) as err:
        classify("GetTicketCounts", 500, oops_page().encode())
    text = str(err.value)
    assert text == f"GetTicketCounts: HTTP 500: Oops! Something went wrong. | {CAUSE} | {HOOK}"
    hint = advice(err.value)
    for needle in ("hook", "byte-order mark", "display_errors"):
        assert needle in hint
    # Without the stray notice (a BOM prints nothing readable), the exception alone names it.
    with pytest.raises(HttpStatusError) as err:
        classify("GetTicketCounts", 500, oops_page(prefix="\ufeff").encode())
    assert str(err.value) == f"GetTicketCounts: HTTP 500: Oops! Something went wrong. | {CAUSE}"
    assert NOTICE.startswith("<br />")


@pytest.mark.parametrize(("page", "quoted"), [
    ("<html><head><title>Error</title></head><body><h1>Application error</h1>" + "<p>filler text</p>" * 40
     + "<pre>PHP Fatal error:  Uncaught Error: Call to undefined function foo() in /var/www/x.php:3\n"
       "Stack trace:\n#0 {main}</pre></body></html>",
     "Error | Application error | Error: Call to undefined function foo()"),
    ("<html><title>Whoops</title><body>" + "x " * 300 + "Whoops\\Exception\\ErrorException: Undefined index: "
     "deptid in /srv/whmcs/includes/api/gettickets.php:55</body></html>",
     "Whoops | Whoops\\Exception\\ErrorException: Undefined index: deptid"),
])
def test_other_error_pages_name_their_exception(page: str, quoted: str):
    assert excerpt(page) == quoted


def test_pages_without_a_cause_are_quoted_from_their_start_as_before():
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>" + "x" * 5000
    assert excerpt(page) == ("502 Bad Gateway | Bad Gateway " + "x" * 5000)[:200]


def test_secrets_echoed_into_the_page_are_scrubbed_whole():
    secret = "s3cr3t-Value-that-is-long"
    with Simulator(tickets=10, secret=secret) as sim:
        sim.faults.set("oops", echo=f"Request: action=GetTicketCounts&identifier={sim.identifier}&secret={secret} "
                                    f"{'padding ' * 30}{secret}")
        inst = InstallationConfig(name="w", url=sim.url, auth=ApiCredentials(Secret(sim.identifier), Secret(secret)))
        with pytest.raises(WhmcsError) as err:
            WhmcsClient(inst).call("GetTicketCounts")
    text = str(err.value)
    assert CAUSE in text
    for size in range(6, len(secret) + 1):  # not whole, not in part
        assert secret[:size] not in text and secret[-size:] not in text


@pytest.mark.process
def test_the_log_line_and_landing_page_quote_the_cause(tmp_path):
    with Simulator(tickets=30) as sim:
        sim.faults.set("oops", action="GetTicketCounts")
        with start(str(tmp_path), [installation(sim)]) as proc:
            proc.wait_for(lambda s: up(s) == 0.0)
            landing = requests.get(proc.base + "/", timeout=5).text
            log = proc.log()
    # The log is logfmt: backslashes come doubled.
    assert f"poll failed: GetTicketCounts: HTTP 500: Oops! Something went wrong. | {CAUSE}".replace("\\", "\\\\") in log
    assert "display_errors" in log and "includes/hooks" in log
    assert "EmitterException: Output has been emitted previously" in landing
