"""The outbox in Redis, shared by every proxy replica and worker (`transport: redis`).

Same contract as the SQLite `Outbox`. What sharing adds:
- `due` *claims* the rows it returns (their next attempt moves `claim_s` ahead in one Lua call),
  so one worker at a time sends a notification; if it dies, the claim runs out and another sends.
- `claim` is SET NX EX: the first of several managers to reach a notification enqueues it.
- silences, grouping state and active alerts are the same for everyone.

Keys (under the prefix): `outbox:seq`, `outbox:n:<id>` (hash), `outbox:keys` (idempotency key ->
id), `outbox:due` (pending ids by next attempt), `outbox:all` (ids by creation), `silences`,
`groups`, `alerts` (hashes), `claim:<key>`. Run Redis with persistence (AOF) so they survive it.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from monitor.alerts.outbox import Row, Silence, new_silence
from monitor.plugins import STORES

SENT_RETENTION_S = 7 * 86400  # sent notifications are kept this long for `cuewatch alert outbox`

# KEYS: seq, keys, due, all; ARGV: key, receiver, payload, now, prefix. Insert unless the key exists.
_ENQUEUE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', ARGV[5] .. id, 'id', id, 'key', ARGV[1], 'receiver', ARGV[2], 'payload', ARGV[3],
  'status', 'pending', 'attempts', 0, 'next_attempt', ARGV[4], 'created', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('ZADD', KEYS[3], ARGV[4], id)
redis.call('ZADD', KEYS[4], id, id)
return id
"""

# KEYS: due; ARGV: now, limit, claimed_until. Take due ids and push them past the claim window.
_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""


# KEYS: claim key; ARGV: now, expires, ttl_ms. Taken unless a claim that runs past `now` holds it.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(held) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., description="Redis URL (may hold a password)")
    prefix: str = Field("cuewatch", min_length=1)
    claim_s: float = Field(30.0, gt=0, description="how long a claimed notification stays claimed")
    timeout_s: float = Field(5.0, gt=0)

    def __repr__(self) -> str:  # never shows the URL (it may hold a password)
        return f"RedisParams(prefix={self.prefix!r})"


