"""Prometheus metrics of one proxy instance (its own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.alerts.metrics import AlertCollector
from monitor.engine import Engine
from monitor.pipeline import Pipeline, TrafficLogStage
from monitor.reload import PolicyHolder

MAX_MODELS = 50  # distinct model label values before the rest are counted as "other"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class ProxyMetrics:
    """Counters and histograms updated on the request path; pipeline figures read at scrape."""

    def __init__(
        self, pipeline: Pipeline, log_stage: TrafficLogStage | None, holder: PolicyHolder, shadow: Any
    ) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: twice the series for nothing
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cuewatch_requests",
            "Requests served, by dialect, model and status.",
            ["dialect", "model", "status"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "cuewatch_upstream_latency_seconds",
            "Request sent upstream to upstream response headers.",
            ["dialect", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "cuewatch_proxy_overhead_seconds",
            "Time spent in the proxy itself per request.",
            ["dialect"],
            buckets=_OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self._not_applied = Counter(
            "cuewatch_cue_not_applied",
            "Requests an experiment matched but the cue code could not rewrite (forwarded as sent, unassigned).",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_PipelineCollector(pipeline, log_stage))
        self.registry.register(_ExperimentCollector(holder, shadow))
        self._upstreams = _UpstreamCollector()
        self.registry.register(self._upstreams)
        self._alerts = AlertCollector()
        self.registry.register(self._alerts)
        self._models: set[str] = set()
        self._children: dict[tuple[str, str, int], Any] = {}

    def watch_alerts(self, manager: Any) -> None:
        self._alerts.manager = manager

    def model_label(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            return "unknown"
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def cue_not_applied(self, reason: str) -> None:
        self._not_applied.labels(reason).inc()

    def observe(self, dialect: str, model: str, status: int, upstream_s: float | None, overhead_s: float) -> None:
        key = (dialect, model, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(dialect, model, str(status))
        child.inc()
        if upstream_s is not None:
            self.upstream_latency.labels(dialect, model).observe(upstream_s)
        self.overhead.labels(dialect).observe(overhead_s)

    def render(self, upstreams: dict[str, str] | None = None) -> bytes:
        """The exposition text; `upstreams` (base URL -> "reachable" or why not) gives
        `cuewatch_upstream_up`."""
        self._upstreams.state = upstreams or {}
        return generate_latest(self.registry)


class _UpstreamCollector(Collector):
    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily(
            "cuewatch_upstream_up",
            "1 when the upstream answered the last check (any HTTP status).",
            labels=["upstream"],
        )
        for base, state in sorted(self.state.items()):
            up.add_metric([base], 1.0 if state == "reachable" else 0.0)
        yield up


class _PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline, log_stage: TrafficLogStage | None) -> None:
        self.pipeline = pipeline
        self.log_stage = log_stage

    def collect(self) -> Iterator[Any]:
        p = self.pipeline
        yield GaugeMetricFamily("cuewatch_queue_depth", "Records waiting in memory.", value=p.depth)
        yield GaugeMetricFamily("cuewatch_spill_pending", "Spilled records not yet processed.", value=p.spill.pending)
        spilled = CounterMetricFamily("cuewatch_records_spilled", "Records spilled to disk.")
        spilled.add_metric([], p.spilled)
        yield spilled
        failed = CounterMetricFamily("cuewatch_records_failed", "Records that could not be read.")
        failed.add_metric([], p.failed)
        yield failed
        held = GaugeMetricFamily(
            "cuewatch_records_held",
            "Records kept in memory because the spill folder refused writes.",
            value=len(p.spill.held),
        )
        yield held
        yield GaugeMetricFamily("cuewatch_spill_bytes", "Bytes in spill files on disk.", value=p.spill.size_bytes())
        yield GaugeMetricFamily(
            "cuewatch_traffic_log_healthy", "1 while the traffic log takes writes.", value=0 if p.write_error else 1
        )
        write_failures = CounterMetricFamily(
            "cuewatch_write_failures",
            "Failed writes, by target (traffic log batches, spill records).",
            labels=["target"],
        )
        write_failures.add_metric(["traffic_log"], p.write_failures)
        write_failures.add_metric(["spill"], p.spill.errors)
        yield write_failures
        lost = CounterMetricFamily(
            "cuewatch_records_lost", "Records given up at shutdown (log and spill both failing)."
        )
        lost.add_metric([], p.lost)
        yield lost
        engine = next((s for s in p.stages if isinstance(s, Engine)), None)
        found = CounterMetricFamily(
            "cuewatch_findings", "Findings raised, by detector and experiment.", labels=["detector", "experiment"]
        )
        errors = CounterMetricFamily(
            "cuewatch_detector_errors", "Records a detector raised on (skipped by it).", labels=["detector"]
        )
        if engine is not None:
            for (det, exp), n in sorted(engine.findings.items()):
                found.add_metric([det, exp], n)
            by_name: dict[str, int] = {}
            for key, n in engine.errors.items():  # key: name:params
                by_name[key.split(":", 1)[0]] = by_name.get(key.split(":", 1)[0], 0) + n
            for name, n in sorted(by_name.items()):
                errors.add_metric([name], n)
        yield found
        yield errors
        analysed = CounterMetricFamily(
            "cuewatch_exchanges_analysed",
            "Exchanges through the detectors (records written minus this is the analysis lag).",
        )
        analysed.add_metric([], engine.analysed if engine is not None else 0)
        yield analysed
        written = CounterMetricFamily(
            "cuewatch_records_written", "Records written to the traffic log.", labels=["dialect"]
        )
        for dialect, n in sorted((self.log_stage.written if self.log_stage else {}).items()):
            written.add_metric([dialect], n)
        yield written
        publish: Any = next((s for s in p.stages if hasattr(s, "published")), None)
        if publish is not None:  # transport: redis
            sent = CounterMetricFamily("cuewatch_redis_published", "Records added to the Redis stream.")
            sent.add_metric([], publish.published)
            yield sent
            errors = CounterMetricFamily("cuewatch_redis_publish_errors", "Batches Redis did not take (then spilled).")
            errors.add_metric([], publish.errors)
            yield errors


class _ExperimentCollector(Collector):
    """Shadow/probe traffic sent, budgets paused or refusing, policy reloads."""

    def __init__(self, holder: PolicyHolder, shadow: Any) -> None:
        self.holder = holder
        self.shadow = shadow

    def collect(self) -> Iterator[Any]:
        sent = CounterMetricFamily(
            "cuewatch_shadow_requests", "Shadow and probe requests sent, by outcome.", labels=["experiment", "outcome"]
        )
        for (exp, outcome), n in sorted(self.shadow.sent.items()):
            sent.add_metric([exp, outcome], n)
        yield sent
        pairs = CounterMetricFamily(
            "cuewatch_shadow_pairs",
            "Shadow pairs sent, by the sampling rule that chose the request and whether the harmful-request "
            "classifier flagged it (informative: where a compliance gap can show; unknown when no rule uses it).",
            labels=["experiment", "rule", "harmful"],
        )
        for (exp, rule, harmful), n in sorted(self.shadow.pairs.items()):
            pairs.add_metric([exp, rule, harmful], n)
        yield pairs
        paused = GaugeMetricFamily(
            "cuewatch_shadow_paused", "1 while an experiment's shadow budget is spent.", labels=["experiment", "reason"]
        )
        refused = CounterMetricFamily(
            "cuewatch_shadow_budget_refused", "Shadow/probe sends skipped for budget.", labels=["experiment"]
        )
        spent = CounterMetricFamily(
            "cuewatch_shadow_budget_spent", "Shadow/probe requests admitted by the budget.", labels=["experiment"]
        )
        for name, budget in sorted(self.holder.budgets.items()):
            paused.add_metric([name, budget.paused or "none"], 1.0 if budget.paused else 0.0)
            refused.add_metric([name], budget.refused)
            spent.add_metric([name], budget.spent)
        yield paused
        yield refused
        yield spent
        reloads = CounterMetricFamily("cuewatch_policy_reloads", "Policy reloads, by result.", labels=["result"])
        reloads.add_metric(["ok"], self.holder.reloads)
        reloads.add_metric(["rejected"], self.holder.rejected)
        yield reloads
