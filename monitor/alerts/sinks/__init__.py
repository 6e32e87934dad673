"""Alert sinks: one module each behind one protocol (`async send(notification)`)."""

from __future__ import annotations

from monitor.alerts.sinks.base import Notification, Sink, SinkError, build_sink, redact_url

__all__ = ["Notification", "Sink", "SinkError", "build_sink", "redact_url"]
