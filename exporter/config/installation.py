"""The configuration of one WHMCS installation, declared once: each setting is one line below.

A setting's line gives its kind (format and bounds), default and help line; the file parser, the
environment variables, the known-keys check, `--config.check` and docs/configuration.md all read it.
The login keys are declared in `auth.py` and held by `auth`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from exporter.config.auth import AUTH_SETTINGS, Auth
from exporter.config.durations import DEFAULT_BUCKETS
from exporter.config.kinds import (
    Buckets,
    Collectors,
    Duration,
    FilePath,
    Flag,
    Text,
    TimeZone,
    Url,
    WholeNumber,
    registered_collectors,
)
from exporter.config.settings import Setting, setting, settings_of
from exporter.config.sla import SlaConfig, SlaSection


def _url_host(values: Mapping[str, Any]) -> str:
    return urllib.parse.urlsplit(values.get("url", "")).hostname or "whmcs"


def _default_collectors() -> frozenset[str]:
    return registered_collectors()[1]


@dataclass(frozen=True)
class InstallationConfig:
    name: str = setting(Text(), help="value of the `whmcs` label", env="WHMCS_NAME", derive=_url_host,
                        default_doc="the URL's host name")
    url: str = setting(Url(), help="the WHMCS base URL, e.g. https://billing.example.com", env="WHMCS_URL",
                       required=True)
    auth: Auth  # the login; its keys are declared in auth.py
    timezone: str = setting(TimeZone(), "UTC", "IANA zone of WHMCS's times (PHP date.timezone)", env="WHMCS_TIMEZONE")
    poll_interval: float = setting(Duration(), 60.0, "time between polls (±2.5% jitter)", env="WHMCS_POLL_INTERVAL")
    poll_deadline: float | None = setting(Duration(), None, "work that can wait stops this long after a poll's start",
                                          derive=lambda values: values["poll_interval"] / 2,
                                          default_doc="½ poll_interval")
    timeout: float = setting(Duration(), 10.0, "limit for one API call's complete answer")
    tls_verify: bool = setting(Flag(), True, "verify WHMCS's TLS certificate")
    ca_file: str | None = setting(FilePath(), None, "CA bundle to verify WHMCS's certificate with")
    ignore_department_assignments: bool = setting(Flag(), True, "count every department, not only the API admin's")
    max_age: float = setting(Duration(), 180.0, "ticket series older than this are dropped",
                             derive=lambda values: 3 * values["poll_interval"], default_doc="3 × poll_interval")
    auth_backoff: float = setting(Duration(), 1800.0, "pause after an authentication failure")
    max_backoff: float = setting(Duration(), 900.0, "ceiling of the back-off after 429/503 without Retry-After")
    collectors: frozenset[str] = setting(Collectors(), factory=_default_collectors, help="collectors to run")
    buckets: tuple[float, ...] = setting(Buckets(), DEFAULT_BUCKETS, "wait-time and first-response histogram buckets")
    sample_limit: int = setting(WholeNumber(1), 1000, "most active tickets fetched for the priority breakdown")
    distribution_max_calls: int = setting(WholeNumber(4), 40, "API-call cap per poll of the wait-time distribution "
                                          "and of the sla department searches above sla.max_tickets")
    whole_list_max_tickets: int = setting(WholeNumber(0), 5000,
                                          "awaiting lists up to this long are read whole, once per poll, for every "
                                          "collector (pages of 1,000); 0 = always by position")
    response_window: float = setting(Duration(), 7 * 86400.0, "first-response times cover tickets opened in it")
    max_ticket_fetches_per_poll: int = setting(WholeNumber(0), 50,
                                               "GetTicket calls per poll: first_response, flow, sla")
    rating_delay: float = setting(Duration(), 48 * 3600.0,
                                  "flow reads a ticket once more this long after its last staff reply (late ratings)")
    max_series: int = setting(WholeNumber(10), 5000, "series cap per installation (cut: series_dropped_total)")
    staff_metrics: bool = setting(Flag(), False, "export per-staff series (staff names on labels)")
    max_staff: int = setting(WholeNumber(1), 50, "staff members with series of their own; the rest are `other`")
    sla: SlaConfig | None = setting(SlaSection(), None, "service-level targets, business hours and holidays")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def deadline(self) -> float:
        """Seconds after a poll's start at which the work that can wait stops (resumed next poll)."""
        return self.poll_deadline if self.poll_deadline is not None else self.poll_interval / 2

    @property
    def api_style(self) -> str:
        return self.auth.style


@dataclass(frozen=True)
class Config:
    installations: tuple[InstallationConfig, ...] = field(default_factory=tuple)


# The installation's own settings, and every key of an installation in reference order (auth keys after url).
INSTALLATION_SETTINGS: tuple[Setting, ...] = settings_of(InstallationConfig)
SETTINGS: tuple[Setting, ...] = INSTALLATION_SETTINGS[:2] + AUTH_SETTINGS + INSTALLATION_SETTINGS[2:]
