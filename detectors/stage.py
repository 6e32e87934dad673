"""The pipeline stage that runs the policy's detectors over each exchange, in order.

Features are computed once per exchange (only those some detector wants) and shared. A
detector that raises is logged (once per error kind) and skipped; the others and the proxy go
on. Findings are logged, appended to the traffic log as `finding` records, and handed to any
listeners (alerts). Detector state is saved at shutdown and restored at start, keyed by the
detector's name and parameters, and kept across policy reloads when the spec is unchanged.
A Redis worker runs one stage per partition (`select` picks its detectors) and saves `state()`
in Redis instead of a file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from detectors import features, registry
from detectors.base import Observation
from monitor.pipeline import TrafficLogStage
from monitor.policy import DetectorSpec
from monitor.records import Exchange, Finding
from monitor.reload import PolicyHolder

log = structlog.get_logger("cuewatch.detectors")

Listener = Callable[[list[Finding]], Awaitable[None]]


def spec_key(spec: DetectorSpec) -> str:
    return f"{spec.name}:{json.dumps(spec.params, sort_keys=True)}"


class DetectorStage:
    def __init__(
        self,
        holder: PolicyHolder,
        traffic: TrafficLogStage | None = None,
        state_path: Path | None = None,
        listeners: list[Listener] | None = None,
        *,
        select: Callable[[DetectorSpec], bool] | None = None,
        saved: dict[str, Any] | None = None,
    ) -> None:
        self.holder = holder
        self.select = select
        self.traffic = traffic
        self.state_path = state_path
        self.listeners = list(listeners or [])
        self.detectors: dict[str, Any] = {}
        self.errors: dict[str, int] = {}
        self.findings_total = 0
        self.findings: dict[tuple[str, str], int] = {}  # (detector, experiment) -> findings raised
        self._policy: Any = None
        self._wanted: set[str] = set()
        self._saved: dict[str, Any] = dict(saved) if saved is not None else self._load_state()

    def _load_state(self) -> dict[str, Any]:
        if self.state_path is None or not self.state_path.exists():
            return {}
        try:
            return dict(json.loads(self.state_path.read_text()))
        except (OSError, ValueError) as exc:
            log.error("detector_state_unreadable", path=str(self.state_path), error=str(exc))
            return {}

    @property
    def wanted(self) -> set[str]:
        """Features the current detectors need."""
        return self._wanted

    def sync(self) -> None:
        """Create, keep or drop detectors to match the running policy."""
        policy = self.holder.policy
        if policy is self._policy:
            return
        self._policy = policy
        current: dict[str, Any] = {}
        for spec in policy.detectors:
            if self.select is not None and not self.select(spec):
                continue
            key = spec_key(spec)
            if key in self.detectors:
                current[key] = self.detectors[key]
                continue
            try:
                det = registry.create(spec.name, spec.params)
            except (TypeError, ValueError, KeyError) as exc:
                log.error("detector_not_created", detector=spec.name, error=str(exc))
                continue
            if key in self._saved:
                try:
                    det.restore(self._saved.pop(key))
                    log.info("detector_state_restored", detector=key)
                except Exception as exc:
                    log.error("detector_state_not_restored", detector=key, error=str(exc))
            current[key] = det
        self.detectors = current
        wanted: set[str] = set()
        for det in current.values():
            wanted |= set(getattr(det, "wants", features.names()))
        self._wanted = wanted

    async def __call__(self, batch: list[Exchange]) -> None:
        self.sync()
        if self.detectors:
            await self.process(batch, features.compute_batch(batch, self._wanted))

    async def process(self, batch: list[Exchange], rows: list[dict[str, Any]]) -> None:
        """Run the detectors over exchanges whose features are already computed."""
        self.sync()
        found: list[Finding] = []
        for ex, row in zip(batch, rows, strict=True):
            obs = Observation(ex, row)
            for key, det in self.detectors.items():
                try:
                    found.extend(det.update(obs))
                except Exception as exc:
                    n = self.errors[key] = self.errors.get(key, 0) + 1
                    if n == 1 or n % 1000 == 0:
                        log.exception("detector_failed", detector=key, error=str(exc), failures=n)
        if not found:
            return
        self.findings_total += len(found)
        for f in found:
            where = (f.detector, f.experiment or "")
            self.findings[where] = self.findings.get(where, 0) + 1
            log.warning(
                "finding",
                detector=f.detector,
                metric=f.metric,
                experiment=f.experiment,
                arms=f.arms,
                e_value=f.e_value,
                summary=f.summary,
            )
        if self.traffic is not None:
            lines = [f.model_dump_json().encode() for f in found]
            try:
                await asyncio.to_thread(self.traffic.log.write, lines)
            except OSError as exc:  # a full disk must not keep the findings from the alerts
                log.error("findings_not_logged", findings=len(found), error=str(exc))
        for listener in self.listeners:
            try:
                await listener(found)
            except Exception:
                log.exception("finding_listener_failed")

    def snapshot(self) -> dict[str, Any]:
        return {key: det.snapshot() for key, det in self.detectors.items()}

    def state(self) -> dict[str, Any]:
        """What to save: the running detectors' snapshots, plus saved state of detectors not
        running now (a policy reload may bring them back)."""
        return {**self._saved, **self.snapshot()}

    def close(self) -> None:
        """Save detector state for the next start (atomically: write, then rename)."""
        if self.state_path is None or not self.detectors:
            return
        tmp = self.state_path.with_suffix(".tmp")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.state()))
        tmp.replace(self.state_path)
