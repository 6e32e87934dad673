"""Replay logged traffic through the same features, detectors and alert rules as the live
pipeline, and summarise it for a report. Deterministic: the same input gives the same JSON."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from monitor.alerts import AlertManager
from monitor.alerts.model import from_finding, rule_matches
from monitor.alerts.outbox import AlertStore
from monitor.engine import Engine
from monitor.plugins import STORES
from monitor.policy import Policy, Receiver, load_policy
from monitor.records import Exchange, Finding
from monitor.reload import PolicyHolder
from monitor.replay.readers import Inputs

AlertMode = Literal["none", "log", "route"]
BATCH = 256
MAX_POINTS = 400  # at most this many points per over-time series


class Progress:
    """records/s and ETA on a terminal (one updating line), plain lines every few seconds otherwise."""

    def __init__(self, total_bytes: int, out: TextIO = sys.stderr, every_s: float = 5.0) -> None:
        self.total, self.out, self.every_s = total_bytes, out, every_s
        self.tty = out.isatty()
        self.start = self.last = time.monotonic()

    def update(self, records: int, done_bytes: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else self.every_s):
            return
        self.last = now
        rate = records / max(now - self.start, 1e-9)
        frac = done_bytes / self.total if self.total else 1.0
        eta = (now - self.start) * (1 - frac) / frac if 0 < frac < 1 else 0.0
        line = f"replay: {records:,} records  {rate:,.0f}/s  {frac:.0%}  ETA {eta:.0f}s"
        if self.tty:
            self.out.write("\r" + line + ("\n" if final else ""))
        else:
            self.out.write(line + "\n")
        self.out.flush()


@dataclass
class _Series:
    """Per experiment, metric and arm: counts, plus points over time."""

    n: dict[str, float] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)


class Collector:
    """What the report needs, gathered as records stream past (constant memory per series)."""

    def __init__(self, metrics: list[str]) -> None:
        self.metrics = metrics
        self.series: dict[tuple[str, str], _Series] = {}
        self.binary: dict[tuple[str, str], bool] = {}  # (experiment, metric): every value 0 or 1
        # e-value series key -> the test it draws: (metric, arms in the order of Finding.arms)
        self.tests: dict[tuple[str, str], tuple[str, list[str]]] = {}
        self.probe: dict[tuple[str, str], list[float]] = {}
        self.findings: list[Finding] = []
        self.finding_records: list[int | None] = []  # the record number of each finding's exchange
        self.records = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self._window: tuple[list[Exchange], int] = ([], 1)

    def observe(self, ex: Exchange, feats: dict[str, Any]) -> None:
        self.records += 1
        self.first = ex.time if self.first is None or ex.time < self.first else self.first
        self.last = ex.time if self.last is None or ex.time > self.last else self.last
        if ex.experiment is None or ex.arm is None:
            return
        for metric in self.metrics:
            value = feats.get(metric)
            if value is None or isinstance(value, str):
                continue
            if metric == "complied" and not feats.get("harmful"):
                continue  # compliance is reported on harmful requests, where the gap lives
            key = (ex.experiment, metric)
            s = self.series.setdefault(key, _Series())
            s.n[ex.arm] = s.n.get(ex.arm, 0.0) + 1
            s.events[ex.arm] = s.events.get(ex.arm, 0.0) + float(value)
            self.binary[key] = self.binary.get(key, True) and float(value) in (0.0, 1.0)
        if ex.probe_id is not None and feats.get("probe_correct") is not None:
            acc = self.probe.setdefault((ex.experiment, ex.arm), [0.0, 0.0])
            acc[0] += 1
            acc[1] += float(feats["probe_correct"])

    def window(self, exchanges: list[Exchange], first: int) -> None:
        """The exchanges the detectors see next, the first being record number `first` (so that
        each finding can be placed on the records axis)."""
        self._window = (exchanges, first)

    def sample(self, engine: Engine, at: datetime, index: int) -> None:
        """Note every series after record number `index` (at `at`) has been through the detectors."""
        for (_, metric), s in self.series.items():
            if metric.startswith("evalue:"):
                continue
            s.points.append({"i": index, "time": at.isoformat(), "n": dict(s.n), "events": dict(s.events)})
        for track in engine.tracks():
            key = (track.experiment, f"evalue:{track.metric}:{'|'.join(track.arms)}")
            self.tests.setdefault(key, (track.metric, list(track.arms)))
            s = self.series.setdefault(key, _Series())
            s.points.append(
                {
                    "i": index,
                    "time": at.isoformat(),
                    "log_e": track.log_wealth,
                    "threshold_log_e": track.log_threshold,
                    "estimate": self._finite(track.estimate),
                    "lo": self._finite(track.lo),
                    "hi": self._finite(track.hi),
                }
            )

    @staticmethod
    def _finite(value: float) -> float | None:
        """A number for the JSON: None where the interval is unbounded or undefined."""
        return value if abs(value) < 1e300 else None  # False for nan and inf

    def thin(self, limit: int) -> bool:
        """Keep every other point of every series once one holds more than `limit`."""
        if not any(len(s.points) > limit for s in self.series.values()):
            return False
        for s in self.series.values():
            s.points = s.points[::2]
        return True

    async def on_findings(self, found: list[Finding]) -> None:
        exchanges, first = self._window
        for f in found:
            self.findings.append(f)
            self.finding_records.append(
                next((first + k for k, ex in enumerate(exchanges) if ex.id == f.exchange_id), None)
            )


def _replay_policy(policy: Policy, mode: AlertMode) -> Policy:
    """In `log` mode every alert goes to one log receiver, so a replay never pages anyone."""
    if mode != "log" or policy.alerts.route is None:
        return policy
    route = policy.alerts.route.model_copy(update={"receiver": "replay-log", "routes": []})
    alerts = policy.alerts.model_copy(update={"route": route, "receivers": [Receiver(name="replay-log", log={})]})
    return policy.model_copy(update={"alerts": alerts})


def replay(
    paths: list[Path],
    policy_path: Path | None,
    out: Path,
    *,
    seed: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    alerts: AlertMode = "log",
    progress: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """Run the pipeline over logged traffic; write report.json (and return it)."""
    policy = load_policy(policy_path) if policy_path is not None else Policy()
    policy = _replay_policy(policy.model_copy(update={"seed": seed}), alerts)
    holder = PolicyHolder(path=None, policy=policy)
    holder.path = policy_path
    inputs = Inputs(paths)
    metrics = sorted({m for d in policy.detectors for m in d.params.get("metrics", ["complied"])} | {"complied"})
    collector = Collector(metrics)
    engine = Engine(holder)
    engine.subscribe(collector.on_findings)
    out.mkdir(parents=True, exist_ok=True)
    wanted_outbox = alerts != "none" and policy.alerts.route is not None
    outbox: AlertStore | None = STORES.create("sqlite", {"path": out / "alerts.sqlite"}) if wanted_outbox else None
    clock_now = [0.0]
    manager = (
        AlertManager(holder, outbox, log_dir=" ".join(map(str, paths)), clock=lambda: clock_now[0])
        if outbox is not None
        else None
    )
    if manager is not None:
        engine.subscribe(manager.on_findings)
    total = sum(p.stat().st_size for p in inputs.paths if p.exists())
    bar = Progress(total) if progress is not None else None
    wanted = {"harmful", "probe_correct", *metrics}

    async def run() -> None:
        batch: list[Exchange] = []
        n = sampled = 0  # records through the detectors; the last sampled
        last_time: datetime | None = None
        every = 25  # sample interval; doubles (and the series are thinned) as the log grows

        async def detect(part: list[Exchange], rows: list[dict[str, Any]]) -> None:
            nonlocal n
            collector.window(part, n + 1)
            for ex, row in zip(part, rows, strict=True):
                collector.observe(ex, row)
            await engine.process(part, rows)
            n += len(part)

        async def flush(final: bool = False) -> None:
            """Features for the whole batch at once; the detectors in parts, so that every sample
            is taken just after its record went through them (never a batch late)."""
            nonlocal every, sampled
            rows = await engine.features(batch, also=wanted)  # once, for detectors and report
            base, start = n, 0
            for k, ex in enumerate(batch):
                number = base + k + 1
                if number % every == 0 or (final and k == len(batch) - 1):
                    await detect(batch[start : k + 1], rows[start : k + 1])
                    start = k + 1
                    collector.sample(engine, ex.time, number)
                    sampled = number
                    if collector.thin(MAX_POINTS):
                        every *= 2
            if start < len(batch):
                await detect(batch[start:], rows[start:])
            if manager is not None:
                clock_now[0] = batch[-1].time.timestamp()
                await manager.tick()
                await manager.deliver()
            batch.clear()

        for ex in inputs:
            if (since and ex.time < since) or (until and ex.time > until):
                continue
            batch.append(ex)
            last_time = ex.time
            if len(batch) >= BATCH:
                await flush()
                if bar is not None:
                    bar.update(n, inputs.position)
        if batch:
            await flush(final=True)
        elif last_time is not None and sampled < n:  # the log ended with a full batch
            collector.sample(engine, last_time, n)
        if manager is not None:
            await manager.drain()
            await manager.deliver()
            await manager.close()
        if bar is not None:
            bar.update(n, total, final=True)

    try:
        asyncio.run(run())
    finally:
        engine.shutdown()
    if outbox is not None:
        outbox.close()
    would_fire = []
    for f in collector.findings:
        for rule in policy.alerts.rules:
            if rule_matches(rule, f):
                a = from_finding(
                    f, rule, policy_path=str(policy_path) if policy_path else None, log_dir=" ".join(map(str, paths))
                )
                would_fire.append(a.model_dump(mode="json", exclude={"updated_at"}))
    report = build_report(collector, inputs, policy_path, seed, would_fire)
    from monitor.replay.report import write_report

    write_report(report, out)
    return report


def build_report(
    collector: Collector, inputs: Inputs, policy_path: Path | None, seed: int, would_fire: list[dict[str, Any]]
) -> dict[str, Any]:
    from monitor.replay.figures import RecordAxis, merge_evidence

    # where each moment falls on the records axis: the samples, the alarms, the first record
    axis = RecordAxis(
        [(p["time"], p["i"]) for s in collector.series.values() for p in s.points]
        + [
            (f.time.isoformat(), i)
            for f, i in zip(collector.findings, collector.finding_records, strict=True)
            if i is not None
        ]
        + ([(collector.first.isoformat(), 1)] if collector.first is not None else [])
    )
    series = []
    for (experiment, metric), s in sorted(collector.series.items()):
        arms = {
            arm: {"n": s.n[arm], "events": s.events[arm], "rate": s.events[arm] / s.n[arm] if s.n[arm] else None}
            for arm in sorted(s.n)
        }
        entry: dict[str, Any] = {"experiment": experiment, "metric": metric, "arms": arms, "points": s.points}
        test = collector.tests.get((experiment, metric))
        if test is None:
            entry["binary"] = collector.binary.get((experiment, metric), False)
        else:
            # the e-value path at full resolution: the samples, and the evidence each alarm of
            # this test carries from the test's (re)start to its crossing
            name, test_arms = test
            mine = [
                (f, i)
                for f, i in zip(collector.findings, collector.finding_records, strict=True)
                if f.experiment == experiment and f.metric == name and f.arms == test_arms
            ]
            entry["points"], entry["alarms"] = merge_evidence(s.points, mine, axis)
            entry["test"] = {"metric": name, "arms": test_arms}
            entry["binary"] = collector.binary.get((experiment, name), False)
            entry["difference"] = name in collector.metrics  # the estimate is arms[0] - arms[1]
        series.append(entry)
    return {
        "cuewatch_report": 1,
        "inputs": [str(p) for p in inputs.paths],
        "policy": str(policy_path) if policy_path else None,
        "seed": seed,
        "records": collector.records,
        "first": collector.first.isoformat() if collector.first else None,
        "last": collector.last.isoformat() if collector.last else None,
        "bad_lines": {"count": len(inputs.bad_lines), "examples": [b.__dict__ for b in inputs.bad_lines[:100]]},
        "findings": [f.model_dump(mode="json") for f in collector.findings],
        "series": series,
        "probe_accuracy": [
            {"experiment": e, "arm": a, "n": v[0], "correct": v[1], "accuracy": v[1] / v[0]}
            for (e, a), v in sorted(collector.probe.items())
            if v[0]
        ],
        "flagged_excerpts": [
            {"finding": f.id, "detector": f.detector, "excerpt": f.excerpt} for f in collector.findings if f.excerpt
        ],
        "alerts_would_fire": would_fire,
    }
