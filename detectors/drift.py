"""Temporal drift: a metric within one arm (or all traffic) shifts over time.

Methods: ADWIN (default) or Page-Hinkley (`detectors.stats.adwin`, state as JSON). ADWIN with
delta = 0.002 (a reference measurement on a
binary stream moving 0.02 -> 0.14 gave median delay 128, p90 208 and no false alarm in
5 x 100k null samples, while DDM and EDDM false-alarmed and FHDDM never detected), checking for
a cut every 16 samples (`clock`, chosen on tuning scenarios distinct from the benchmark). This
detector's own figures, from bench/detection.py, are in docs/benchmarks.md.

Drift detectors are not anytime-valid tests: `e_value` is reported as 1/delta and `p_value` as
delta, the per-cut confidence of ADWIN; read them as a setting, not as evidence.

References: Bifet & Gavalda (2007), Learning from time-changing data with adaptive windowing;
Page (1954), Hinkley (1971).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from detectors.base import Observation, Params, feature_name, measurable
from detectors.registry import register
from detectors.stats import mean_cs
from detectors.stats.adwin import Adwin, PageHinkley
from monitor.records import Effect, Finding, Severity, Track

ChangeDetector = Adwin | PageHinkley


def _make(method: str, delta: float, clock: int) -> ChangeDetector:
    return Adwin(delta=delta, clock=clock) if method == "adwin" else PageHinkley()


class DriftParams(Params):
    """Parameters of `drift` (see `Drift`)."""

    metric: str
    experiment: str | None = None
    only: str | None = None
    method: Literal["adwin", "page_hinkley"] = "adwin"
    delta: float = Field(0.002, gt=0, lt=1)
    clock: int = Field(16, ge=1)
    severity: Severity = "warning"

    _metric = field_validator("metric")(classmethod(lambda cls, v: measurable(v)))
    _only = field_validator("only")(classmethod(lambda cls, v: feature_name(v)))


@register("drift")
class Drift:
    """Detect a change over time in one metric, per arm.

    Parameters
    ----------
    metric: a binary or continuous feature name, e.g. `complied`.
    experiment: restrict to one experiment (per arm); None: all traffic as one stream.
    only: a feature that must be truthy for an exchange to count (e.g. `harmful`).
    method: `adwin` (default) or `page_hinkley`.
    delta: ADWIN's confidence.
    clock: ADWIN checks for a change every `clock` samples.
    severity: severity of findings.
    """

    name: ClassVar[str] = "drift"
    state_version: ClassVar[int] = 1

    Params: ClassVar[type[DriftParams]] = DriftParams
    test_params: ClassVar[dict[str, Any]] = {"metric": "complied"}

    def __init__(self, **params: Any) -> None:
        p = self.params = self.Params.model_validate(params)
        self.metric, self.experiment, self.only = p.metric, p.experiment, p.only
        self.method, self.delta, self.clock, self.severity = p.method, p.delta, p.clock, p.severity
        self._detectors: dict[str, ChangeDetector] = {}
        self._since: dict[str, list[float]] = {}  # per stream: [n, sum, sumsq] since the last drift
        self._seen: dict[str, int] = {}

    @property
    def wants(self) -> set[str]:
        return {m for m in (self.metric, self.only) if m}

    def __repr__(self) -> str:
        return (
            f"Drift(metric={self.metric!r}, experiment={self.experiment!r}, method={self.method!r}, delta={self.delta})"
        )

    def update(self, obs: Observation) -> list[Finding]:
        ex = obs.exchange
        if self.experiment is not None and ex.experiment != self.experiment:
            return []
        if self.only and not obs.features.get(self.only):
            return []
        value = obs.features.get(self.metric)
        if value is None:
            return []
        key = ex.arm or "all"
        det = self._detectors.get(key)
        if det is None:
            det = self._detectors[key] = _make(self.method, self.delta, self.clock)
        stats = self._since.setdefault(key, [0.0, 0.0, 0.0])
        self._seen[key] = self._seen.get(key, 0) + 1
        det.update(float(value))
        if not det.drift_detected:
            stats[0] += 1
            stats[1] += float(value)
            stats[2] += float(value) ** 2
            return []
        n, s, ss = stats
        before = s / n if n else 0.0
        after = det.estimation
        width = float(det.width if isinstance(det, Adwin) else det.n)
        var = max(ss / n - before * before, 0.0) if n else 0.0
        lo_b, hi_b = mean_cs(before, var, n, self.delta)
        self._since[key] = [1.0, float(value), float(value) ** 2]
        fid = hashlib.sha256(f"{self.name}|{self.experiment}|{self.metric}|{key}|{ex.id}".encode()).hexdigest()[:16]
        direction = f"{self.metric} {'rose' if after > before else 'fell'} within {key!r}"
        return [
            Finding(
                id=fid,
                time=ex.time,
                detector=self.name,
                metric=self.metric,
                experiment=self.experiment,
                model=ex.model,
                arms=[key],
                direction=direction,
                effect=Effect(estimate=after - before, lo=after - hi_b, hi=after - lo_b, unit="mean change"),
                e_value=1.0 / self.delta,
                p_value=self.delta,
                alpha=self.delta,
                counts={key: {"n": float(self._seen[key]), "window": width}},
                example_ids={key: [ex.id]},
                severity=self.severity,
                summary=f"{direction}: {before:.3g} -> {after:.3g} after {self._seen[key]} exchanges ({self.method})",
            )
        ]

    def tracks(self) -> list[Track]:
        return []  # a change detector: no running test to draw

    def snapshot(self) -> dict[str, Any]:
        return {
            "detectors": {key: {"method": self.method, **det.state()} for key, det in self._detectors.items()},
            "since": self._since,
            "seen": self._seen,
        }

    def restore(self, state: dict[str, Any]) -> None:
        detectors: dict[str, ChangeDetector] = {}
        for key, st in state["detectors"].items():
            if st.get("method") != self.method:
                raise ValueError(f"drift state of {key!r} is for method {st.get('method')!r}, not {self.method!r}")
            detectors[key] = Adwin.from_state(st) if self.method == "adwin" else PageHinkley.from_state(st)
        self._detectors = detectors
        self._since = {k: [float(x) for x in v] for k, v in state["since"].items()}
        self._seen = {k: int(v) for k, v in state["seen"].items()}
