"""A stand-alone WHMCS API simulator for testing and demonstrating whmcs-ticket-exporter.

It imports nothing from the exporter: `World` holds the desk, `Simulator` serves it over HTTP the way
WHMCS's api.php (or a bearer-token gateway) does, traps included, with injectable `Faults`.
"""

from .http import CallRecord, Faults, Simulator
from .world import Department, Note, Reply, Status, Ticket, World, status_key

__all__ = ["CallRecord", "Department", "Faults", "Note", "Reply", "Simulator", "Status", "Ticket", "World",
           "status_key"]
