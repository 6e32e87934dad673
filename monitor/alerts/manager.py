"""From findings to delivered notifications.

    findings -> rules -> alerts (deduplicated by fingerprint) -> inhibition, silences
      -> routes -> groups (group_wait / group_interval / repeat_interval) -> outbox (SQLite)
      -> delivery per receiver: concurrent across receivers, in order within one; backoff with
         jitter, Retry-After honoured, non-retryable 4xx and exhausted attempts dead-lettered.

Everything runs in a background task off the request path; the outbox makes it survive restarts.
Active alerts and grouping state live in the outbox too, so with a shared (Redis) outbox several
managers ingest findings while one of them (the leader) groups and sends, and a new leader goes on
where the old one stopped; `claim` makes sure a notification is enqueued once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from monitor.alerts.model import Alert, Evidence, fingerprint, from_finding, rule_matches
from monitor.alerts.outbox import AlertStore
from monitor.alerts.routing import Node, Resolved, compile_routes, route
from monitor.alerts.sinks.base import Notification, Sink, SinkError, build_sink
from monitor.errors import ConfigError
from monitor.policy import Alerts, InhibitRule, Policy, seconds
from monitor.records import Finding
from monitor.reload import PolicyHolder

if TYPE_CHECKING:
    from monitor.settings import Settings

log = structlog.get_logger("cuewatch.alerts")


@dataclass
class _Group:
    key: str
    route: Resolved
    labels: dict[str, str]
    first_seen: float
    last_sent: float | None = None
    notified: dict[str, str] = field(default_factory=dict)  # fingerprint -> status last sent
    alerts: dict[str, Alert] = field(default_factory=dict)


def _dump(alerts: dict[str, Alert]) -> dict[str, dict[str, Any]]:
    return {fp: a.model_dump(mode="json") for fp, a in alerts.items()}


def _muted_by_inhibition(alert: Alert, active: list[Alert], rules: list[InhibitRule]) -> bool:
    for rule in rules:
        if not all(alert.labels.get(k) == v for k, v in rule.target.items()):
            continue
        for src in active:
            if src is alert or src.status != "firing":
                continue
            if all(src.labels.get(k) == v for k, v in rule.source.items()) and all(
                src.labels.get(k) == alert.labels.get(k) for k in rule.equal
            ):
                return True
    return False


class AlertManager:
    """Alerts for one process. `on_findings` is a DetectorStage listener; `run` the loop."""

    def __init__(
        self,
        holder: PolicyHolder,
        outbox: AlertStore,
        *,
        log_dir: str | None = None,
        redact: bool = False,
        public_url: str | None = None,
        labels: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float = 0.25,
        send_timeout_s: float = 10.0,
    ) -> None:
        self.holder, self.outbox, self.log_dir, self.redact = holder, outbox, log_dir, redact
        self.public_url, self.labels = public_url, dict(labels or {})
        self.clock, self.tick_s = clock, tick_s
        self.active: dict[str, Alert] = {}
        self.groups: dict[str, _Group] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self._paused: dict[str, float] = {}
        self._restored = outbox.load_groups()
        self._client = httpx.AsyncClient(timeout=send_timeout_s)
        self._sinks: dict[str, Sink] = {}  # built on first use; dropped on reload
        self._tree: Node | None = None  # the compiled route tree; dropped on reload
        holder.subscribe(self._on_reload)

    @classmethod
    def from_settings(cls, holder: PolicyHolder, outbox: AlertStore, settings: Settings) -> AlertManager:
        """The manager of a sidecar or worker: its log location, redaction, public URL and labels."""
        return cls(
            holder,
            outbox,
            log_dir=settings.log_shown(),
            redact=settings.redact_prompts,
            public_url=settings.public_base(),
            labels=settings.alert_labels(),
        )

    @property
    def config(self) -> Alerts:
        return self.holder.policy.alerts

    # ------------------------------------------------------------------ findings -> alerts

    async def on_findings(self, findings: list[Finding]) -> None:
        """Listener for findings: the alerts they make are in the outbox when this returns."""
        changed = self.ingest(findings)
        if changed:
            await asyncio.to_thread(self.outbox.save_alerts, _dump(changed))

    def resume(self) -> None:
        """Take over grouping from the state in the outbox (a new leader, or a restart)."""
        self.groups = {}
        self._restored = self.outbox.load_groups()

    def ingest(self, findings: list[Finding]) -> dict[str, Alert]:
        """Turn findings into active alerts; returns those that changed."""
        cfg = self.config
        changed: dict[str, Alert] = {}
        if cfg.route is None:
            return changed
        policy = str(self.holder.path) if self.holder.path else None
        seen = datetime.fromtimestamp(self.clock(), UTC)  # staleness runs on the manager's clock
        for f in findings:
            for rule in cfg.rules:
                if not rule_matches(rule, f):
                    continue
                new = from_finding(
                    f,
                    rule,
                    policy_path=policy,
                    log_dir=self.log_dir,
                    redact=self.redact,
                    public_url=self.public_url,
                    labels=self.labels,
                )
                new = new.model_copy(update={"updated_at": seen})
                prev = self.active.get(new.fingerprint)
                if prev is not None and prev.status == "firing":
                    ids = (prev.evidence.finding_ids + new.evidence.finding_ids)[-20:]
                    new = new.model_copy(
                        update={
                            "starts_at": prev.starts_at,
                            "evidence": new.evidence.model_copy(update={"finding_ids": ids}),
                        }
                    )
                self.active[new.fingerprint] = changed[new.fingerprint] = new
        return changed

    async def _merge_stored(self) -> None:
        """Alerts other managers ingested (shared outbox) join this one's view."""
        for fp, raw in (await asyncio.to_thread(self.outbox.load_alerts)).items():
            stored = Alert.model_validate(raw)
            mine = self.active.get(fp)
            if mine is None or stored.updated_at > mine.updated_at:
                self.active[fp] = stored

    # ------------------------------------------------------------------ alerts -> outbox

    async def tick(self, now: float | None = None) -> int:
        """Resolve stale alerts, group and route, and enqueue due notifications; returns how many."""
        now = self.clock() if now is None else now
        cfg = self.config
        if cfg.route is None:
            return 0
        await self._merge_stored()
        stale = seconds(cfg.resolve_after)
        resolved: dict[str, Alert] = {}
        for fp, a in list(self.active.items()):
            if a.status == "firing" and now - a.updated_at.timestamp() > stale:
                self.active[fp] = resolved[fp] = a.model_copy(
                    update={"status": "resolved", "ends_at": datetime.fromtimestamp(now, UTC)}
                )
        if resolved:
            await asyncio.to_thread(self.outbox.save_alerts, _dump(resolved))
        silences = await asyncio.to_thread(self.outbox.silences, False, now)
        current = list(self.active.values())
        visible = [
            a
            for a in current
            if not any(s.mutes(a.labels, now) for s in silences) and not _muted_by_inhibition(a, current, cfg.inhibit)
        ]
        for existing in self.groups.values():
            existing.alerts = {}
        for a in visible:
            for r in route(self._routes(), a.labels):
                labels = {k: a.labels.get(k, "") for k in r.group_by}
                key = f"{r.path}|{r.receiver}|" + json.dumps(labels, sort_keys=True)
                g = self.groups.get(key)
                if g is None:
                    saved = self._restored.pop(key, {})
                    g = self.groups[key] = _Group(
                        key, r, labels, now, saved.get("last_sent"), saved.get("notified", {})
                    )
                g.route = r
                g.alerts[a.fingerprint] = a
        receivers = {r.name: r for r in cfg.receivers}
        sent = 0
        for g in list(self.groups.values()):
            if await self._maybe_flush(g, now, receivers):
                sent += 1
        # resolved alerts are forgotten once every group they were in has told its receiver
        forgotten = [
            fp
            for fp, a in self.active.items()
            if a.status == "resolved"
            and not any(g.notified.get(fp) == "firing" and fp in g.alerts for g in self.groups.values())
        ]
        for fp in forgotten:
            del self.active[fp]
        if forgotten:
            await asyncio.to_thread(self.outbox.drop_alerts, forgotten)
        return sent

    async def _maybe_flush(self, g: _Group, now: float, receivers: dict[str, Any]) -> bool:
        changed = any(g.notified.get(fp) != a.status for fp, a in g.alerts.items())
        firing = any(a.status == "firing" for a in g.alerts.values())
        if not g.alerts:
            return False
        if g.last_sent is None:
            due = g.first_seen + g.route.group_wait if changed else None
        elif changed:
            due = g.last_sent + g.route.group_interval
        else:
            due = g.last_sent + g.route.repeat_interval if firing else None
        if due is None or now < due:
            return False
        receiver = receivers.get(g.route.receiver)
        send_resolved = receiver.send_resolved if receiver is not None else True
        alerts = [
            a
            for a in g.alerts.values()
            if a.status == "firing" or (send_resolved and g.notified.get(a.fingerprint) == "firing")
        ]
        g.last_sent = now
        g.notified = {fp: a.status for fp, a in g.alerts.items() if a.status == "firing"}
        await asyncio.to_thread(self.outbox.save_group, g.key, {"last_sent": now, "notified": g.notified})
        if not alerts:
            return False
        statuses = json.dumps(sorted((a.fingerprint, a.status) for a in alerts))
        # Another manager (a leader before a failover) may have sent this very state moments ago.
        same = hashlib.sha256(f"{g.key}|{statuses}".encode()).hexdigest()[:32]
        window = min(g.route.group_interval, g.route.repeat_interval)
        if not await asyncio.to_thread(self.outbox.claim, f"notify:{same}", window, now):
            log.info("alert_notification_deduplicated", receiver=g.route.receiver, group=g.key)
            return False
        key = hashlib.sha256(f"{g.key}|{statuses}|{now:.3f}".encode()).hexdigest()[:32]
        n = Notification(g.route.receiver, key, g.labels, [a.model_dump(mode="json") for a in alerts])
        await asyncio.to_thread(self.outbox.enqueue, g.route.receiver, n.payload(), key, now)
        return True

    # ------------------------------------------------------------------ outbox -> sinks

    def _on_reload(self, policy: Policy) -> None:
        self._sinks, self._tree = {}, None

    def _routes(self) -> Node:
        """The running policy's route tree, compiled once per policy load."""
        if self._tree is None:
            route = self.holder.policy.alerts.route
            assert route is not None
            self._tree = compile_routes(route)
        return self._tree

    def _sink(self, name: str) -> Sink:
        policy = self.holder.policy
        if name not in self._sinks:
            receiver = next((r for r in policy.alerts.receivers if r.name == name), None)
            if receiver is None:
                raise ConfigError(f"receiver {name!r} is not in the running policy")
            self._sinks[name] = build_sink(receiver, self._client)
        return self._sinks[name]

    def _count(self, sink: str, what: str) -> None:
        s = self.stats.setdefault(sink, {"sent": 0, "failed": 0, "retried": 0, "dead_lettered": 0})
        s[what] += 1

    def _backoff(self, attempts: int) -> float:
        cfg = self.config
        base = min(seconds(cfg.backoff_max), seconds(cfg.backoff_initial) * 2 ** max(attempts - 1, 0))
        return float(base * random.uniform(0.5, 1.0))

    async def deliver(self, now: float | None = None) -> None:
        """Send what is due: receivers concurrently (one failing never blocks another), each in order."""
        now = self.clock() if now is None else now
        rows = await asyncio.to_thread(self.outbox.due, now)
        by_receiver: dict[str, list[Any]] = {}
        for row in rows:
            by_receiver.setdefault(row.receiver, []).append(row)
        await asyncio.gather(*(self._deliver_to(name, batch, now) for name, batch in by_receiver.items()))

    async def _deliver_to(self, name: str, rows: list[Any], now: float) -> None:
        if self._paused.get(name, 0.0) > now:
            return
        max_attempts = self.config.max_attempts
        for row in rows:
            try:
                sink = self._sink(name)
                await sink.send(Notification.from_payload(row.payload))
            except (SinkError, ConfigError, TimeoutError) as exc:
                retryable = exc.retryable if isinstance(exc, SinkError) else True
                retry_after = exc.retry_after if isinstance(exc, SinkError) else None
                self._count(name, "failed")
                if not retryable or row.attempts + 1 >= max_attempts:
                    reason = str(exc) if not retryable else f"gave up after {row.attempts + 1} attempts: {exc}"
                    await asyncio.to_thread(self.outbox.dead_letter, row.id, reason, now)
                    self._count(name, "dead_lettered")
                    log.error("alert_dead_lettered", receiver=name, key=row.idempotency_key, reason=reason)
                    continue
                delay = retry_after * random.uniform(1.0, 1.1) if retry_after else self._backoff(row.attempts + 1)
                await asyncio.to_thread(self.outbox.retry, row.id, now + delay, str(exc))
                later = [r.id for r in rows[rows.index(row) + 1 :]]
                await asyncio.to_thread(self.outbox.defer, later, now + delay)  # they wait for the pause too
                self._paused[name] = now + delay
                self._count(name, "retried")
                log.warning(
                    "alert_delivery_retry",
                    receiver=name,
                    error=str(exc),
                    retry_in_s=round(delay, 2),
                    attempt=row.attempts + 1,
                )
                return  # keep this receiver's order; the rest wait for the retry
            except Exception as exc:  # a sink bug: keep the notification, back off
                self._count(name, "failed")
                await asyncio.to_thread(self.outbox.retry, row.id, now + self._backoff(row.attempts + 1), repr(exc))
                log.exception("alert_sink_failed", receiver=name)
                return
            else:
                await asyncio.to_thread(self.outbox.mark_sent, row.id)
                self._count(name, "sent")

    # ------------------------------------------------------------------ loop, tests

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
                await self.deliver()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert_loop_failed")
            await asyncio.sleep(self.tick_s)

    async def send_test(self, receiver: str | None = None) -> list[str]:
        """Enqueue a clearly marked test alert through the real routes (or to one receiver)."""
        cfg = self.config
        if cfg.route is None:
            raise ConfigError("the policy has no alert route")
        now = self.clock()
        stamp = datetime.fromtimestamp(now, UTC)
        labels = {
            "alertname": "cuewatch-test",
            "experiment": "test",
            "detector": "test",
            "metric": "test",
            "model": "",
            "arms": "",
            "severity": "info",
        }
        alert = Alert(
            fingerprint=fingerprint(labels),
            labels=labels,
            severity="info",
            summary="TEST ALERT from `cuewatch alert test`: delivery works; nothing was detected.",
            evidence=Evidence(e_value=1.0, p_value=1.0, alpha=0.01),
            replay_command="cuewatch alert test",
            starts_at=stamp,
            updated_at=stamp,
            test=True,
        )
        targets = [receiver] if receiver else sorted({r.receiver for r in route(self._routes(), labels)})
        known = {r.name for r in cfg.receivers}
        keys = []
        for name in targets:
            if name not in known:
                raise ConfigError(f"unknown receiver {name!r}; known: {', '.join(sorted(known))}")
            key = hashlib.sha256(f"test|{name}|{now}".encode()).hexdigest()[:32]
            n = Notification(name, key, {"alertname": "cuewatch-test"}, [alert.model_dump(mode="json")], test=True)
            await asyncio.to_thread(self.outbox.enqueue, name, n.payload(), key, now)
            keys.append(key)
        return keys

    async def drain(self) -> None:
        """At shutdown: enqueue every group with unsent changes now (ignoring group_wait), so
        nothing waits only in memory; delivery resumes from the outbox at the next start."""
        await self.tick()
        for g in self.groups.values():
            if g.last_sent is not None:
                g.last_sent -= g.route.group_interval
            g.first_seen -= g.route.group_wait
        await self.tick()

    async def close(self) -> None:
        await self._client.aclose()
