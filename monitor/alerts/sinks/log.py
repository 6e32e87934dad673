"""Log sink: one structured log line per alert."""

from __future__ import annotations

from typing import Any, ClassVar

import structlog

from monitor.alerts.sinks.base import Notification
from monitor.plugins import SINKS
from monitor.policy import LogReceiver

log = structlog.get_logger("cuewatch.alerts")


@SINKS.register("log")
class LogSink:
    """A receiver's `log: {}`: one structured log line per alert."""

    Params: ClassVar[type[LogReceiver]] = LogReceiver
    test_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, receiver: str, client: Any = None, **params: Any) -> None:
        self.Params.model_validate(params)
        self.name = receiver

    def __repr__(self) -> str:
        return f"LogSink(name={self.name!r})"

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
