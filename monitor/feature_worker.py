"""Model features computed once per exchange by a group of feature workers, for every partition.

    proxies ──XADD──▶ <prefix>:exchanges ──XREADGROUP `features`──▶ feature workers (any number)
                               │                                        │ SET <prefix>:features:<id> EX ttl
                               └──XREADGROUP <partition>──▶ detector workers ◀──MGET──┘

Model-based features (embeddings, semantic classifiers) cost far more than the detectors: one
worker computes ~50 texts/s on a core. Feature workers (`cuewatch worker --worker-role features`)
share the stream through one consumer group, so they scale with cores or GPUs, and write each
exchange's row (the model features every partition concerned wants, plus the cheap ones) to a key
that expires after `feature_ttl_s`. Detector workers with `features_from: redis` still read their
partitions in stream order and take the rows from Redis (`RemoteFeatures`); a row not yet there
is waited for while a feature worker is alive and the entry is still to be read or in work, as
long as rows keep coming (at most `feature_wait_s` without one), then computed locally. So
nothing is lost and nothing waits for a feature worker that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Any

import structlog

from detectors import features, registry
from monitor.engine import FeaturePool
from monitor.policy import Policy
from monitor.records import Exchange
from monitor.reload import PolicyHolder
from monitor.settings import Settings
from monitor.streams import Keys, async_client, concerns, decode_entry, partition_of, partitions

log = structlog.get_logger("cuewatch.features")

GROUP = "features"  # the feature workers' consumer group (partition names are `all` and `exp:*`)
CLAIM_IDLE_S = 60.0  # entries a feature worker has held this long (or lease_ttl_s if longer) are taken over
_POLL_MIN_S = 0.01  # a detector worker polls for missing rows this often at first,
_POLL_MAX_S = 0.2  # backing off to this while none come


def model_wants(policy: Policy) -> dict[str, set[str]]:
    """Per partition, the features its detectors want, for the partitions that want at least one
    model-based feature (the others compute their cheap features themselves)."""
    wants: dict[str, set[str]] = {name: set() for name in partitions(policy)}
    for spec in policy.detectors:
        wants[partition_of(spec)] |= registry.create(spec.name, spec.params).wants
    return {name: w for name, w in wants.items() if any(features.needs_model(f) for f in w)}


def entry_key(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (`ms-seq`) as a number pair, for ordering."""
    ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")
    return int(ms), int(seq or 0)


class FeatureWorker:
    """Reads the stream in the `features` group and writes feature rows. Run with `run()`, stop with
    `stop()`. Entries left pending by a dead feature worker are claimed after `lease_ttl_s`."""

    def __init__(self, settings: Settings, holder: PolicyHolder | None = None) -> None:
        self.settings = settings
        self.holder = holder or PolicyHolder(settings.policy)
        self.id = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.keys = Keys(settings.redis_prefix)
        self.redis = async_client(settings)
        self.pool = FeaturePool(settings.feature_workers)
        self.idle_ms = int(max(settings.lease_ttl_s, CLAIM_IDLE_S) * 1000)
        self.ttl_ms = max(int(settings.feature_ttl_s * 1000), 1)
        self.connected = False
        self.computed = 0  # exchanges whose row this worker wrote
        self.skipped = 0  # entries no model feature is wanted for
        self.unreadable = 0
        self._wants: tuple[Policy, dict[str, set[str]]] | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    def wants(self) -> dict[str, set[str]]:
        policy = self.holder.policy
        if self._wants is None or self._wants[0] is not policy:
            self._wants = (policy, model_wants(policy))
        return self._wants[1]

    async def run(self) -> None:
        log.info(
            "feature_worker_started", worker=self.id, redis=self.settings.redis_display(), workers=self.pool.workers
        )
        next_claim = 0.0
        beat: asyncio.Task[None] | None = None
        try:
            if self.wants():
                await self.pool.warm()
            beat = asyncio.create_task(self._heartbeat(), name="cuewatch-feature-heartbeat")
            while not self._stopping.is_set():
                try:
                    if not self.connected:
                        await self._create_group()
                    if time.monotonic() >= next_claim:
                        await self._claim()
                        next_claim = time.monotonic() + self.idle_ms / 3000
                    worked = await self._step()
                    self.connected = True
                except Exception as exc:
                    self.connected = False
                    log.error("feature_worker_step_failed", error=f"{type(exc).__name__}: {exc}")
                    await self._sleep(1.0)
                    continue
                if not worked:
                    await self._sleep(0.05)
        finally:
            if beat is not None:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            with contextlib.suppress(Exception):
                await self.redis.zrem(self.keys.feature_workers, self.id)
            self.pool.shutdown(wait=False)
            await self.redis.aclose()
            log.info("feature_worker_stopped", worker=self.id, computed=self.computed)

    async def _heartbeat(self) -> None:
        """Announce this worker (detector workers wait for rows only while one is alive)."""
        while True:
            with contextlib.suppress(Exception):
                await self.redis.zadd(self.keys.feature_workers, {self.id: int(time.time() * 1000)})
            await asyncio.sleep(self.settings.lease_ttl_s / 3)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _create_group(self) -> None:
        from redis.exceptions import ResponseError

        # From new entries on: older ones are computed by the detector workers themselves (an
        # entry the group never reads is not waited for).
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.keys.stream, GROUP, id="$", mkstream=True)

    async def _claim(self) -> None:
        """Take over entries a dead feature worker read but never finished."""
        cursor: Any = "0-0"
        while True:
            cursor, entries, _deleted = await self.redis.xautoclaim(
                self.keys.stream,
                GROUP,
                self.id,
                min_idle_time=self.idle_ms,
                start_id=cursor,
                count=self.settings.feature_batch,
            )
            if entries:
                log.warning("feature_entries_claimed", worker=self.id, entries=len(entries))
                await self._process(entries)
            if cursor in (b"0-0", "0-0"):
                return

    async def _step(self) -> bool:
        reply: Any = await self.redis.xreadgroup(
            GROUP, self.id, {self.keys.stream: ">"}, count=self.settings.feature_batch
        )
        entries: list[Any] = reply[0][1] if reply else []
        if entries:
            await self._process(entries)
        return bool(entries)

    async def _process(self, entries: list[Any]) -> None:
        wants = self.wants()
        items: list[tuple[Any, Exchange]] = []
        needed: dict[str, list[int]] = {}  # feature -> the items whose partitions want it
        for entry_id, fields in entries:
            if not fields:
                continue
            try:
                ex = decode_entry(fields)
            except ValueError:
                self.unreadable += 1
                continue
            names = set().union(*(w for part, w in wants.items() if concerns(part, ex)))
            if not names:
                self.skipped += 1
                continue
            for name in names:
                needed.setdefault(name, []).append(len(items))
            items.append((entry_id, ex))
        # One computation per set of items that want the same features, each over as many items
        # as want them (the model is far faster on larger batches).
        calls: dict[tuple[int, ...], set[str]] = {}
        for name, wanting in needed.items():
            calls.setdefault(tuple(wanting), set()).add(name)
        rows: list[dict[str, Any]] = [{} for _ in items]
        for idx, names in calls.items():
            for i, row in zip(idx, await self.pool.compute([items[i][1] for i in idx], names), strict=True):
                rows[i].update(row)
        pipe = self.redis.pipeline(transaction=False)
        for (entry_id, _), row in zip(items, rows, strict=True):
            pipe.set(self.keys.features(entry_id), features.dumps(row), px=self.ttl_ms)
        pipe.xack(self.keys.stream, GROUP, *[entry_id for entry_id, _ in entries])
        await pipe.execute()
        self.computed += len(items)


