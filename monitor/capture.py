"""What the proxy hands to the pipeline, and how it becomes an `Exchange`.

The request path only collects raw facts into a `Capture` (the parsed request, the response
bytes as they were teed, timings); everything costly - decompression, SSE parsing, normalising
both dialects - happens here, in the pipeline worker, off the request path.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import datetime
from typing import Any

import brotli
import orjson
import zstandard
from pydantic import BaseModel, ConfigDict, Field

from monitor import dialects
from monitor.records import Dialect, Exchange, Message, Outcome, Timings
from monitor.routes import model_of
from monitor.secrets import scrub_model
from monitor.sse import parse_events


class Capture(BaseModel):
    """Raw facts about one exchange, collected on the request path.

    Built with `model_construct` there (no validation cost); validated when read back from a
    spill file. Bytes are base64 in JSON.
    """

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    kind: str = "capture"
    id: str
    time: datetime
    dialect: Dialect
    path: str
    request: dict[str, Any] | None = None
    status: int
    outcome: Outcome
    error: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    upstream_request_id: str | None = None
    body: bytes = b""
    truncated: bool = Field(False, description="the response was longer than the record keeps (body is its start)")
    timings: Timings = Field(default_factory=Timings)
    # Set by cue experiments: experiment, arm, mode, probability, pair id, cue, origin, probe.
    labels: dict[str, Any] = Field(default_factory=dict)
    # The request as the client sent it, when the proxy has the bytes (spill files keep these
    # rather than re-encoding `request`, which may be nested deeper than a JSON writer goes).
    request_body: bytes | None = None

    def to_line(self) -> bytes:
        """One spill or journal line; `from_line` reads it back, whatever the request's depth.
        Written with orjson directly: it runs on the request path (the journal), where pydantic's
        serializer cost twice as much."""
        raw = self.request_body
        if raw is None and self.request is not None:
            raw = _dumps(self.request)
        return orjson.dumps(
            {
                "kind": "capture",
                "id": self.id,
                "time": self.time,
                "dialect": self.dialect,
                "path": self.path,
                "status": self.status,
                "outcome": self.outcome,
                "error": self.error,
                "content_type": self.content_type,
                "content_encoding": self.content_encoding,
                "upstream_request_id": self.upstream_request_id,
                "body": base64.b64encode(self.body).decode(),
                "truncated": self.truncated,
                "timings": self.timings.__dict__,
                "labels": self.labels,
                "request_body": base64.b64encode(raw).decode() if raw is not None else None,
            },
            default=str,
        )

    @classmethod
    def from_line(cls, line: bytes) -> Capture:
        cap = cls.model_validate_json(line)
        if cap.request_body is not None:
            request = _loads(cap.request_body)
            cap.request = request if isinstance(request, dict) else None
        return cap

    @classmethod
    def start(
        cls, id: str, time: datetime, dialect: Dialect, path: str, request: dict[str, Any], labels: dict[str, Any]
    ) -> Capture:
        """A capture for a request about to be sent (no validation: built on the request path)."""
        return cls.model_construct(
            id=id,
            time=time,
            dialect=dialect,
            path=path,
            request=request,
            status=0,
            outcome="ok",
            error=None,
            content_type=None,
            content_encoding=None,
            upstream_request_id=None,
            body=b"",
            truncated=False,
            timings=Timings(),
            labels=labels,
            request_body=None,
        )


RECORD_MAX_BYTES = 16 * 1024 * 1024


def to_exchange(
    cap: Capture, *, redact_prompts: bool = False, redact_secrets: bool = True, max_bytes: int = RECORD_MAX_BYTES
) -> Exchange:
    """Normalise a capture into the exchange record.

    A body the readers cannot make sense of still gives a record, with what could be read, the
    reason in `error`, `unparsed` set and the raw text kept (unless prompts are redacted): nothing
    the proxy forwarded goes unrecorded. At most `max_bytes` of the decompressed response are read.
    With `redact_secrets`, anything that looks like a credential is replaced in every text field.
    """
    req = cap.request or {}
    unread: list[str] = []
    raw_request: str | None = None
    try:
        messages = dialects.request_messages(cap.dialect, req)
        tools = dialects.request_tools(cap.dialect, req)
    except Exception as exc:  # a request shape no reader expected: keep the record, say why
        messages, tools = [], []
        unread.append(f"request not normalised ({type(exc).__name__}: {str(exc)[:200]})")
        if not redact_prompts:
            raw = cap.request_body if cap.request_body is not None else _dumps(req)
            raw_request = raw[:max_bytes].decode("utf-8", "replace") if raw is not None else None
    if redact_prompts:
        messages = [_redact(m) for m in messages]
    stream = bool(req.get("stream")) or (cap.content_type or "").startswith("text/event-stream")
    ex = Exchange(
        id=cap.id,
        time=cap.time,
        dialect=cap.dialect,
        path=cap.path,
        model=model_of(req, cap.path),
        stream=stream,
        messages=messages,
        tools=tools,
        status=cap.status,
        outcome=cap.outcome,
        error=cap.error,
        timings=cap.timings,
        upstream_request_id=cap.upstream_request_id,
        redacted=redact_prompts,
        truncated=cap.truncated,
        raw_request=raw_request,
        **{k: v for k, v in cap.labels.items() if k in Exchange.model_fields},
    )
    try:
        _read_response(ex, cap, max_bytes)
    except Exception as exc:  # the same for a response
        unread.append(f"response not normalised ({type(exc).__name__}: {str(exc)[:200]})")
        ex.raw_response = _excerpt(cap.body, max_bytes)
    if unread:
        ex.unparsed = True
        ex.error = "; ".join([*([ex.error] if ex.error else []), *unread])
    if redact_secrets:  # prompts, answers and upstream errors may quote a credential
        scrub_model(ex)
    return ex


def _read_response(ex: Exchange, cap: Capture, max_bytes: int) -> None:
    """Fill the response fields of `ex` from the captured body (its first `max_bytes`)."""
    if not cap.body:
        return
    body, note = _decode(cap.body, cap.content_encoding, max_bytes)
    if body is None:
        ex.error = ex.error or note
        return
    if len(body) > max_bytes:
        body = body[:max_bytes]
        ex.truncated = True
    if ex.truncated:
        note = f"response longer than record_max_bytes ({max_bytes}): only its start was read"
        ex.error = f"{ex.error}; {note}" if ex.error else note
    if (cap.content_type or "").startswith("text/event-stream"):
        parsed = dialects.parse_stream(cap.dialect, parse_events([body]))
        if parsed.error:
            ex.error = parsed.error
            if ex.outcome == "ok":
                ex.outcome = "stream_error"
    else:
        doc = _loads(body)
        if ex.outcome != "ok" or not isinstance(doc, dict):
            ex.error = ex.error or dialects.error_message(doc) or _excerpt(body)
            return
        parsed = dialects.parse_response(cap.dialect, doc)
        ex.error = ex.error or parsed.error  # e.g. a Responses API body with status `failed`
    ex.response_text = parsed.text
    ex.reasoning = parsed.reasoning
    ex.redacted_reasoning_blocks = parsed.redacted_reasoning_blocks
    ex.tool_calls = parsed.tool_calls
    ex.finish_reason = parsed.finish_reason
    ex.usage = parsed.usage
    ex.choices = parsed.choices


def _decode(body: bytes, encoding: str | None, limit: int) -> tuple[bytes | None, str | None]:
    """The body without its content-encoding(s), applied in order, so undone in reverse; each
    step stops after `limit` + 1 bytes of output (a decompression bomb is cut, not expanded)."""
    for enc in reversed([e.strip().lower() for e in (encoding or "").split(",") if e.strip()]):
        try:
            body = _undo(body, enc, limit + 1)
        except _UNDECODABLE as exc:
            return None, f"response body could not be decompressed ({enc}): {exc}"
        except LookupError:
            return None, f"response content-encoding {enc!r} is not decoded by cuewatch"
    return body, None


def _undo(body: bytes, enc: str, limit: int) -> bytes:
    """Undo one content-encoding, producing at most `limit` bytes. A stream that ends before
    its end marker (and before the limit) is an error, as a one-shot decompressor would say."""
    if enc == "identity":
        return body
    if enc in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
        try:
            z = zlib.decompressobj(wbits=wbits)
            out = z.decompress(body, limit)
        except zlib.error:
            if enc != "deflate":
                raise
            z = zlib.decompressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, as some servers send
            out = z.decompress(body, limit)
        if not z.eof and len(out) < limit:
            raise zlib.error("incomplete or truncated stream")
        return out
    if enc == "br":
        d = brotli.Decompressor()
        out = bytes(d.process(body, output_buffer_limit=limit))[:limit]
        if not d.is_finished() and len(out) < limit:
            raise brotli.error("incomplete or truncated stream")
        return out
    if enc == "zstd":
        # Streamed frames may not state their size up front, so read the frame up to the limit.
        with zstandard.ZstdDecompressor().stream_reader(body) as reader:
            return reader.read(limit)
    raise LookupError(enc)


_UNDECODABLE = (zlib.error, brotli.error, zstandard.ZstdError)


def _dumps(doc: Any) -> bytes | None:
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:  # deeper than 255 levels
        return None


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _excerpt(body: bytes, n: int = 500) -> str:
    """The start of a body as text, for an error message or a raw field."""
    return body[:n].decode("utf-8", "replace")


def _redact(m: Message) -> Message:
    digest = hashlib.sha256(m.text.encode()).hexdigest()[:16]
    return m.model_copy(update={"text": f"[redacted len={len(m.text)} sha256={digest}]"})
