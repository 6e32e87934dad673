"""The durable outbox: every notification is written to SQLite (WAL) before any attempt to send
it, so none is lost across restarts or sink outages. Silences and grouping state live in the
same database.

Delivery is at least once: a notification is marked sent only after its sink accepted it, and
each carries a stable idempotency key so receivers can drop repeats.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from monitor.plugins import STORES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT UNIQUE NOT NULL,
    receiver TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_attempt);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts REAL NOT NULL,
    ends REAL NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS groups (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Row:
    id: int
    idempotency_key: str
    receiver: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None
    created: float


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: dict[str, str]
    starts: float
    ends: float
    comment: str
    created_by: str

    def active(self, now: float) -> bool:
        return self.starts <= now < self.ends

    def mutes(self, labels: dict[str, str], now: float) -> bool:
        return self.active(now) and all(labels.get(k) == v for k, v in self.matchers.items())


class AlertStore(Protocol):
    """What the alert manager needs from its store: `Outbox` (SQLite, one process) or
    `RedisOutbox` (shared by every replica and worker). Methods block; call them in a thread."""

    def enqueue(self, receiver: str, payload: dict[str, Any], key: str, now: float | None = None) -> bool: ...
    def due(self, now: float, limit: int = 100) -> list[Row]: ...
    def mark_sent(self, row_id: int, now: float | None = None) -> None: ...
    def retry(self, row_id: int, next_attempt: float, error: str) -> None: ...
    def defer(self, row_ids: list[int], until: float) -> None: ...
    def dead_letter(self, row_id: int, reason: str, now: float | None = None) -> None: ...
    def rows(self, status: str | None = None) -> list[Row]: ...
    def depth(self) -> dict[str, int]: ...
    def add_silence(
        self,
        matchers: dict[str, str],
        duration_s: float,
        comment: str = "",
        created_by: str = "",
        now: float | None = None,
    ) -> Silence: ...
    def silences(self, include_expired: bool = False, now: float | None = None) -> list[Silence]: ...
    def expire_silence(self, silence_id: str, now: float | None = None) -> bool: ...
    def load_groups(self) -> dict[str, dict[str, Any]]: ...
    def save_group(self, key: str, state: dict[str, Any]) -> None: ...
    def load_alerts(self) -> dict[str, dict[str, Any]]: ...
    def save_alerts(self, alerts: dict[str, dict[str, Any]]) -> None: ...
    def drop_alerts(self, fingerprints: list[str]) -> None: ...
    def claim(self, key: str, ttl_s: float, now: float | None = None) -> bool: ...
    def close(self) -> None: ...


def new_silence(
    matchers: dict[str, str], duration_s: float, comment: str, created_by: str, now: float | None
) -> Silence:
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if duration_s <= 0:
        raise ValueError("a silence needs a positive duration")
    now = time.time() if now is None else now
    return Silence(uuid.uuid4().hex[:12], dict(matchers), now, now + duration_s, comment, created_by)


class SqliteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Field(..., description="the database file (created with its folder)")


@STORES.register("sqlite")
class Outbox:
    """SQLite-backed outbox; safe to call from several threads (one connection, one lock)."""

    Params: ClassVar[type[SqliteParams]] = SqliteParams
    test_params: ClassVar[dict[str, Any]] = {"path": "alerts.sqlite"}

    def __repr__(self) -> str:
        return f"Outbox(path={str(self.path)!r})"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- notifications ------------------------------------------------------------------

    def enqueue(self, receiver: str, payload: dict[str, Any], key: str, now: float | None = None) -> bool:
        """Store a notification; False if one with this idempotency key already exists."""
        now = time.time() if now is None else now
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO notifications (idempotency_key, receiver, payload, next_attempt, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, receiver, json.dumps(payload), now, now),
            )
            return cur.rowcount == 1

    def due(self, now: float, limit: int = 100) -> list[Row]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, idempotency_key, receiver, payload, status, attempts, next_attempt, last_error, created "
                "FROM notifications WHERE status = 'pending' AND next_attempt <= ? ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [Row(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]

    def mark_sent(self, row_id: int, now: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE notifications SET status = 'sent', attempts = attempts + 1, finished = ?, "
                "last_error = NULL WHERE id = ?",
                (time.time() if now is None else now, row_id),
            )

    def retry(self, row_id: int, next_attempt: float, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ?",
                (next_attempt, error, row_id),
            )

    def defer(self, row_ids: list[int], until: float) -> None:
        """Not before `until` (rows taken by `due` but not attempted: their receiver is paused)."""
        with self._lock:
            self._db.executemany(
                "UPDATE notifications SET next_attempt = MAX(next_attempt, ?) WHERE id = ? AND status = 'pending'",
                [(until, i) for i in row_ids],
            )

    def dead_letter(self, row_id: int, reason: str, now: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE notifications SET status = 'dead', attempts = attempts + 1, finished = ?, "
                "last_error = ? WHERE id = ?",
                (time.time() if now is None else now, reason, row_id),
            )

    def rows(self, status: str | None = None) -> list[Row]:
        query = (
            "SELECT id, idempotency_key, receiver, payload, status, attempts, next_attempt, last_error, created "
            "FROM notifications"
        )
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Row(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]

    def depth(self) -> dict[str, int]:
        """Pending notifications per receiver."""
        with self._lock:
            rows = self._db.execute(
                "SELECT receiver, COUNT(*) FROM notifications WHERE status = 'pending' GROUP BY receiver"
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    # -- silences -------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: dict[str, str],
        duration_s: float,
        comment: str = "",
        created_by: str = "",
        now: float | None = None,
    ) -> Silence:
        s = new_silence(matchers, duration_s, comment, created_by, now)
        with self._lock:
            self._db.execute(
                "INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
                (s.id, json.dumps(s.matchers), s.starts, s.ends, s.comment, s.created_by),
            )
        return s

    def silences(self, include_expired: bool = False, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT id, matchers, starts, ends, comment, created_by FROM silences ORDER BY starts"
            ).fetchall()
        out = [Silence(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
        return out if include_expired else [s for s in out if s.ends > now]

    def expire_silence(self, silence_id: str, now: float | None = None) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE silences SET ends = ? WHERE id = ? AND ends > ?",
                (time.time() if now is None else now, silence_id, time.time() if now is None else now),
            )
            return cur.rowcount == 1

    # -- grouping state -------------------------------------------------------------------

    def load_groups(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT key, state FROM groups").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def save_group(self, key: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO groups (key, state) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET state = excluded.state",
                (key, json.dumps(state)),
            )

    def drop_group(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM groups WHERE key = ?", (key,))

    # -- active alerts and enqueue claims ------------------------------------------------------

    def load_alerts(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT fingerprint, state FROM alerts").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def save_alerts(self, alerts: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT INTO alerts (fingerprint, state) VALUES (?, ?) "
                "ON CONFLICT(fingerprint) DO UPDATE SET state = excluded.state",
                [(fp, json.dumps(a)) for fp, a in alerts.items()],
            )

    def drop_alerts(self, fingerprints: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM alerts WHERE fingerprint = ?", [(fp,) for fp in fingerprints])

    def claim(self, key: str, ttl_s: float, now: float | None = None) -> bool:
        """True for the first caller of `key` within `ttl_s` seconds."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("DELETE FROM claims WHERE expires <= ?", (now,))
            cur = self._db.execute("INSERT OR IGNORE INTO claims VALUES (?, ?)", (key, now + ttl_s))
            return cur.rowcount == 1
