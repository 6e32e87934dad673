"""The forwarding path of the proxy: one model call, or any other path, from the client's
request to the upstream and back, teeing the answer into a `Capture` for the pipeline.

    read body (bounded) -> parse JSON -> plan the experiment's cue -> forward upstream
    -> stream each upstream chunk to the client as it arrives, teeing it into a list
    -> hand the Capture to the pipeline (non-blocking) -> done
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

from monitor.asgi import BodyTooLarge, ClientGone, Headers, Receive, Scope, Send, header, read_body, send_json
from monitor.capture import Capture
from monitor.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from monitor.experiments import Plan
from monitor.pipeline import Pipeline
from monitor.records import Dialect, Outcome
from monitor.reload import PolicyHolder
from monitor.routes import Target
from monitor.settings import Settings
from proxy._dialects import error_body
from proxy._headers import client_response_headers, upstream_request_headers
from proxy._metrics import ProxyMetrics
from proxy._shadow import ShadowSender
from proxy._upstream import upstream_errors

log = structlog.get_logger("cuewatch.proxy")

OVERHEAD_HEADER = b"x-cuewatch-overhead-ms"
REQUEST_ID_HEADER = b"x-cuewatch-request-id"
ERROR_HEADER = b"x-cuewatch-error"  # on answers the proxy made itself (refused, upstream unreachable)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class Forwarder:
    """Forwards requests through one shared upstream session (set at the proxy's startup)."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline, holder: PolicyHolder, shadow: ShadowSender, metrics: ProxyMetrics
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.holder = holder
        self.shadow = shadow
        self.metrics = metrics
        self.max_body = settings.max_body_bytes
        self.session: aiohttp.ClientSession | None = None

    async def model_call(
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
            body = await read_body(receive, self.max_body, header(headers, b"content-length"))
        except BodyTooLarge:
            return await self._reject(
                send, dialect, t0, rid_header, 413, "request_too_large", f"request body exceeds {self.max_body} bytes"
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
        assert self.session is not None, "proxy used before startup"

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
                async with self.session.post(url, data=body, headers=up_headers) as resp:
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

    async def passthrough(self, scope: Scope, receive: Receive, send: Send, target: Target) -> None:
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
        assert self.session is not None, "proxy used before startup"
        status = 502
        try:
            with upstream_errors():
                async with self.session.request(
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
