"""Alerts: rules over findings, Alertmanager-style routing, sinks, and a durable outbox."""

from __future__ import annotations

from monitor.alerts.manager import AlertManager
from monitor.alerts.model import Alert, Evidence, fingerprint
from monitor.alerts.outbox import Outbox, Silence
from monitor.alerts.sinks import Notification, Sink, SinkError, redact_url

__all__ = [
    "Alert",
    "AlertManager",
    "Evidence",
    "Notification",
    "Outbox",
    "Silence",
    "Sink",
    "SinkError",
    "fingerprint",
    "redact_url",
]
