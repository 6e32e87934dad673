"""`cuewatch worker`: run the detectors and alerts for every proxy replica, from Redis.

Each worker registers a heartbeat, takes its fair share of the partitions' leases (see
`monitor.streams`), and for each partition it holds:

1. on taking it: restores the partition's detector snapshot from Redis, then reclaims the
   entries still pending in the partition's consumer group (`XAUTOCLAIM`: delivered to a dead or
   restarted worker, never committed) and processes them first, in stream order;
2. reads new entries (`XREADGROUP >`), keeps those of its experiment, writes exchanges to the
   traffic log (partition `all`), computes features, runs the detectors; findings go to the
   traffic log and, as alerts, to the shared outbox;
3. every `snapshot_interval_s` and before giving a partition up: commits, i.e.
   saves the snapshot and acknowledges the entries it covers, atomically and only while holding
   the lease.

So an entry is acknowledged only once the detectors and the outbox have taken it, and a worker
that dies leaves a snapshot plus exactly the entries that came after it. One worker at a time
also holds the `alerts` lease and groups and sends notifications from the shared outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
import time
from typing import Any

import structlog

from monitor.alerts import AlertManager
from monitor.alerts.redis_outbox import RedisOutbox
from monitor.engine import Engine, FeaturePool
from monitor.feature_worker import RemoteFeatures
from monitor.pipeline import TrafficLogStage
from monitor.records import Exchange
from monitor.reload import PolicyHolder
from monitor.settings import Settings
from monitor.streams import (
    ALL,
    COMMIT,
    LEASE,
    RELEASE,
    Keys,
    async_client,
    concerns,
    decode_entry,
    partition_of,
    partitions,
    skips,
)

log = structlog.get_logger("cuewatch.worker")

ALERTS = "alerts"  # the lease of the one worker that groups and sends notifications


class _Partition:
    def __init__(self, name: str, stage: Engine) -> None:
        self.name = name
        self.stage = stage
        self.uncommitted: list[bytes] = []  # entry ids processed since the last commit
        self.last_commit = time.monotonic()


class Worker:
    """Consumes the exchange stream for the partitions it holds. Run with `run()`, stop with `stop()`."""

    def __init__(self, settings: Settings, holder: PolicyHolder | None = None) -> None:
        self.settings = settings
        self.holder = holder or PolicyHolder(settings.policy)
        self.id = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.keys = Keys(settings.redis_prefix)
        self.ttl_ms = max(int(settings.lease_ttl_s * 1000), 100)
        self.redis = async_client(settings)
        self.outbox: RedisOutbox = settings.alert_store(shared=True)
        self.alerts = AlertManager.from_settings(self.holder, self.outbox, settings)
        self.traffic = TrafficLogStage.from_settings(settings)
        self.features = FeaturePool(settings.feature_workers)  # shared by the partitions
        # model features from the feature workers (`features_from: redis`), else computed here
        self.remote = RemoteFeatures(settings, self.redis) if settings.features_from == "redis" else None
        self.parts: dict[str, _Partition] = {}
        self._lost: set[str] = set()
        self._alert_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.connected = False
        self.processed: dict[str, int] = {}
        self.trimmed = 0
        self.unreadable = 0
        # entries of partition `all` written to the traffic log but not yet committed: when a
        # failure makes them come back (XAUTOCLAIM after a Redis outage), they are not logged twice
        self._logged: set[Any] = set()
        self.commits = 0
        self.lag: dict[str, int] = {}
        self._lease = self.redis.register_script(LEASE)
        self._release = self.redis.register_script(RELEASE)
        self._commit = self.redis.register_script(COMMIT)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        self._stopping.set()

    @property
    def leader(self) -> bool:
        """True while this worker groups and sends alerts."""
        return self._alert_task is not None and not self._alert_task.done()

    async def run(self) -> None:
        log.info("worker_started", worker=self.id, redis=self.settings.redis_display(), stream=self.keys.stream)
        beat = asyncio.create_task(self._heartbeat(), name="cuewatch-worker-heartbeat")
        every = min(1.0, self.settings.lease_ttl_s / 3)
        next_rebalance = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    if time.monotonic() >= next_rebalance or not self.connected:
                        await self._rebalance()
                        next_rebalance = time.monotonic() + every
                    worked = await self._step()
                    self.connected = True
                except Exception as exc:  # Redis away, disk full, a bug: start over from the snapshots
                    self.connected = False
                    log.error("worker_step_failed", error=f"{type(exc).__name__}: {exc}", partitions=sorted(self.parts))
                    self._forget_all()
                    await self._sleep(1.0)
                    continue
                if not worked:
                    await self._sleep(0.05)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await self._shutdown()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _shutdown(self) -> None:
        for name in list(self.parts):
            with contextlib.suppress(Exception):
                await self._give_up(name)
        if self._alert_task is not None:
            self._alert_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._alert_task
            with contextlib.suppress(Exception):
                await self.alerts.drain()  # unsent group changes reach the outbox now
                await self._release(keys=[self.keys.lease(ALERTS)], args=[self.id])
        with contextlib.suppress(Exception):
            await self.redis.zrem(self.keys.workers, self.id)
        await self.alerts.close()
        self.traffic.close()
        self.features.shutdown(wait=False)
        self.outbox.close()
        await self.redis.aclose()
        log.info("worker_stopped", worker=self.id, processed=sum(self.processed.values()))

    # ------------------------------------------------------------------ leases

    async def _heartbeat(self) -> None:
        """Announce this worker and renew its leases, whatever the main loop is doing."""
        every = self.settings.lease_ttl_s / 3
        while True:
            try:
                now_ms = int(time.time() * 1000)
                await self.redis.zadd(self.keys.workers, {self.id: now_ms})
                await self.redis.zremrangebyscore(self.keys.workers, "-inf", now_ms - 10 * self.ttl_ms)
                for name in list(self.parts):
                    if not await self._lease(keys=[self.keys.lease(name)], args=[self.id, self.ttl_ms]):
                        self._lost.add(name)
                await self._lead()
                await self._measure_lag()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker_heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(every)

    async def _lead(self) -> None:
        """Hold (or try to take) the alerts lease; run the alert loop only while holding it."""
        leader = bool(await self._lease(keys=[self.keys.lease(ALERTS)], args=[self.id, self.ttl_ms]))
        if leader and not self.leader:
            await asyncio.to_thread(self.alerts.resume)
            self._alert_task = asyncio.create_task(self.alerts.run(), name="cuewatch-alerts")
            log.info("alert_leader", worker=self.id)
        elif not leader and self.leader:
            assert self._alert_task is not None
            self._alert_task.cancel()
            self._alert_task = None
            log.warning("alert_leadership_lost", worker=self.id)

    async def _live_workers(self) -> int:
        now_ms = int(time.time() * 1000)
        return int(await self.redis.zcount(self.keys.workers, now_ms - self.ttl_ms, "+inf")) or 1

    async def _rebalance(self) -> None:
        """Take free partitions up to a fair share; give back what is over it or no longer wanted."""
        await self.redis.zadd(self.keys.workers, {self.id: int(time.time() * 1000)})
        for name in self._lost & set(self.parts):
            log.warning("partition_lease_lost", worker=self.id, partition=name)
            self.parts.pop(name)
        self._lost.clear()
        wanted = partitions(self.holder.policy)
        target = math.ceil(len(wanted) / await self._live_workers())
        for name in [n for n in self.parts if n not in wanted]:
            await self._give_up(name)
        while len(self.parts) > target:
            await self._give_up(list(self.parts)[-1])
        for name in wanted:
            if len(self.parts) >= target:
                break
            if name not in self.parts and await self._lease(keys=[self.keys.lease(name)], args=[self.id, self.ttl_ms]):
                await self._open(name)

    async def _give_up(self, name: str) -> None:
        await self._commit_one(self.parts[name])
        self.parts.pop(name, None)
        await self._release(keys=[self.keys.lease(name)], args=[self.id])
        log.info("partition_released", worker=self.id, partition=name)

    def _forget_all(self) -> None:
        """Drop in-memory detector state (it may be ahead of the last commit); leases are kept
        and the partitions reopen from their snapshots and pending entries."""
        self.parts.clear()

    # ------------------------------------------------------------------ partitions

    async def _open(self, name: str) -> None:
        from redis.exceptions import ResponseError

        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.keys.stream, name, id="0", mkstream=True)
        raw = await self.redis.get(self.keys.state(name))
        stage = Engine(
            self.holder,
            sink=self.traffic,
            select=lambda spec: partition_of(spec) == name,
            saved=json.loads(raw) if raw else {},
            pool=self.features,
        )
        stage.subscribe(self.alerts.on_findings)
        stage.sync()
        part = self.parts[name] = _Partition(name, stage)  # from now on the heartbeat renews its lease
        recovered = 0
        cursor: Any = "0-0"
        while True:  # entries delivered before but never committed, in stream order
            cursor, entries, deleted = await self.redis.xautoclaim(
                self.keys.stream, name, self.id, min_idle_time=0, start_id=cursor, count=self.settings.worker_batch
            )
            if deleted:
                self.trimmed += len(deleted)
                part.uncommitted.extend(deleted)
                log.error("entries_trimmed_before_processing", partition=name, entries=len(deleted))
            recovered += len(entries)
            await self._process(part, entries)
            if cursor in (b"0-0", "0-0"):
                break
        await self._commit_one(part)
        log.info(
            "partition_acquired",
            worker=self.id,
            partition=name,
            restored=raw is not None,
            recovered=recovered,
            detectors=sorted(stage.detectors),
        )

    async def _step(self) -> bool:
        worked = False
        for part in list(self.parts.values()):
            if part.name in self._lost:
                continue
            reply: Any = await self.redis.xreadgroup(
                part.name, self.id, {self.keys.stream: ">"}, count=self.settings.worker_batch
            )
            entries: list[Any] = reply[0][1] if reply else []  # RESP2: [[stream, [(id, fields), ...]]]
            if entries:
                worked = True
                await self._process(part, entries)
            if time.monotonic() - part.last_commit >= self.settings.snapshot_interval_s:
                await self._commit_one(part)
        return worked

    async def _process(self, part: _Partition, entries: list[Any]) -> None:
        batch: list[Exchange] = []
        ids: list[Any] = []  # the batch's entry ids
        fresh: dict[Any, Exchange] = {}  # entry id -> exchange not yet in the traffic log
        for entry_id, fields in entries:
            part.uncommitted.append(entry_id)
            if not fields:
                self.trimmed += 1
                continue
            if skips(part.name, fields):
                continue
            try:
                ex = decode_entry(fields)
            except ValueError as exc:
                self.unreadable += 1
                log.error("stream_entry_unreadable", entry=entry_id, error=str(exc)[:200])
                continue
            if concerns(part.name, ex):
                batch.append(ex)
                ids.append(entry_id)
                if part.name == ALL and entry_id not in self._logged:
                    fresh[entry_id] = ex
        if not batch:
            return
        if fresh:
            await self.traffic(list(fresh.values()))
            self._logged.update(fresh)
        if self.remote is not None and part.stage.wants_model:
            await part.stage.run(batch, await self.remote.rows(ids))
        else:
            await part.stage.run(batch)
        self.processed[part.name] = self.processed.get(part.name, 0) + len(batch)

    async def _commit_one(self, part: _Partition) -> None:
        ids = part.uncommitted
        state = json.dumps(part.stage.state())
        ok = await self._commit(
            keys=[self.keys.lease(part.name), self.keys.state(part.name), self.keys.stream],
            args=[self.id, self.ttl_ms, part.name, state, *ids],
        )
        part.last_commit = time.monotonic()
        if not ok:
            self._lost.add(part.name)  # another worker holds it now; drop ours at the next rebalance
            log.warning("commit_refused_lease_lost", worker=self.id, partition=part.name, entries=len(ids))
            return
        if part.name == ALL:
            self._logged.difference_update(ids)
        part.uncommitted = []
        self.commits += 1

    async def _measure_lag(self) -> None:
        """Entries not yet read by each partition's group (Redis 7 reports `lag`)."""
        with contextlib.suppress(Exception):
            groups = await self.redis.xinfo_groups(self.keys.stream)
            self.lag = {
                (g["name"].decode() if isinstance(g["name"], bytes) else g["name"]): int(g.get("lag") or 0)
                + int(g.get("pending") or 0)
                for g in groups
            }
