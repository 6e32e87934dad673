"""Off the request path: a bounded queue, a disk spill when it is full, and one worker.

    proxy ──submit(capture)──▶ queue (bounded) ──▶ worker ──▶ normalise ──▶ stages
                 │ full                              ▲         (traffic log, detectors, ...)
                 └──────▶ spill file on disk ────────┘ read back when the queue is empty

`submit` never blocks and never drops: when the queue is full the capture is appended to a
spill file and processed later. Spill files outlive a crash and are drained on the next start.
A stage that raises is logged and isolated; if the traffic log itself fails, the batch is
spilled and retried after a pause, so a full disk delays records rather than losing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from monitor import journal
from monitor._serve import share_the_lock
from monitor.capture import RECORD_MAX_BYTES, Capture, to_exchange
from monitor.journal import Journal, unowned
from monitor.records import Exchange, Finding
from monitor.store import AppendFile, TrafficLog

if TYPE_CHECKING:
    from monitor.settings import Settings

log = structlog.get_logger("cuewatch.pipeline")

Stage = Callable[[list[Exchange]], Awaitable[None]]


class SpillFile:
    """Append-only overflow file of captures, owned by this process (name carries the pid).

    `append` never raises: a capture it cannot write (disk full, read-only, I/O error) is held
    in memory (`held`) and written on a later append or drained straight from memory, so a
    failing disk delays records and loses none while the process lives.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._fh: AppendFile | None = None
        self._seq = 0
        self.pending = 0  # captures on disk not yet processed (this process's spills)
        self.held: deque[Capture] = deque()  # captures the spill file could not take
        self.mine: set[Path] = set()  # files this instance wrote
        self.errors = 0  # failed spill writes
        self.last_error: str | None = None

    def append(self, cap: Capture, *, new: bool = True) -> bool:
        """Write a capture (True) or hold it in memory (False); `new=False` when it is moved
        from an older spill file (already counted)."""
        start = 0
        try:
            fh = self._open()
            start = fh.tell()
            fh.write(cap.to_line() + b"\n")
        except (OSError, ValueError) as exc:  # ValueError: a capture that cannot be encoded
            self._failed(exc, start)
            self.held.append(cap)
            return False
        self.pending += int(new)
        return True

    def _open(self) -> AppendFile:
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            path = self.directory / f"spill-{os.getpid()}-{int(time.time())}-{self._seq}.jsonl"
            self._fh = AppendFile(path)
            self.mine.add(path)
        return self._fh

    def _failed(self, exc: Exception, start: int) -> None:
        """A write failed: cut the part of a line it may have left, and start a new file next time."""
        self.errors += 1
        if self.last_error is None:
            log.error("spill_write_failed", directory=str(self.directory), error=str(exc), kept="in memory")
        self.last_error = str(exc)
        if self._fh is not None:
            self._fh.cut(start)
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def claim(self) -> list[Path]:
        """Close the current file and return every spill file this process may drain: its own,
        and those left by processes that are no longer running."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        try:
            return sorted(p for p in self.directory.glob("spill-*.jsonl") if unowned(p))
        except OSError:
            return []

    def size_bytes(self) -> int:
        """Bytes in spill files on disk (every process's)."""
        total = 0
        with contextlib.suppress(OSError):
            for p in self.directory.glob("spill-*.jsonl"):
                with contextlib.suppress(OSError):
                    total += p.stat().st_size
        return total

    @staticmethod
    def read(path: Path) -> Iterator[Capture | str]:
        """Captures in a spill file; an unreadable line yields its error message instead (a
        line cut short by a failed write, which was kept in memory and written again)."""
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield Capture.from_line(line)
                except ValidationError as exc:
                    yield f"{path}:{n}: {exc.errors()[0].get('msg')}"


class Pipeline:
    """Bounded queue + spill + worker feeding record stages.

    Parameters
    ----------
    stages: async callables taking a batch of exchanges, in order. The first one marked as
        `essential` (the traffic log) gets spill-and-retry on failure; others are isolated.
    queue_size: captures held in memory before spilling to disk.
    spill_dir: where spill files go (best on another disk than the traffic log).
    redact_prompts: store digests instead of prompt text.
    redact_secrets: replace credential-looking text in every stored field.
    record_max_bytes: most decompressed response bytes read into a record.
    max_batch: most captures handled per worker step.
    retry_pause_s: pause after an essential stage failed, before retrying spilled records.
    journal: write each capture to a journal in spill_dir before queueing it, so a process
        killed outright loses none (monitor/journal.py).
    log_dir: the traffic log, read at start to skip recovered captures already recorded
        (None with Redis transport: recovery may then write a record twice, never lose one).
    """

    def __init__(
        self,
        *,
        stages: list[Stage],
        essential: Stage | None = None,
        queue_size: int = 10_000,
        spill_dir: Path,
        redact_prompts: bool = False,
        redact_secrets: bool = True,
        record_max_bytes: int = RECORD_MAX_BYTES,
        max_batch: int = 256,
        retry_pause_s: float = 1.0,
        journal: bool = True,
        log_dir: Path | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.stages = stages
        self.essential = essential
        self.queue_size = queue_size
        self.redact_prompts = redact_prompts
        self.redact_secrets = redact_secrets
        self.record_max_bytes = record_max_bytes
        self.max_batch = max_batch
        self.retry_pause_s = retry_pause_s
        self.spill = SpillFile(spill_dir)
        self.journal = Journal(spill_dir) if journal else None
        self.log_dir = log_dir
        self._journaled: dict[str, list[int | None]] = {}  # capture id -> its journal segments
        self.recovered = 0  # captures read back from a killed process's journal or spill
        self._queue: asyncio.Queue[Capture | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.spilled = 0
        self.failed = 0
        self.write_failures = 0  # batches the essential stage did not take
        self.write_error: str | None = None  # its last error, until a write succeeds again
        self.lost = 0  # records given up at shutdown (nowhere left to keep them)

    # -- request path ------------------------------------------------------------------

    def submit(self, cap: Capture) -> None:
        """Hand a capture over; never blocks, never drops, never raises."""
        if self._queue is not None and not self._queue.full():
            if self.journal is not None:
                self._journaled.setdefault(cap.id, []).append(self.journal.write(cap))
            self._queue.put_nowait(cap)
            return
        if self.spill.append(cap):
            self._done(cap)
        self.spilled += 1

    def begin(self, cap: Capture) -> None:
        """Journal a request about to be forwarded (a kill before `submit` then still leaves
        its record, as `interrupted`). Never raises."""
        if self.journal is not None:
            self._journaled[cap.id] = [self.journal.begin(cap)]

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def saturated(self) -> bool:
        return self.depth >= 0.9 * self.queue_size or self.spill.pending > 0 or bool(self.spill.held)

    def problems(self) -> list[str]:
        """Why records are not flowing right now (empty when healthy), for readiness."""
        out = []
        if self.write_error is not None:
            out.append(f"traffic log writes failing: {self.write_error}")
        if self.spill.held:
            out.append(f"{len(self.spill.held)} records held in memory: spill writes failing: {self.spill.last_error}")
        if self.depth >= 0.9 * self.queue_size or self.spill.pending > 0:
            out.append(
                f"record queue saturated (depth {self.depth}/{self.queue_size}, spill pending {self.spill.pending})"
            )
        return out

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        share_the_lock()  # records are normalised in a thread beside the event loop
        self._recover()
        self._queue = asyncio.Queue(self.queue_size)
        self._task = asyncio.create_task(self._run(), name="cuewatch-pipeline")
        # Spill files left by an earlier run (or a crashed process) are drained first.
        if self.spill.claim():
            self.spill.pending = max(self.spill.pending, 1)

    def _recover(self) -> None:
        """Move the captures of journals and spill files left by earlier processes into this
        process's spill file, skipping those whose records reached the traffic log (a process
        killed while draining a spill file had written part of it)."""
        spilled = [p for p in journal.orphans(self.spill.directory, "spill") if p not in self.spill.mine]
        for path in journal.orphans(self.spill.directory, "journal") + spilled:
            logged = journal.logged_ids(self.log_dir, journal.started_at(path) - 1) if self.log_dir else set()
            n = 0
            try:
                for cap in journal.recover(path, logged):
                    self.spill.append(cap)
                    n += 1
            except OSError as exc:
                log.error("journal_unreadable", file=str(path), error=str(exc))
                continue
            self.recovered += n
            log.warning(f"{path.name.split('-')[0]}_recovered", file=str(path), records=n, already_logged=len(logged))
            with contextlib.suppress(OSError):
                path.unlink()

    async def stop(self) -> None:
        """Drain everything (queue, held and spill) and stop the worker; never raises. What
        cannot be written anywhere (log and spill both failing) is counted in `lost` and logged."""
        if self._queue is None or self._task is None:
            return
        await self._queue.put(None)
        try:
            await self._task
        except Exception:
            log.exception("pipeline_stop_failed")
        self._queue = None
        self._task = None
        if self.journal is not None:
            self.journal.close()  # segments still holding undone captures stay for the next start
        if self.spill.held:
            self.lost = len(self.spill.held)
            log.error(
                "records_lost",
                records=self.lost,
                reason="neither the traffic log nor the spill folder took them before shutdown",
                spill_error=self.spill.last_error,
                log_error=self.write_error,
            )

    # -- worker ------------------------------------------------------------------------

    async def _run(self) -> None:
        """The worker loop. An error in one step is logged and the loop goes on: it ends only
        when `stop` asks, after a last attempt at everything held and spilled."""
        assert self._queue is not None
        queue = self._queue
        stopping = False
        while True:
            try:
                if stopping and queue.empty():
                    await self._catch_up(final=True)
                    return
                if not stopping and queue.empty() and (self.spill.held or self.spill.pending):
                    if not await self._catch_up():
                        await asyncio.sleep(self.retry_pause_s)
                    continue
                item = await queue.get()
                batch: list[Capture] = []
                while True:
                    if item is None:
                        stopping = True
                    else:
                        batch.append(item)
                    if len(batch) >= self.max_batch or queue.empty():
                        break
                    item = queue.get_nowait()
                if batch:
                    await self._process(batch)
            except Exception:  # a bug must not end the worker: records would pile up unseen
                log.exception("pipeline_step_failed")
                if stopping:
                    return
                await asyncio.sleep(self.retry_pause_s)

    async def _catch_up(self, final: bool = False) -> bool:
        """Process what the spill folder could not take (in memory), then the spill files;
        True when all went through."""
        while self.spill.held:
            batch = [self.spill.held.popleft() for _ in range(min(self.max_batch, len(self.spill.held)))]
            if not await self._process(batch, from_held=True):
                return False
        return await self._drain_spill(final)

    async def _drain_spill(self, final: bool = False) -> bool:
        """Process spill files; True when all went through. When a batch fails, it and the rest
        of its file move to a new spill file, so a retry neither loses nor repeats records."""
        done = 0  # records gone through (or unreadable): no longer pending
        ok = True
        for path in self.spill.claim():
            try:
                items = SpillFile.read(path)
                batch: list[Capture] = []
                failed = False
                for item in items:
                    if isinstance(item, str):
                        self.failed += 1
                        done += 1
                        log.error("spill_line_unreadable", where=item)
                        continue
                    batch.append(item)
                    if len(batch) >= self.max_batch:
                        if not await self._process(batch, from_spill=True):
                            failed = True
                            break
                        done += len(batch)
                        batch = []
                if not failed and batch:
                    if await self._process(batch, from_spill=True):
                        done += len(batch)
                    else:
                        failed = True
                if failed:
                    for cap in batch:
                        self.spill.append(cap, new=False)
                    for item in items:  # the rest of the file, not tried yet
                        if not isinstance(item, str):
                            self.spill.append(item, new=False)
                    ok = False
            except OSError as exc:  # the file cannot be read now: leave it for the next try
                log.error("spill_read_failed", file=str(path), error=str(exc))
                ok = False
                break
            with contextlib.suppress(OSError):
                path.unlink()
            if failed and not final:
                break
        self.spill.pending = max(0, self.spill.pending - done)
        if not ok:
            self.spill.pending = max(self.spill.pending, 1)
        return ok

    def _done(self, cap: Capture) -> None:
        """`cap` is safe on disk (traffic log or spill): its journal entry is no longer needed."""
        if self.journal is not None and cap.id in self._journaled:
            self.journal.done(self._journaled.pop(cap.id))

    def _normalise(self, caps: list[Capture]) -> list[Exchange]:
        exchanges: list[Exchange] = []
        for cap in caps:
            try:
                ex = to_exchange(
                    cap,
                    redact_prompts=self.redact_prompts,
                    redact_secrets=self.redact_secrets,
                    max_bytes=self.record_max_bytes,
                )
                exchanges.append(ex)
            except Exception:  # to_exchange never raises; should a bug make it, the worker goes on
                self.failed += 1
                log.exception("normalise_failed", exchange_id=cap.id)
        return exchanges

    async def _process(self, caps: list[Capture], from_spill: bool = False, from_held: bool = False) -> bool:
        # In a thread: a batch of long streamed answers takes tens of milliseconds to parse,
        # which on the event loop would hold up every request and stream in flight.
        exchanges = await asyncio.to_thread(self._normalise, caps)
        for stage in self.stages:
            try:
                await stage(exchanges)
            except Exception as exc:
                if stage is self.essential:
                    self.write_failures += 1
                    if self.write_error is None:
                        log.error("traffic_log_write_failed", error=str(exc), records=len(caps), kept="spilled")
                    self.write_error = str(exc)
                    if not from_spill:
                        for cap in caps:
                            if self.spill.append(cap):
                                self._done(cap)
                        if not from_held:
                            self.spilled += len(caps)
                    return False
                log.exception("stage_failed", stage=_name(stage))
            else:
                if stage is self.essential:
                    for cap in caps:
                        self._done(cap)
                    if self.write_error is not None:
                        log.info("traffic_log_write_recovered", after_failures=self.write_failures)
                        self.write_error = None
        self.processed += len(exchanges)
        return True


def _name(stage: Any) -> str:
    return getattr(stage, "__name__", type(stage).__name__)


class TrafficLogStage:
    """Pipeline stage writing exchanges to the traffic log (in a thread: file I/O blocks)."""

    def __init__(self, log: TrafficLog) -> None:
        self.log = log
        self.written: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TrafficLogStage:
        """The traffic log as `settings` describe it (folder, rotation, gzip, fsync)."""
        return cls(
            TrafficLog(
                settings.log_dir,
                max_bytes=settings.segment_max_bytes,
                max_age_s=settings.segment_max_age_s,
                gzip=settings.gzip,
                fsync=settings.fsync,
                fsync_interval_s=settings.fsync_interval_s,
            )
        )

    async def __call__(self, batch: list[Exchange]) -> None:
        lines = [ex.model_dump_json(exclude_defaults=False).encode() for ex in batch]
        await asyncio.to_thread(self.log.write, lines)
        for ex in batch:
            self.written[ex.dialect] = self.written.get(ex.dialect, 0) + 1

    async def write_findings(self, findings: list[Finding]) -> None:
        """Append findings as `finding` records. A failed write (a full disk) is logged, not
        raised: the findings still reach the alerts."""
        lines = [f.model_dump_json().encode() for f in findings]
        try:
            await asyncio.to_thread(self.log.write, lines)
        except OSError as exc:
            log.error("findings_not_logged", findings=len(findings), error=str(exc))

    def close(self) -> None:
        self.log.close()


class AccessLogStage:
    """One structured log line per exchange, written off the request path."""

    def __init__(self) -> None:
        self.log = structlog.get_logger("cuewatch.access")

    async def __call__(self, batch: list[Exchange]) -> None:
        for ex in batch:
            self.log.info(
                "exchange",
                request_id=ex.id,
                dialect=ex.dialect,
                model=ex.model,
                stream=ex.stream,
                status=ex.status,
                outcome=ex.outcome,
                total_ms=ex.timings.total_ms,
                overhead_ms=ex.timings.overhead_ms,
                error=ex.error,
            )
