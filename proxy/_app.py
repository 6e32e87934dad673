"""The proxy: a raw ASGI app, its composition and lifecycle, and its probes.

`ProxyApp` builds the parts (pipeline with the traffic log and the analysis engine, shadow
sender, metrics, admin API), dispatches each request (model calls and other paths to
`proxy._forward`, `/admin/*` to `proxy._admin`, the probes here), and starts and drains them.
No middleware wraps it. Everything after the response (normalising, logging, detectors) runs in
the pipeline worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

import aiohttp
import structlog

from monitor.alerts import AlertManager
from monitor.alerts.outbox import AlertStore
from monitor.asgi import (
    Receive,
    Scope,
    Send,
    send_json,
    send_text,
)
from monitor.engine import Engine
from monitor.errors import UpstreamError
from monitor.evidence.web import EvidencePages
from monitor.pipeline import AccessLogStage, Pipeline, Stage, TrafficLogStage
from monitor.reload import PolicyHolder
from monitor.settings import Settings
from proxy._admin import AdminAPI
from proxy._dialects import error_body
from proxy._forward import Forwarder
from proxy._metrics import ProxyMetrics
from proxy._shadow import ProbeScheduler, ShadowSender
from proxy._upstream import upstream_errors

log = structlog.get_logger("cuewatch.proxy")

_SKIP_AUTO = ("Accept-Encoding", "User-Agent", "Accept", "Content-Type")
_READY_TTL_S = 2.0


def build_pipeline(
    settings: Settings, holder: PolicyHolder | None = None, extra_stages: list[Stage] | None = None
) -> Pipeline:
    """The default pipeline: traffic log (essential), access log, the policy's detectors, then
    any extra stages. With `transport: redis`: publish to the stream (essential), access log;
    the traffic log, detectors and alerts run in `cuewatch worker`."""
    essential: Stage
    engines: list[Stage] = []
    if settings.transport == "redis":
        from monitor.streams import RedisPublishStage

        essential = RedisPublishStage(settings)
    else:
        traffic = essential = TrafficLogStage.from_settings(settings)
        if holder is not None:
            engines.append(
                Engine(
                    holder,
                    sink=traffic,
                    state_path=settings.log_dir / "detectors.state.json",
                    pool=settings.feature_workers,
                )
            )
    access: list[Stage] = [AccessLogStage()] if settings.access_log else []
    export: list[Stage] = []
    if settings.otlp_endpoint and settings.transport == "inprocess":
        from monitor.otel import OtelStage

        otel = OtelStage(settings.otlp_endpoint)
        for engine in engines:
            assert isinstance(engine, Engine)
            engine.subscribe(otel.on_findings)
        export.append(otel)
    stages = [essential, *access, *engines, *export, *(extra_stages or [])]
    return Pipeline(
        stages=stages,
        essential=essential,
        queue_size=settings.queue_size,
        spill_dir=settings.spill_path(),
        redact_prompts=settings.redact_prompts,
        redact_secrets=settings.redact_secrets,
        record_max_bytes=settings.record_max_bytes,
        log_dir=settings.log_dir if settings.transport == "inprocess" else None,
        journal=settings.journal,
    )


class ProxyApp:
    """ASGI application of one proxy instance. Build it with `proxy.create_app(settings)`."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline | None = None, holder: PolicyHolder | None = None
    ) -> None:
        self.settings = settings
        self.holder = holder or PolicyHolder(settings.policy)
        self.pipeline = pipeline or build_pipeline(settings, self.holder)
        self.routes = settings.route_table()
        self.shadow = ShadowSender(self.pipeline, self.routes, self.holder)
        self.probes = ProbeScheduler(self.shadow, self.holder)
        log_stage = next((s for s in self.pipeline.stages if isinstance(s, TrafficLogStage)), None)
        self.metrics = ProxyMetrics(self.pipeline, log_stage, self.holder, self.shadow)
        self._session: aiohttp.ClientSession | None = None
        self.forward = Forwarder(settings, self.pipeline, self.holder, self.shadow, self.metrics)
        self.admin = AdminAPI(settings.admin_secret(), self.holder)
        self.evidence = EvidencePages.from_settings(settings)
        self._upstreams: dict[str, str] = {}  # base URL -> "reachable" or why not, from the last check
        self._upstreams_at = -_READY_TTL_S
        self._background: list[asyncio.Task[None]] = []
        self.outbox: AlertStore | None = None
        self.alerts: AlertManager | None = None

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path == "/healthz":
                await send_json(send, 200, {"status": "ok"})
            elif path == "/readyz":
                await self._readyz(send)
            elif path == "/metrics":
                await self._metrics(send)
            elif path == "/upstreamz":
                await self._upstreamz(send)
            elif path.startswith("/admin/"):
                await (self.evidence if EvidencePages.handles(path) else self.admin)(scope, receive, send)
            elif "/." in path and any(seg in (".", "..") for seg in path.split("/")):
                await send_json(send, 400, error_body("openai", 400, "dot segments in the path", "invalid_path"))
            else:
                target = self.routes.target(scope["method"], path)
                if target.dialect is not None:
                    rid = os.urandom(12).hex()
                    with structlog.contextvars.bound_contextvars(request_id=rid):  # on every log line
                        await self.forward.model_call(scope, receive, send, target.dialect, target.base, rid)
                else:
                    await self.forward.passthrough(scope, receive, send, target)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        s = self.settings
        connector = aiohttp.TCPConnector(
            limit=s.pool_size, keepalive_timeout=s.keepalive_s, enable_cleanup_closed=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=s.connect_timeout_s, sock_read=s.read_timeout_s),
            auto_decompress=False,  # bytes pass through exactly; the pipeline decodes its copy
            skip_auto_headers=_SKIP_AUTO,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.shadow.session = self.forward.session = self._session
        await self.pipeline.start()
        loop = asyncio.get_running_loop()
        if self.holder.path is not None:
            if self.settings.policy_poll_s > 0:
                self._background.append(loop.create_task(self.holder.watch(self.settings.policy_poll_s)))
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # main thread only
                loop.add_signal_handler(signal.SIGHUP, self.holder.schedule_reload)
        self._background.append(loop.create_task(self.probes.run()))
        self.outbox = self.admin.outbox = s.alert_store()
        if s.transport == "redis":
            # Workers raise and send alerts; this replica only serves the silences API, shared in Redis.
            log.info("proxy_started", upstreams=self.routes.bases(), transport="redis", redis=s.redis_display())
            return
        self.alerts = AlertManager.from_settings(self.holder, self.outbox, s)
        self.metrics.watch_alerts(self.alerts)
        for stage in self.pipeline.stages:
            if isinstance(stage, Engine):
                stage.subscribe(self.alerts.on_findings)
        self._background.append(loop.create_task(self.alerts.run()))
        log.info("proxy_started", upstreams=self.routes.bases())

    async def shutdown(self) -> None:
        """Drain the pipeline (every record reaches the log), then close the upstream session.
        Never raises: a step that fails (a full disk, say) is logged and the next one runs."""
        for task in self._background:
            task.cancel()
        await self.shadow.close()  # shadow and probe records are part of the experiment
        depth = self.pipeline.depth
        await self.pipeline.stop()
        steps: list[tuple[str, Any]] = []
        if self.alerts is not None and self.outbox is not None:
            steps += [("alerts_drain", self.alerts.drain), ("alerts_close", self.alerts.close)]
        if self.outbox is not None:
            steps.append(("outbox_close", self.outbox.close))
        for stage in self.pipeline.stages:
            for name in ("close", "aclose"):
                if hasattr(stage, name):
                    steps.append((f"{type(stage).__name__}.{name}", getattr(stage, name)))
        if self._session is not None:
            steps.append(("upstream_session_close", self._session.close))
        for name, step in steps:
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("shutdown_step_failed", step=name)
        log.info("proxy_stopped", drained=depth, records=self.pipeline.processed, lost=self.pipeline.lost)

    # ------------------------------------------------------------------ probes

    async def _readyz(self, send: Send) -> None:
        """Ready while records flow: the queue is not saturated, the traffic log takes writes
        and nothing waits in memory for a disk. An unreachable upstream is reported, not a
        reason: as a sidecar, failing readiness in a provider outage would take every app pod
        out of service, while the app is better served by the 502 it gets either way."""
        upstreams = await self._check_upstreams()
        reasons = self.pipeline.problems()
        body: dict[str, Any] = {
            "status": "ready" if not reasons else "not_ready",
            "reasons": reasons,
            "upstreams": upstreams,
            "policy": {
                "file": str(self.holder.path) if self.holder.path else None,
                "reloads": self.holder.reloads,
                "last_error": self.holder.last_error,
            },
        }
        await send_json(send, 200 if not reasons else 503, body)

    async def _check_upstreams(self) -> dict[str, str]:
        """Each distinct upstream: "reachable" (any HTTP answer at all) or why not; checked at
        most every couple of seconds, concurrently, 2 s each."""
        now = time.monotonic()
        if now - self._upstreams_at > _READY_TTL_S:
            self._upstreams_at = now
            bases = self.routes.bases()
            results = await asyncio.gather(*(self._reach(b) for b in bases))
            self._upstreams = dict(zip(bases, results, strict=True))
        return self._upstreams

    async def _reach(self, base: str) -> str:
        assert self._session is not None
        try:
            with upstream_errors():
                async with self._session.get(base + "/", timeout=aiohttp.ClientTimeout(total=2.0)) as r:
                    await r.read()
        except UpstreamError as exc:
            return f"unreachable: {type(exc.__cause__).__name__}"
        return "reachable"

    async def _upstreamz(self, send: Send) -> None:
        """Upstream health, apart from readiness: 200 when every upstream answers, else 503."""
        upstreams = await self._check_upstreams()
        ok = all(v == "reachable" for v in upstreams.values())
        await send_json(send, 200 if ok else 503, {"status": "ok" if ok else "unreachable", "upstreams": upstreams})

    async def _metrics(self, send: Send) -> None:
        await self._check_upstreams()  # cuewatch_upstream_up is as fresh as the scrape
        await send_text(send, 200, self.metrics.render(self._upstreams).decode(), b"text/plain; version=0.0.4")
