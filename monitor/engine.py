"""The analysis engine: exchanges in; features, detectors and findings out.

One engine serves every entry point: the proxy's in-process mode (as a pipeline stage),
`cuewatch worker` (one engine per partition) and `cuewatch replay`. For each batch it

1. computes the features the policy's detectors want, once per exchange, in the engine's own
   feature thread, so model work (embeddings, classifiers) never holds the event loop that
   forwards traffic;
2. runs the detectors over the exchanges in order;
3. writes the findings through a `FindingSink` (the traffic log) and hands them to every
   subscriber (the alert manager, a replay's collector).

Detector state is saved by `close()` and restored when the detector is created, keyed by the
detector's name and parameters, and kept across policy reloads when the spec is unchanged. A
Redis worker passes `saved=` (its snapshot in Redis) and `select=` (its partition's detectors).

Example
-------
>>> import asyncio
>>> from datetime import UTC, datetime
>>> from monitor.policy import Policy
>>> from monitor.records import Exchange
>>> from monitor.reload import PolicyHolder
>>> policy = Policy.model_validate({"detectors": [{"name": "cue_gap", "params": {"experiment": "e", "only": None}}]})
>>> engine = Engine(PolicyHolder(policy=policy))  # doctest: +ELLIPSIS
20...policy_loaded...
>>> found = []
>>> async def collect(findings):
...     found.extend(findings)
>>> engine.subscribe(collect)
>>> ex = Exchange(id="1", time=datetime(2026, 1, 1, tzinfo=UTC), dialect="openai", path="/", status=200,
...               outcome="ok", experiment="e", arm="a", mode="live", assignment_probability=0.5)
>>> asyncio.run(engine([ex]))
>>> sorted(engine.wanted), found
(['complied', 'harm_category'], [])
>>> engine.shutdown()
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.thread import BrokenThreadPool
from pathlib import Path
from typing import Any, Protocol

import structlog

from detectors import features, registry
from detectors.base import Detector, Observation, Snapshot
from monitor._serve import share_the_lock
from monitor.policy import DetectorSpec, Policy
from monitor.records import Exchange, Finding, Track
from monitor.reload import PolicyHolder

log = structlog.get_logger("cuewatch.engine")

Subscriber = Callable[[list[Finding]], Awaitable[None]]


class FindingSink(Protocol):
    """Where findings are recorded (the traffic log); must not raise on a failed write."""

    async def write_findings(self, findings: list[Finding]) -> None: ...


def spec_key(spec: DetectorSpec) -> str:
    return f"{spec.name}:{json.dumps(spec.params, sort_keys=True)}"


def _start_process(torch_threads: int) -> None:
    """Initializer of a feature process: its share of the cores for torch (read by
    `detectors.semantic` when it loads the model)."""
    os.environ.setdefault("CUEWATCH_TORCH_THREADS", str(torch_threads))  # unless set for the whole process


def _load_model() -> None:
    from detectors import semantic

    semantic.encoder()


class FeaturePool:
    """Where features are computed, off the event loop.

    `workers=1` (the default): one thread. The model's matrix work releases the interpreter
    lock, and the thread hands the lock back to the event loop within 0.5 ms
    (`monitor._serve.share_the_lock`; the interpreter's default is 5 ms, which a stream would
    see as a stall between chunks).
    `workers>1`: that many processes, each loading its own copy of the model on first use with
    an equal share of the cores for torch; each batch is split among them and the rows come
    back in the batch's order. Both run at the event loop's own priority: at a lower one, a
    proxy whose core is saturated by forwarding starved them, and with them the whole record
    pipeline (the traffic log included) until the queue spilled to disk.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("a feature pool needs at least one worker")
        self.workers = workers
        self._executor = self._start()

    def _start(self) -> Executor:
        if self.workers == 1:
            share_the_lock()
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuewatch-features")
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),  # never fork a process holding threads
            initializer=_start_process,
            initargs=(threads,),
        )

    async def compute(self, batch: list[Exchange], names: set[str]) -> list[dict[str, Any]]:
        """`features.compute_batch(batch, names)` in the pool; a process pool that lost a process
        (killed for memory, say) is restarted and the batch computed again, once."""
        if not batch:
            return []
        try:
            return await self._compute(batch, names)
        except (BrokenProcessPool, BrokenThreadPool):
            log.error("feature_pool_broken_restarting", workers=self.workers)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            return await self._compute(batch, names)

    async def _compute(self, batch: list[Exchange], names: set[str]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        size = -(-len(batch) // self.workers)  # ceil: one chunk per worker
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        parts = await asyncio.gather(
            *(loop.run_in_executor(self._executor, features.compute_batch, chunk, names) for chunk in chunks)
        )
        return [row for part in parts for row in part]

    async def warm(self) -> None:
        """Load the embedding model in the pool's workers now rather than with the first batch."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _load_model) for _ in range(self.workers)))

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


class Engine:
    """Features, detectors and findings for one policy (or one partition of it)."""

    def __init__(
        self,
        holder: PolicyHolder,
        *,
        sink: FindingSink | None = None,
        state_path: Path | None = None,
        select: Callable[[DetectorSpec], bool] | None = None,
        saved: dict[str, Any] | None = None,
        pool: FeaturePool | int = 1,
    ) -> None:
        self.holder = holder
        self.sink = sink
        self.state_path = state_path
        self.select = select
        self.detectors: dict[str, Detector] = {}
        self.errors: dict[str, int] = {}
        self.findings: dict[tuple[str, str], int] = {}  # (detector, experiment) -> findings raised
        self.analysed = 0  # exchanges through the detectors (records written minus this: analysis lag)
        self._subscribers: list[Subscriber] = []
        self._stale = True  # the detectors do not match the running policy yet
        holder.subscribe(self._on_reload)
        self._wanted: set[str] = set()
        self._saved: dict[str, Any] = dict(saved) if saved is not None else self._load_state()
        # an int: the engine's own pool of that many workers, made on first use; a pool: shared
        self._own_pool = isinstance(pool, int)
        self._workers = pool if isinstance(pool, int) else pool.workers
        self._pool = None if isinstance(pool, int) else pool

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber(findings)` with every non-empty batch of findings."""
        self._subscribers.append(subscriber)

    @property
    def wanted(self) -> set[str]:
        """Features the current detectors need."""
        return self._wanted

    @property
    def findings_total(self) -> int:
        return sum(self.findings.values())

    # ------------------------------------------------------------------ detectors

    def _on_reload(self, policy: Policy) -> None:
        self._stale = True  # the next batch (on the loop) brings the detectors up to date

    def sync(self) -> None:
        """Create, keep or drop detectors to match the running policy (after a reload)."""
        if not self._stale:
            return
        self._stale = False
        policy = self.holder.policy
        current: dict[str, Detector] = {}
        for spec in policy.detectors:
            if self.select is not None and not self.select(spec):
                continue
            key = spec_key(spec)
            if key in self.detectors:
                current[key] = self.detectors[key]
                continue
            # The policy was validated by creating every detector, so this cannot fail for a
            # policy that loaded; restoring saved state can (a snapshot from another version).
            det: Detector = registry.create(spec.name, spec.params)
            if key in self._saved:
                try:
                    Snapshot.model_validate(self._saved.pop(key)).restore_into(det, key)
                    log.info("detector_state_restored", detector=key)
                except (ValueError, KeyError, TypeError) as exc:  # ValidationError is a ValueError
                    log.error("detector_state_not_restored", detector=key, error=str(exc)[:500])
            current[key] = det
        self.detectors = current
        self._wanted = set().union(*(det.wants for det in current.values())) if current else set()

    # ------------------------------------------------------------------ batches

    @property
    def wants_model(self) -> bool:
        """Whether the current detectors want a feature computed with the embedding model."""
        self.sync()
        return any(features.needs_model(name) for name in self._wanted)

    async def __call__(self, batch: list[Exchange]) -> None:
        """Pipeline stage: features, then detectors, for one batch."""
        await self.run(batch)

    async def run(self, batch: list[Exchange], given: list[dict[str, Any] | None] | None = None) -> None:
        """Features, then detectors, for one batch; a row in `given` holding every wanted feature
        (computed elsewhere: a Redis feature worker) is taken as it is, the others computed here."""
        self.sync()
        if not self.detectors:
            self.analysed += len(batch)  # nothing to run on them
            return
        if given is None:
            rows = await self.features(batch)
        else:
            rows = [row or {} for row in given]
            todo = [i for i, row in enumerate(given) if row is None or not self._wanted <= row.keys()]
            if todo:
                for i, row in zip(todo, await self.features([batch[i] for i in todo]), strict=True):
                    rows[i] = row
        await self.process(batch, rows)

    async def features(self, batch: list[Exchange], also: Collection[str] = ()) -> list[dict[str, Any]]:
        """The detectors' features (and `also`) for each exchange, computed in the feature thread."""
        self.sync()
        if self._pool is None:
            self._pool = FeaturePool(self._workers)
        return await self._pool.compute(batch, self._wanted | set(also))

    async def process(self, batch: list[Exchange], rows: list[dict[str, Any]]) -> list[Finding]:
        """Run the detectors, in order, over exchanges whose features are computed; record the
        findings and hand them to the subscribers."""
        self.sync()
        found: list[Finding] = []
        for ex, row in zip(batch, rows, strict=True):
            obs = Observation(ex, row)
            for key, det in self.detectors.items():
                try:
                    raised = det.update(obs)
                    for f in raised:
                        f.exchange_id = ex.id
                    found.extend(raised)
                except Exception as exc:
                    n = self.errors[key] = self.errors.get(key, 0) + 1
                    if n == 1 or n % 1000 == 0:
                        log.exception("detector_failed", detector=key, error=str(exc), failures=n)
        self.analysed += len(batch)
        if found:
            await self._publish(found)
        return found

    async def _publish(self, found: list[Finding]) -> None:
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
        if self.sink is not None:
            await self.sink.write_findings(found)
        for subscriber in self._subscribers:
            try:
                await subscriber(found)
            except Exception:
                log.exception("finding_subscriber_failed")

    # ------------------------------------------------------------------ state

    def tracks(self) -> list[Track]:
        """Every running test of every detector that reports them (for reports)."""
        return [t for det in self.detectors.values() for t in det.tracks()]

    def snapshot(self) -> dict[str, Any]:
        return {key: Snapshot.of(det, key).model_dump(mode="json") for key, det in self.detectors.items()}

    def state(self) -> dict[str, Any]:
        """What to save: the running detectors' snapshots, plus saved state of detectors not
        running now (a policy reload may bring them back)."""
        return {**self._saved, **self.snapshot()}

    def _load_state(self) -> dict[str, Any]:
        if self.state_path is None or not self.state_path.exists():
            return {}
        try:
            return dict(json.loads(self.state_path.read_text()))
        except (OSError, ValueError) as exc:
            log.error("detector_state_unreadable", path=str(self.state_path), error=str(exc))
            return {}

    def close(self) -> None:
        """Save detector state for the next start (atomically: write, then rename)."""
        self.shutdown()
        if self.state_path is None or not self.detectors:
            return
        tmp = self.state_path.with_suffix(".tmp")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.state()))
        tmp.replace(self.state_path)

    def shutdown(self) -> None:
        """Stop the feature pool (if the engine made it)."""
        if self._own_pool and self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
