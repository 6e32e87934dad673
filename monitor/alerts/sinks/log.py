"""Log sink: one structured log line per alert."""

from __future__ import annotations

import structlog

from monitor.alerts.sinks.base import Notification

log = structlog.get_logger("cuewatch.alerts")


class LogSink:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, notification: Notification) -> None:
        for alert in notification.alerts:
            log.warning(
                "alert",
                receiver=self.name,
                status=alert["status"],
                severity=alert["severity"],
                fingerprint=alert["fingerprint"],
                summary=alert["summary"],
                test=notification.test,
                replay=alert["replay_command"],
                next_step=alert.get("next_step", ""),
                url=alert.get("url"),
            )
