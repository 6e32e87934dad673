"""Prometheus metrics of the alert manager, shared by the proxy and the worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class AlertCollector(Collector):
    """Notifications sent, failed, retried, dead-lettered, and the outbox depth, by sink."""

    def __init__(self) -> None:
        self.manager: Any = None

    def collect(self) -> Iterator[Any]:
        notes = CounterMetricFamily(
            "cuewatch_alert_notifications", "Alert notifications by sink and result.", labels=["sink", "result"]
        )
        depth = GaugeMetricFamily(
            "cuewatch_alert_outbox_depth", "Notifications waiting in the outbox.", labels=["sink"]
        )
        if self.manager is not None:
            for sink, stats in sorted(self.manager.stats.items()):
                for result, n in sorted(stats.items()):
                    notes.add_metric([sink, result], n)
            with contextlib.suppress(Exception):  # closed at shutdown, or Redis unreachable: no depth this scrape
                for sink, n in sorted(self.manager.outbox.depth().items()):
                    depth.add_metric([sink], n)
        yield notes
        yield depth