class RemoteFeatures:
    """A detector worker's view of the rows the feature workers write (`features_from: redis`)."""

    def __init__(self, settings: Settings, redis: Any) -> None:
        self.keys = Keys(settings.redis_prefix)
        self.redis = redis
        self.wait_s = settings.feature_wait_s
        self.alive_ms = max(int(settings.lease_ttl_s * 1000), 100)
        self.taken = 0  # rows found in Redis
        self.missed = 0  # rows not there in time (computed locally)

    async def rows(self, entry_ids: list[Any]) -> list[dict[str, Any] | None]:
        """The rows of these entries, in order; None where a row did not come: no live feature
        worker will write it, or none came for `feature_wait_s`."""
        rows: list[dict[str, Any] | None] = [None] * len(entry_ids)
        missing = await self._fill(rows, entry_ids, list(range(len(entry_ids))))
        progress = time.monotonic()
        delay = _POLL_MIN_S
        while missing and time.monotonic() - progress < self.wait_s:
            coming = await self._coming([entry_ids[i] for i in missing])
            if coming:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _POLL_MAX_S)
            # Read after the check: a feature worker writes a row before it acknowledges the
            # entry, so a row finished just before the check is found here, not computed again.
            still = await self._fill(rows, entry_ids, missing)
            if len(still) < len(missing):  # rows are coming: wait on
                progress, delay = time.monotonic(), _POLL_MIN_S
            missing = still
            if not coming:
                break
        self.taken += len(entry_ids) - len(missing)
        self.missed += len(missing)
        if missing:
            log.info(
                "feature_rows_computed_here", rows=len(missing), of=len(entry_ids), first=str(entry_ids[missing[0]])
            )
        return rows

    async def _fill(self, rows: list[dict[str, Any] | None], entry_ids: list[Any], missing: list[int]) -> list[int]:
        """Read the rows of the `missing` entries into `rows`; the indices still missing."""
        found = await self.redis.mget([self.keys.features(entry_ids[i]) for i in missing])
        for i, raw in zip(missing, found, strict=True):
            if raw is not None:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    rows[i] = features.loads(raw)
        return [i for i in missing if rows[i] is None]

    async def _coming(self, entry_ids: list[Any]) -> bool:
        """Whether a live feature worker will still write a row for any of these entries: one is
        not yet read by the group, or is read and not yet finished."""
        now_ms = int(time.time() * 1000)
        if not await self.redis.zcount(self.keys.feature_workers, now_ms - self.alive_ms, "+inf"):
            return False
        from redis.exceptions import ResponseError

        try:
            groups = await self.redis.xinfo_groups(self.keys.stream)
        except ResponseError:
            return False
        group = next((g for g in groups if g["name"] in (GROUP, GROUP.encode())), None)
        if group is None:
            return False
        delivered = entry_key(group["last-delivered-id"])
        if any(entry_key(e) > delivered for e in entry_ids):
            return True
        ids = sorted(entry_ids, key=entry_key)
        pending = await self.redis.xpending_range(
            self.keys.stream, GROUP, min=ids[0], max=ids[-1], count=len(ids) + 1000
        )
        wanted = {entry_key(e) for e in entry_ids}
        return any(entry_key(p["message_id"]) in wanted for p in pending)
