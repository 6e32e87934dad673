"""The proxy: a raw ASGI app. The request path is short and straight:

    read body (bounded) -> parse JSON -> forward upstream (one shared aiohttp session)
    -> stream each upstream chunk to the client as it arrives, teeing it into a list
    -> hand a Capture to the pipeline (non-blocking) -> done

No middleware wraps it. Everything after the response (normalising, logging, detectors) runs in
the pipeline worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

from monitor._asgi import (
    BodyTooLarge,
    ClientGone,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_json,
    send_text,
)
from monitor.alerts import AlertManager, Outbox
from monitor.alerts.outbox import AlertStore
from monitor.capture import Capture
from monitor.engine import Engine
from monitor.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from monitor.experiments import Plan
from monitor.pipeline import AccessLogStage, Pipeline, Stage, TrafficLogStage
from monitor.records import Dialect, Outcome
from monitor.reload import PolicyHolder
from monitor.routes import Target
from monitor.settings import Settings
from proxy._admin import AdminAPI
from proxy._dialects import error_body
from proxy._headers import client_response_headers, upstream_request_headers
from proxy._metrics import ProxyMetrics
from proxy._shadow import ProbeScheduler, ShadowSender
from proxy._upstream import upstream_errors

log = structlog.get_logger("cuewatch.proxy")

OVERHEAD_HEADER = b"x-cuewatch-overhead-ms"
REQUEST_ID_HEADER = b"x-cuewatch-request-id"
ERROR_HEADER = b"x-cuewatch-error"  # on answers the proxy made itself (refused, upstream unreachable)
_SKIP_AUTO = ("Accept-Encoding", "User-Agent", "Accept", "Content-Type")
_READY_TTL_S = 2.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


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
            engines.append(Engine(holder, sink=traffic, state_path=settings.log_dir / "detectors.state.json"))
    access: list[Stage] = [AccessLogStage()] if settings.access_log else []
    stages = [essential, *access, *engines, *(extra_stages or [])]
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
        self._max_body = settings.max_body_bytes
        self.admin = AdminAPI(settings.admin_secret(), self.holder)
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
                await self.admin(scope, receive, send)
            elif "/." in path and any(seg in (".", "..") for seg in path.split("/")):
                await send_json(send, 400, error_body("openai", 400, "dot segments in the path", "invalid_path"))
            else:
                target = self.routes.target(scope["method"], path)
                if target.dialect is not None:
                    rid = os.urandom(12).hex()
                    with structlog.contextvars.bound_contextvars(request_id=rid):  # on every log line
                        await self._model_call(scope, receive, send, target.dialect, target.base, rid)
                else:
                    await self._passthrough(scope, receive, send, target)
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
        self.shadow.session = self._session
        await self.pipeline.start()
        loop = asyncio.get_running_loop()
        if self.holder.path is not None:
            if self.settings.policy_poll_s > 0:
                self._background.append(loop.create_task(self.holder.watch(self.settings.policy_poll_s)))
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # main thread only
                loop.add_signal_handler(signal.SIGHUP, self.holder.schedule_reload)
        self._background.append(loop.create_task(self.probes.run()))
        if s.transport == "redis":
            # Workers raise and send alerts; this replica only serves the silences API, shared in Redis.
            from monitor.alerts.redis_outbox import RedisOutbox

            url = s.redis_url.get_secret_value()
            self.outbox = self.admin.outbox = RedisOutbox(url, s.redis_prefix, timeout_s=s.redis_timeout_s)
            log.info("proxy_started", upstreams=self.routes.bases(), transport="redis", redis=s.redis_display())
            return
        self.outbox = self.admin.outbox = Outbox(s.log_dir / "alerts.sqlite")
        self.alerts = AlertManager(self.holder, self.outbox, log_dir=str(s.log_dir), redact=s.redact_prompts)
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

    # ------------------------------------------------------------------ model calls

    async def _model_call(
        self, scope: Scope, receive: Receive, send: Send, dialect: Dialect, base: str, rid: str
    ) -> None:
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        rid_header = (REQUEST_ID_HEADER, rid.encode())
        headers: Headers = scope["headers"]

        ctype = header(headers, b"content-type")
        if ctype is not None and b"json" not in ctype.lower():
            return await self._reject(
                send,
                dialect,
                t0,
                rid_header,
                415,
                "unsupported_media_type",
                f"content-type must be application/json, got {ctype.decode('latin-1')!r}",
            )
        try:
            body = await read_body(receive, self._max_body, header(headers, b"content-length"))
        except BodyTooLarge:
            return await self._reject(
                send, dialect, t0, rid_header, 413, "request_too_large", f"request body exceeds {self._max_body} bytes"
            )
        except ClientGone:
            return
        if not body:
            return await self._reject(send, dialect, t0, rid_header, 400, "empty_body", "request body is empty")
        try:
            req = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return await self._reject(
                send, dialect, t0, rid_header, 400, "invalid_json", f"request body is not valid JSON: {exc}"
            )
        if not isinstance(req, dict):
            return await self._reject(
                send, dialect, t0, rid_header, 400, "invalid_json", "request body must be a JSON object"
            )

        raw = body  # as the client sent it (the record keeps this, not the cued copy)
        model = self.metrics.model_label(req.get("model"))
        target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
        url = base + target
        assert self._session is not None, "proxy used before startup"

        up_headers = upstream_request_headers(headers)
        labels: dict[str, Any] = {}
        extra: list[tuple[bytes, bytes]] = [rid_header]
        plan, cued = self._plan(dialect, scope["path"], headers, req)
        if plan is not None:
            labels = plan.labels
            extra.extend(plan.debug_headers)
            if cued is not None:  # live: the model sees the arm's cue
                body = cued
                up_headers.update(plan.headers)
            elif plan.labels["mode"] == "shadow":  # copies per arm if sampled, in the background
                self.shadow.consider(dialect, target, dict(up_headers), plan, req)

        cap = Capture.start(rid, started, dialect, scope["path"], req, labels)
        cap.request_body = raw
        self.pipeline.begin(cap)  # journaled before the client can have an answer
        t_sent = time.perf_counter()
        try:
            with upstream_errors():
                async with self._session.post(url, data=body, headers=up_headers) as resp:
                    t_hdr = time.perf_counter()
                    await self._relay(resp, send, receive, cap, t0, t_sent, t_hdr, extra)
        except UpstreamError as exc:
            timed_out = isinstance(exc, UpstreamTimeout)
            cause = exc.__cause__
            if cap.status == 0:  # nothing sent to the client yet: answer in the dialect's shape
                status, code = (504, "upstream_timeout") if timed_out else (502, "upstream_unreachable")
                message = f"upstream did not answer within {self.settings.read_timeout_s}s" if timed_out else str(exc)
                await self._upstream_failed(send, dialect, cap, t0, t_sent, rid_header, status, code, message)
            elif timed_out:
                self._finish_broken(cap, "upstream_timeout", f"upstream stalled mid-response: {cause!r}")
            else:
                self._finish_broken(cap, "upstream_disconnect", f"upstream broke off mid-response: {cause!r}")
        t_end = time.perf_counter()
        tm = cap.timings
        tm.total_ms = _ms(t_end - t0)
        if tm.overhead_ms is None:
            tm.overhead_ms = _ms((t_end - t0) - (tm.upstream_ms or 0.0) / 1000.0)
        self.metrics.observe(
            dialect,
            model,
            cap.status,
            tm.upstream_ms / 1000.0 if tm.upstream_ms is not None else None,
            tm.overhead_ms / 1000.0,
        )
        self.pipeline.submit(cap)

    def _plan(
        self, dialect: Dialect, path: str, headers: Headers, req: dict[str, Any]
    ) -> tuple[Plan | None, bytes | None]:
        """The experiment plan and the cued body (None: forward as sent). A request the cue code
        cannot rewrite is forwarded as sent, outside the experiment, and counted: never a 500."""
        experiments = self.holder.experiments  # read once: a reload swaps it between requests
        if not experiments:
            return None, None
        try:
            plan = experiments.plan(dialect, path, headers, req)
        except Exception as exc:  # a shape the cue code did not foresee
            self.metrics.cue_not_applied("error")
            log.exception("cue_not_applied", reason=f"{type(exc).__name__}: {exc}")
            return None, None
        if plan is None or plan.request is None:
            return plan, None
        cued = _encode(plan.request)
        if cued is None:
            self.metrics.cue_not_applied("too_deep")
            log.warning("cue_not_applied", experiment=plan.experiment.name, reason="nested too deep")
            return None, None
        return plan, cued

    async def _relay(
        self,
        resp: aiohttp.ClientResponse,
        send: Send,
        receive: Receive,
        cap: Capture,
        t0: float,
        t_sent: float,
        t_hdr: float,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        """Send the upstream response to the client chunk by chunk, teeing it into the capture."""
        ctype = resp.headers.get("Content-Type", "")
        cap.status = resp.status
        cap.content_type = ctype
        cap.content_encoding = resp.headers.get("Content-Encoding")
        cap.upstream_request_id = resp.headers.get("request-id") or resp.headers.get("x-request-id")
        if resp.status >= 400:
            cap.outcome = "upstream_error"
        pre_ms = _ms((t_sent - t0) + (time.perf_counter() - t_hdr))
        out_headers = client_response_headers(resp.raw_headers)
        out_headers.append((OVERHEAD_HEADER, f"{pre_ms:.3f}".encode()))
        out_headers.extend(extra)
        await send({"type": "http.response.start", "status": resp.status, "headers": out_headers})
        t_first = time.perf_counter()
        cap.timings.upstream_ms = _ms(t_hdr - t_sent)

        gone = asyncio.Event()
        watcher = (
            asyncio.ensure_future(_watch_disconnect(receive, gone)) if ctype.startswith("text/event-stream") else None
        )
        chunks: list[bytes] = []
        kept, keep = 0, self.settings.record_max_bytes
        try:
            async for chunk in resp.content.iter_any():
                if kept < keep:  # the record reads at most this much; the client gets it all
                    chunks.append(chunk)
                    kept += len(chunk)
                else:
                    cap.truncated = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if gone.is_set():
                    cap.outcome = "client_disconnect"
                    cap.error = "client disconnected before the response completed"
                    break
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if watcher is not None:
                watcher.cancel()
            cap.body = b"".join(chunks)
            t_done = time.perf_counter()
            cap.timings.first_byte_ms = _ms(t_first - t0)
            # Overhead: before the upstream call, and between its headers and ours. Waiting for
            # chunks is the upstream's time, not ours.
            cap.timings.overhead_ms = pre_ms
            cap.timings.total_ms = _ms(t_done - t0)

    def _finish_broken(self, cap: Capture, outcome: Outcome, error: str) -> None:
        """Upstream failed after the response started: the client's connection is closed
        (returning without completing the response makes the server drop it), so the client
        sees the truncation just as the upstream caused it."""
        cap.outcome = outcome
        cap.error = error
        log.warning("upstream_broke_mid_response", outcome=outcome, error=error)

    async def _upstream_failed(
        self,
        send: Send,
        dialect: Dialect,
        cap: Capture,
        t0: float,
        t_sent: float,
        rid_header: tuple[bytes, bytes],
        status: int,
        code: str,
        message: str,
    ) -> None:
        cap.status = status
        cap.outcome = "upstream_timeout" if status == 504 else "upstream_unreachable"
        cap.error = message
        cap.timings.upstream_ms = _ms(time.perf_counter() - t_sent)
        log.warning("upstream_failed", status=status, error=message)
        overhead = (OVERHEAD_HEADER, f"{_ms(t_sent - t0):.3f}".encode())
        own = [overhead, rid_header, (ERROR_HEADER, code.encode())]
        await send_json(send, status, error_body(dialect, status, message, code), own)

    async def _reject(
        self,
        send: Send,
        dialect: Dialect,
        t0: float,
        rid_header: tuple[bytes, bytes],
        status: int,
        code: str,
        message: str,
    ) -> None:
        """Refuse a request before it reaches the upstream (no exchange record: no model call)."""
        log.info("request_rejected", status=status, reason=message)
        overhead_s = time.perf_counter() - t0
        self.metrics.observe(dialect, "unknown", status, None, overhead_s)
        await send_json(
            send,
            status,
            error_body(dialect, status, message, code),
            [(OVERHEAD_HEADER, f"{_ms(overhead_s):.3f}".encode()), rid_header, (ERROR_HEADER, code.encode())],
        )

    # ------------------------------------------------------------------ other /v1 paths

    async def _passthrough(self, scope: Scope, receive: Receive, send: Send, target: Target) -> None:
        """Any other path (embeddings, files, batches, models, count_tokens, ...): forwarded
        untouched, both bodies streamed; logged with status and timing, not recorded."""
        t0 = time.perf_counter()
        dialect = target.error_dialect
        url = target.base + scope["path"]
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        headers: Headers = scope["headers"]
        has_body = (
            header(headers, b"content-length") not in (None, b"0") or header(headers, b"transfer-encoding") is not None
        )
        assert self._session is not None, "proxy used before startup"
        status = 502
        try:
            with upstream_errors():
                async with self._session.request(
                    scope["method"],
                    url,
                    headers=upstream_request_headers(headers),
                    data=_request_stream(receive) if has_body else None,
                ) as resp:
                    status = resp.status
                    out = client_response_headers(resp.raw_headers)
                    out.append((OVERHEAD_HEADER, f"{_ms(time.perf_counter() - t0):.3f}".encode()))
                    await send({"type": "http.response.start", "status": status, "headers": out})
                    async for chunk in resp.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UpstreamTimeout:
            status = 504
            await send_json(send, 504, error_body(dialect, 504, "upstream timed out", "upstream_timeout"))
        except UpstreamUnreachable as exc:
            await send_json(send, 502, error_body(dialect, 502, str(exc), "upstream_unreachable"))
        elapsed = time.perf_counter() - t0
        self.metrics.observe(dialect, "passthrough", status, None, elapsed)
        if self.settings.access_log:
            log.info("passthrough", method=scope["method"], path=scope["path"], status=status, ms=_ms(elapsed))

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


def _encode(request: dict[str, Any]) -> bytes | None:
    """The cued request as JSON, or None when it is nested deeper than orjson writes (255
    levels; it reads 1024, so such a request parsed)."""
    try:
        return orjson.dumps(request)
    except orjson.JSONEncodeError:
        return None


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            gone.set()
            return


async def _request_stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        chunk = msg.get("body", b"")
        if chunk:
            yield chunk
        if not msg.get("more_body", False):
            return