@STORES.register("redis")
class RedisOutbox:
    """Shared outbox; thread-safe (a redis-py client with a connection pool)."""

    Params: ClassVar[type[RedisParams]] = RedisParams
    test_params: ClassVar[dict[str, Any]] = {"url": "redis://127.0.0.1:6379/0"}

    def __repr__(self) -> str:  # never shows the URL (it may hold a password)
        return f"RedisOutbox(prefix={self.prefix!r})"

    def __init__(self, url: str, prefix: str = "cuewatch", *, claim_s: float = 30.0, timeout_s: float = 5.0) -> None:
        from redis import Redis

        self.prefix = prefix
        self.claim_s = claim_s
        self._r: Any = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        k = f"{prefix}:outbox"
        self._seq, self._keys, self._due, self._all, self._n = (
            f"{k}:seq",
            f"{k}:keys",
            f"{k}:due",
            f"{k}:all",
            f"{k}:n:",
        )
        self._silences, self._groups, self._alerts = f"{prefix}:silences", f"{prefix}:groups", f"{prefix}:alerts"
        self._enqueue = self._r.register_script(_ENQUEUE)
        self._claim_due = self._r.register_script(_CLAIM_DUE)
        self._claim = self._r.register_script(_CLAIM)

    def close(self) -> None:
        self._r.close()

    # -- notifications ------------------------------------------------------------------

    def enqueue(self, receiver: str, payload: dict[str, Any], key: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        new = self._enqueue(
            keys=[self._seq, self._keys, self._due, self._all],
            args=[key, receiver, json.dumps(payload), repr(now), self._n],
        )
        return bool(new)

    def _rows(self, ids: list[Any]) -> list[Row]:
        pipe = self._r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(f"{self._n}{i}")
        out = []
        for h in pipe.execute():
            if not h:
                continue  # expired (sent long ago)
            out.append(
                Row(
                    int(h["id"]),
                    h["key"],
                    h["receiver"],
                    json.loads(h["payload"]),
                    h["status"],
                    int(h["attempts"]),
                    float(h["next_attempt"]),
                    h.get("last_error"),
                    float(h["created"]),
                )
            )
        return sorted(out, key=lambda r: r.id)

    def due(self, now: float, limit: int = 100) -> list[Row]:
        """Pending notifications due now, claimed for `claim_s` seconds by this caller."""
        ids = self._claim_due(keys=[self._due], args=[repr(now), limit, repr(now + self.claim_s)])
        return [r for r in self._rows(list(ids)) if r.status == "pending"]

    def _finish(self, row_id: int, status: str, error: str | None, now: float | None) -> None:
        name = f"{self._n}{row_id}"
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(name, "attempts", 1)
        pipe.hset(name, mapping={"status": status, "finished": repr(time.time() if now is None else now)})
        if error is None:
            pipe.hdel(name, "last_error")
        else:
            pipe.hset(name, "last_error", error)
        pipe.zrem(self._due, row_id)
        if status == "sent":
            pipe.expire(name, SENT_RETENTION_S)
        pipe.execute()

    def mark_sent(self, row_id: int, now: float | None = None) -> None:
        self._finish(row_id, "sent", None, now)

    def dead_letter(self, row_id: int, reason: str, now: float | None = None) -> None:
        self._finish(row_id, "dead", reason, now)

    def retry(self, row_id: int, next_attempt: float, error: str) -> None:
        name = f"{self._n}{row_id}"
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(name, "attempts", 1)
        pipe.hset(name, mapping={"next_attempt": repr(next_attempt), "last_error": error})
        pipe.zadd(self._due, {str(row_id): next_attempt})
        pipe.execute()

    def defer(self, row_ids: list[int], until: float) -> None:
        """Not before `until`; also hands back the claim `due` took on rows not attempted."""
        if row_ids:
            self._r.zadd(self._due, {str(i): until for i in row_ids}, xx=True)

    def rows(self, status: str | None = None) -> list[Row]:
        rows = self._rows(self._r.zrange(self._all, 0, -1))
        return rows if status is None else [r for r in rows if r.status == status]

    def depth(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self._rows(self._r.zrange(self._due, 0, -1)):
            out[r.receiver] = out.get(r.receiver, 0) + 1
        return out

    # -- silences ---------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: dict[str, str],
        duration_s: float,
        comment: str = "",
        created_by: str = "",
        now: float | None = None,
    ) -> Silence:
        s = new_silence(matchers, duration_s, comment, created_by, now)
        self._r.hset(self._silences, s.id, json.dumps(s.__dict__))
        return s

    def silences(self, include_expired: bool = False, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        out = sorted((Silence(**json.loads(v)) for v in self._r.hvals(self._silences)), key=lambda s: s.starts)
        return out if include_expired else [s for s in out if s.ends > now]

    def expire_silence(self, silence_id: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        raw = self._r.hget(self._silences, silence_id)
        if raw is None:
            return False
        s = Silence(**json.loads(raw))
        if s.ends <= now:
            return False
        self._r.hset(self._silences, s.id, json.dumps({**s.__dict__, "ends": now}))
        return True

    # -- grouping state, active alerts, claims ------------------------------------------------

    def load_groups(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._r.hgetall(self._groups).items()}

    def save_group(self, key: str, state: dict[str, Any]) -> None:
        self._r.hset(self._groups, key, json.dumps(state))

    def load_alerts(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._r.hgetall(self._alerts).items()}

    def save_alerts(self, alerts: dict[str, dict[str, Any]]) -> None:
        if alerts:
            self._r.hset(self._alerts, mapping={fp: json.dumps(a) for fp, a in alerts.items()})

    def drop_alerts(self, fingerprints: list[str]) -> None:
        if fingerprints:
            self._r.hdel(self._alerts, *fingerprints)

    def claim(self, key: str, ttl_s: float, now: float | None = None) -> bool:
        """True for the first caller of `key` within `ttl_s` seconds of `now` (the manager's clock,
        as in the SQLite store; Redis also expires the key after `ttl_s` of its own time)."""
        now = time.time() if now is None else now
        ttl_ms = max(int(ttl_s * 1000), 1)
        return bool(self._claim(keys=[f"{self.prefix}:claim:{key}"], args=[repr(now), repr(now + ttl_s), ttl_ms]))
