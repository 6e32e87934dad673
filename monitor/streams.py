"""The Redis transport: exchange stream, partitions, leases and fenced commits.

    proxy replicas ──XADD (MAXLEN ~)──▶ <prefix>:exchanges ──▶ one consumer group per partition
                                                                  │ leased by one worker at a time
                                                                  ▼
                              worker: features + detectors ──▶ commit = snapshot + XACK (fenced)

A *partition* is a slice of the detectors that needs one ordered view of the traffic: `all`
(the traffic log and the detectors without an `experiment`) and `exp:<name>` for each experiment a
detector names. Every partition reads the whole stream through its own consumer group, in stream
order, and keeps the exchanges that concern it, so each detector sees exactly the sequence a
single process would. A partition is processed by the worker holding its lease; a commit writes
the detector snapshot and acknowledges the entries it covers in one Lua script that first checks
the lease, so a worker that lost its lease can never overwrite a newer snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from monitor.records import Exchange

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis

    from monitor.policy import DetectorSpec, Policy
    from monitor.settings import Settings

log = structlog.get_logger("cuewatch.streams")

ALL = "all"
FIELD = "x"  # the exchange as JSON
EXPERIMENT = "e"  # its experiment ("" for none), so partitions skip others' entries without parsing them


class Keys:
    """Every Redis key cuewatch uses, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stream = f"{prefix}:exchanges"
        self.workers = f"{prefix}:workers"

    def lease(self, partition: str) -> str:
        return f"{self.prefix}:lease:{partition}"

    def state(self, partition: str) -> str:
        return f"{self.prefix}:state:{partition}"

    @property
    def feature_workers(self) -> str:
        return f"{self.prefix}:feature-workers"

    def features(self, entry_id: bytes | str) -> str:
        """One exchange's feature row, written by a feature worker (`monitor.feature_worker`)."""
        return f"{self.prefix}:features:{entry_id.decode() if isinstance(entry_id, bytes) else entry_id}"


def partition_of(spec: DetectorSpec) -> str:
    experiment = spec.params.get("experiment")
    return f"exp:{experiment}" if experiment else ALL


def partitions(policy: Policy) -> list[str]:
    """The partitions a policy needs, `all` first."""
    return [ALL, *sorted({partition_of(s) for s in policy.detectors} - {ALL})]


def concerns(partition: str, ex: Exchange) -> bool:
    return partition == ALL or ex.experiment == partition.removeprefix("exp:")


def async_client(settings: Settings) -> AsyncRedis:
    """An asyncio Redis client that fails fast (the caller decides when to retry)."""
    from redis.asyncio import Redis

    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry_on_timeout=False,
        retry=None,
        health_check_interval=10,
    )


# -- Lua: leases and the fenced commit ------------------------------------------------------

# KEYS[1] lease; ARGV[1] me, ARGV[2] ttl ms. Take a free lease or extend our own.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] lease; ARGV[1] me. Give a lease back only if it is ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] lease, KEYS[2] state, KEYS[3] stream; ARGV[1] me, ARGV[2] ttl ms, ARGV[3] group,
# ARGV[4] state JSON, ARGV[5..] entry ids. Snapshot and acknowledge together, only under our lease.
COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[4])
local n = #ARGV
local i = 5
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('XACK', KEYS[3], ARGV[3], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisPublishStage:
    """Pipeline stage of a proxy replica: XADD each exchange to the shared stream.

    It is the pipeline's essential stage, so when Redis is unreachable the batch is spilled to
    local disk and forwarded once Redis answers again. A batch is one MULTI/EXEC: all of it is
    added or none.
    """

    def __init__(self, settings: Settings) -> None:
        self.keys = Keys(settings.redis_prefix)
        self.maxlen = settings.redis_maxlen
        self._settings = settings
        self._client: AsyncRedis | None = None
        self.published = 0
        self.errors = 0

    def _redis(self) -> AsyncRedis:
        if self._client is None:
            self._client = async_client(self._settings)
        return self._client

    async def __call__(self, batch: list[Exchange]) -> None:
        if not batch:
            return
        pipe = self._redis().pipeline(transaction=True)
        for ex in batch:
            entry: dict[Any, Any] = {EXPERIMENT: ex.experiment or "", FIELD: ex.model_dump_json()}
            pipe.xadd(self.keys.stream, entry, maxlen=self.maxlen, approximate=True)
        try:
            await pipe.execute()
        except Exception as exc:
            self.errors += 1
            raise ConnectionError(f"redis publish failed: {type(exc).__name__}: {exc}") from None
        self.published += len(batch)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis().ping())
        except Exception:
            return False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def skips(partition: str, fields: dict[Any, Any]) -> bool:
    """True when the entry's experiment field shows it is not this partition's (no parsing)."""
    if partition == ALL:
        return False
    tag = fields.get(EXPERIMENT.encode())
    return tag is not None and tag.decode() != partition.removeprefix("exp:")


def decode_entry(fields: dict[Any, Any]) -> Exchange:
    raw = fields.get(FIELD.encode(), fields.get(FIELD))
    if raw is None:
        raise ValueError(f"stream entry without field {FIELD!r}")
    return Exchange.model_validate_json(raw)
