"""`cuewatch worker` as a service: the ASGI app (/healthz, /readyz, /metrics, the evidence pages) that runs a
`Worker` in its lifespan, and the worker's Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.alerts.metrics import AlertCollector
from monitor.asgi import send_json, send_text
from monitor.evidence.web import EvidencePages
from monitor.feature_worker import FeatureWorker
from monitor.settings import Settings
from monitor.worker import Worker


class WorkerCollector(Collector):
    """Exchanges processed, lag, commits and health of one worker."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker

    def collect(self) -> Iterator[Any]:
        w = self.w
        done = CounterMetricFamily(
            "cuewatch_worker_exchanges", "Exchanges processed, by partition.", labels=["partition"]
        )
        for name, n in sorted(w.processed.items()):
            done.add_metric([name], n)
        yield done
        held = GaugeMetricFamily(
            "cuewatch_worker_partitions", "1 for each partition this worker holds.", labels=["partition"]
        )
        for name in sorted(w.parts):
            held.add_metric([name], 1.0)
        yield held
        lag = GaugeMetricFamily(
            "cuewatch_worker_backlog", "Entries not yet committed by each partition's group.", labels=["partition"]
        )
        for name, n in sorted(w.lag.items()):
            lag.add_metric([name], n)
        yield lag
        for name, value, text in (
            ("cuewatch_worker_commits", w.commits, "Snapshots committed (entries acknowledged)."),
            ("cuewatch_worker_entries_trimmed", w.trimmed, "Entries trimmed from the stream before processing."),
            ("cuewatch_worker_entries_unreadable", w.unreadable, "Stream entries that were not an exchange."),
        ):
            c = CounterMetricFamily(name, text)
            c.add_metric([], value)
            yield c
        if w.remote is not None:
            rows = CounterMetricFamily(
                "cuewatch_worker_feature_rows",
                "Feature rows of model-using partitions: taken from the feature workers (redis) or computed here "
                "because none came in time (local).",
                labels=["source"],
            )
            rows.add_metric(["redis"], w.remote.taken)
            rows.add_metric(["local"], w.remote.missed)
            yield rows
        yield GaugeMetricFamily("cuewatch_worker_up", "1 while Redis answers.", value=1.0 if w.connected else 0.0)
        yield GaugeMetricFamily(
            "cuewatch_worker_alert_leader",
            "1 while this worker groups and sends alerts.",
            value=1.0 if w.leader else 0.0,
        )


class FeatureCollector(Collector):
    """Rows written and entries skipped by one feature worker."""

    def __init__(self, worker: FeatureWorker) -> None:
        self.w = worker

    def collect(self) -> Iterator[Any]:
        w = self.w
        for name, value, text in (
            ("cuewatch_feature_worker_rows", w.computed, "Exchanges whose feature row this worker wrote."),
            ("cuewatch_feature_worker_skipped", w.skipped, "Entries no partition wants a model feature for."),
            ("cuewatch_feature_worker_entries_unreadable", w.unreadable, "Stream entries that were not an exchange."),
        ):
            c = CounterMetricFamily(name, text)
            c.add_metric([], value)
            yield c
        yield GaugeMetricFamily("cuewatch_worker_up", "1 while Redis answers.", value=1.0 if w.connected else 0.0)


class WorkerApp:
    """ASGI app around a worker (`worker_role`: detectors or features): /healthz, /readyz (Redis
    reachable), /metrics, and for a detector worker the evidence pages; the worker runs in the
    lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.worker: Worker | FeatureWorker
        self.evidence: EvidencePages | None = None
        if settings.worker_role == "features":
            self.worker = FeatureWorker(settings)
            self.registry.register(FeatureCollector(self.worker))
        else:
            self.worker = Worker(settings)
            self.registry.register(WorkerCollector(self.worker))
            alerts = AlertCollector()
            alerts.manager = self.worker.alerts
            self.registry.register(alerts)
            self.evidence = EvidencePages.from_settings(settings)
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    self._task = asyncio.create_task(self.worker.run(), name="cuewatch-worker")
                    if self.worker.holder.path is not None and self.settings.policy_poll_s > 0:
                        self._watch = asyncio.create_task(self.worker.holder.watch(self.settings.policy_poll_s))
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    if self._watch is not None:
                        self._watch.cancel()
                    self.worker.stop()
                    if self._task is not None:
                        await self._task
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            path = scope["path"]
            if path == "/healthz":
                alive = self._task is not None and not self._task.done()
                await send_json(send, 200 if alive else 503, {"status": "ok" if alive else "stopped"})
            elif path == "/readyz":
                ok = self.worker.connected
                held = sorted(self.worker.parts) if isinstance(self.worker, Worker) else []
                await send_json(
                    send, 200 if ok else 503, {"ready": ok, "role": self.settings.worker_role, "partitions": held}
                )
            elif path == "/metrics":
                await send_text(send, 200, generate_latest(self.registry).decode(), b"text/plain; version=0.0.4")
            elif self.evidence is not None and EvidencePages.handles(path):
                await self.evidence(scope, receive, send)
            else:
                await send_json(send, 404, {"error": f"no route {path}"})
