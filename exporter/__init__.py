"""whmcs-ticket-exporter: a Prometheus exporter for the WHMCS support desk."""

__version__ = "0.1.0"
