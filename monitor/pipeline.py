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
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from monitor.capture import Capture, to_exchange
from monitor.records import Exchange
from monitor.store import TrafficLog

if TYPE_CHECKING:
    from monitor.settings import Settings

log = structlog.get_logger("cuewatch.pipeline")

Stage = Callable[[list[Exchange]], Awaitable[None]]


class SpillFile:
    """Append-only overflow file of captures, owned by this process (name carries the pid)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._fh: IO[bytes] | None = None
        self._seq = 0
        self.pending = 0  # captures on disk not yet processed (this process's spills)

    def append(self, cap: Capture, *, new: bool = True) -> None:
        """Write a capture; `new=False` when it is moved from an older spill file (already counted)."""
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            path = self.directory / f"spill-{os.getpid()}-{int(time.time())}-{self._seq}.jsonl"
            self._fh = open(path, "ab")  # noqa: SIM115 - kept open while spilling
        self._fh.write(cap.model_dump_json().encode() + b"\n")
        self._fh.flush()
        self.pending += int(new)

    def claim(self) -> list[Path]:
        """Close the current file and return every spill file this process may drain: its own,
        and those left by processes that are no longer running."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("spill-*.jsonl") if _owner_gone_or_me(p))

    @staticmethod
    def read(path: Path) -> Iterator[Capture | str]:
        """Captures in a spill file; an unreadable line yields its error message instead."""
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield Capture.model_validate_json(line)
                except ValidationError as exc:
                    yield f"{path}:{n}: {exc.errors()[0].get('msg')}"


def _owner_gone_or_me(path: Path) -> bool:
    try:
        pid = int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Pipeline:
    """Bounded queue + spill + worker feeding record stages.

    Parameters
    ----------
    stages: async callables taking a batch of exchanges, in order. The first one marked as
        `essential` (the traffic log) gets spill-and-retry on failure; others are isolated.
    queue_size: captures held in memory before spilling to disk.
    spill_dir: where spill files go.
    redact_prompts: store digests instead of prompt text.
    max_batch: most captures handled per worker step.
    retry_pause_s: pause after an essential stage failed, before retrying spilled records.
    """

    def __init__(
        self,
        *,
        stages: list[Stage],
        essential: Stage | None = None,
        queue_size: int = 10_000,
        spill_dir: Path,
        redact_prompts: bool = False,
        max_batch: int = 256,
        retry_pause_s: float = 1.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.stages = stages
        self.essential = essential
        self.queue_size = queue_size
        self.redact_prompts = redact_prompts
        self.max_batch = max_batch
        self.retry_pause_s = retry_pause_s
        self.spill = SpillFile(spill_dir)
        self._queue: asyncio.Queue[Capture | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.spilled = 0
        self.failed = 0

    # -- request path ------------------------------------------------------------------

    def submit(self, cap: Capture) -> None:
        """Hand a capture over; never blocks, never drops."""
        if self._queue is not None:
            try:
                self._queue.put_nowait(cap)
                return
            except asyncio.QueueFull:
                pass
        self.spill.append(cap)
        self.spilled += 1

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def saturated(self) -> bool:
        return self.depth >= 0.9 * self.queue_size or self.spill.pending > 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.queue_size)
        self._task = asyncio.create_task(self._run(), name="cuewatch-pipeline")
        # Spill files left by an earlier run (or a crashed process) are drained first.
        if self.spill.claim():
            self.spill.pending = max(self.spill.pending, 1)

    async def stop(self) -> None:
        """Drain everything (queue and spill) and stop the worker."""
        if self._queue is None or self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._queue = None
        self._task = None

    # -- worker ------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        stopping = False
        while True:
            if not stopping and queue.empty() and self.spill.pending:
                if not await self._drain_spill():
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
            if stopping and queue.empty():
                await self._drain_spill(final=True)
                return

    async def _drain_spill(self, final: bool = False) -> bool:
        """Process spill files; True when all went through. When a batch fails, it and the rest
        of its file move to a new spill file, so a retry neither loses nor repeats records."""
        done = 0  # records gone through (or unreadable): no longer pending
        ok = True
        for path in self.spill.claim():
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
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if failed and not final:
                break
        self.spill.pending = max(0, self.spill.pending - done)
        if not ok:
            self.spill.pending = max(self.spill.pending, 1)
        return ok

    async def _process(self, caps: list[Capture], from_spill: bool = False) -> bool:
        exchanges: list[Exchange] = []
        for cap in caps:
            try:
                exchanges.append(to_exchange(cap, redact_prompts=self.redact_prompts))
            except Exception:  # a parser bug must not stop the pipeline
                self.failed += 1
                log.exception("normalise_failed", exchange_id=cap.id)
        for stage in self.stages:
            try:
                await stage(exchanges)
            except Exception as exc:
                if stage is self.essential:
                    log.error("traffic_log_write_failed", error=str(exc), records=len(caps))
                    if not from_spill:
                        for cap in caps:
                            self.spill.append(cap)
                        self.spilled += len(caps)
                    return False
                log.exception("stage_failed", stage=_name(stage))
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
