"""The simulated upstream: a raw ASGI app speaking OpenAI chat completions and Anthropic
messages, streamed (SSE) and not, with its behaviour set by a profile.

Test affordances (never used by real clients):
- `x-sim-fault` request header, comma-separated: `status=429`, `retry-after=2`, `delay=5`
  (seconds before the headers), `disconnect-after=N` (drop the connection after N body chunks),
  `stall-after=N` (stop sending after N chunks, keep the connection open), `error-event`
  (a 200 stream that ends with the dialect's error event), `echo-key` (with `status`: the error
  message quotes the request's key, as providers' do), `encoding=br|zstd|gzip` (a
  non-streamed body compressed so; `n` choices are answered for OpenAI `n`).
- `GET /_sim/requests` lists the requests received: the body (what prompt the model saw), the
  `x-request-id` it answered with, the SHA-256 of the body bytes it sent, and the ground truth
  of its behaviour (cue condition seen, category of reply); `DELETE /_sim/requests` clears it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import random
import time
from collections import deque
from typing import Any

import brotli
import orjson
import zstandard

from monitor.asgi import Receive, Scope, Send, header, read_body, send_json
from monitor.dialects import request_messages
from monitor.sim._behaviour import Reply, decide
from monitor.sim._responses import responses_body, responses_stream
from monitor.sim._shapes import layout, pieces, prefix_tokens, prompt_tokens, tokens
from monitor.sim.profiles import Profile

_FAULT = b"x-sim-fault"
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "messages": list,
    "input": (list, str),
    "tools": list,
    "metadata": dict,  # the Responses API echoes it back: a map of short strings
}


class _Drop(Exception):
    """End the response by dropping the connection."""


class SimApp:
    """ASGI app of the simulated upstream."""

    def __init__(self, profile: Profile, *, seed: int | None = None, keep_requests: int = 10_000) -> None:
        self.profile = profile
        self.rng = random.Random(profile.seed if seed is None else seed)
        self.requests: deque[dict[str, Any]] = deque(maxlen=keep_requests)
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        # Model calls by their last segments, so any base path works (/v1, none, /openai/deployments/x).
        if method == "POST" and path.endswith("/chat/completions"):
            await self._chat(scope, receive, send, "openai")
        elif method == "POST" and path.endswith("/responses"):
            await self._chat(scope, receive, send, "responses")
        elif method == "POST" and path.endswith("/v1/messages"):
            await self._chat(scope, receive, send, "anthropic")
        elif path.endswith("/models"):
            await send_json(
                send,
                200,
                {
                    "object": "list",
                    "data": [{"id": "sim-model", "object": "model", "created": 0, "owned_by": "cuewatch-sim"}],
                },
            )
        elif path == "/_sim/requests":
            if method == "DELETE":
                self.requests.clear()
            await send_json(send, 200, list(self.requests))
        elif path in ("/", "/healthz"):
            await send_json(send, 200, {"sim": self.profile.name, "requests": self.count})
        else:
            await send_json(send, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    # ------------------------------------------------------------------ chat

    async def _chat(self, scope: Scope, receive: Receive, send: Send, dialect: str) -> None:
        body = await read_body(receive, 64 * 1024 * 1024, None)
        try:
            req = orjson.loads(body)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            await send_json(send, 400, _error(dialect, 400, "invalid JSON body"))
            return
        query = scope.get("query_string", b"").decode("latin-1")
        entry: dict[str, Any] = {"dialect": dialect, "path": scope["path"], "query": query, "body": _listable(req)}
        self.requests.append(entry)
        wrong = next((k for k, kind in _FIELD_TYPES.items() if k in req and not isinstance(req[k], kind)), None)
        if wrong is None and isinstance(req.get("metadata"), dict):
            wrong = "metadata" if not all(isinstance(v, str) for v in req["metadata"].values()) else None
        if wrong is not None:  # as the real APIs answer a field of the wrong type
            await send_json(send, 400, _error(dialect, 400, f"{wrong}: wrong type"))
            return
        faults = _faults(header(scope["headers"], _FAULT))
        if "delay" in faults:
            await asyncio.sleep(float(faults["delay"]))
        if "status" in faults:
            status = int(faults["status"])
            extra = [(b"retry-after", faults["retry-after"].encode())] if "retry-after" in faults else []
            message = "simulated upstream error"
            if "echo-key" in faults:  # as providers do: "Incorrect API key provided: sk-..."
                key = header(scope["headers"], b"x-api-key") or header(scope["headers"], b"authorization") or b""
                message = f"Incorrect API key provided: {key.decode('latin-1').removeprefix('Bearer ')}"
            await send_json(send, status, _error(dialect, status, message), extra)
            return
        self.count += 1
        p = self.profile
        behaviour = p.drift.behaviour if p.drift and self.count > p.drift.after_requests else p.behaviour
        tools = [t for t in req.get("tools", []) if isinstance(t, dict) and t.get("type", "function") == "function"]
        messages = request_messages(dialect, req)
        reply = decide(p, behaviour, self.rng, messages, tools)
        n = req["n"] if dialect == "openai" and isinstance(req.get("n"), int) else 1
        replies = [reply, *(decide(p, behaviour, self.rng, messages, tools) for _ in range(min(n, 8) - 1))]
        if p.latency_ms:
            await asyncio.sleep(p.latency_ms / 1000.0)
        model = str(req.get("model") or "sim-model")
        ident = f"{self.rng.getrandbits(64):016x}"
        if dialect == "openai":
            frames = _openai_stream(replies, req, model, ident, p) if req.get("stream") else None
            doc = None if frames else _openai_body(replies, req, model, ident, p)
        elif dialect == "responses":
            frames = responses_stream(reply, req, model, ident, p) if req.get("stream") else None
            doc = None if frames else responses_body(reply, req, model, ident, p)
        else:
            frames = _anthropic_stream(reply, req, model, ident, p) if req.get("stream") else None
            doc = None if frames else _anthropic_body(reply, req, model, ident, p)
        headers = [(b"x-request-id", f"req_{ident}".encode())]
        entry.update(request_id=f"req_{ident}", truth={"condition": reply.condition, "category": reply.category})
        try:
            if frames is not None:
                await self._stream(send, frames, faults, dialect, headers, entry)
            else:
                data = orjson.dumps(doc)
                entry["sent_sha256"] = hashlib.sha256(data).hexdigest()
                if "disconnect-after" in faults:
                    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
                    raise _Drop
                if "encoding" in faults:  # a compressed body, as upstreams send when clients accept it
                    data = _compress(data, faults["encoding"])
                    headers += [
                        (b"content-type", b"application/json"),
                        (b"content-encoding", faults["encoding"].encode()),
                    ]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": data, "more_body": False})
                    return
                await send_json(send, 200, doc, headers)
        except _Drop:
            return  # returning mid-response makes the server close the connection

    async def _stream(
        self,
        send: Send,
        frames: list[bytes],
        faults: dict[str, str],
        dialect: str,
        headers: list[tuple[bytes, bytes]],
        entry: dict[str, Any],
    ) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"), *headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        gap = self.profile.chunk_interval_ms / 1000.0
        cut = int(faults.get("disconnect-after", faults.get("stall-after", -1)))
        if "error-event" in faults:
            frames = [*frames[: max(1, len(frames) // 2)], _error_frame(dialect)]
        digest = hashlib.sha256()
        for i, frame in enumerate(frames):
            if i == cut:
                entry["sent_sha256"] = digest.hexdigest()
                if "stall-after" in faults:
                    await asyncio.sleep(3600)
                raise _Drop
            if gap and i:
                await asyncio.sleep(gap)
            digest.update(frame)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        entry["sent_sha256"] = digest.hexdigest()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# ---------------------------------------------------------------------- helpers


def _faults(raw: bytes | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (raw or b"").decode("latin-1").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            out[key] = value
    return out


def _listable(req: dict[str, Any]) -> Any:
    """The body as /_sim/requests will list it (a body nested deeper than orjson writes is
    replaced by a note, so the listing still works)."""
    try:
        orjson.dumps(req)
    except orjson.JSONEncodeError:
        return {"unlistable": "nested deeper than 255 levels"}
    return req


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(data))
    if encoding == "zstd":
        return bytes(zstandard.ZstdCompressor().compress(data))
    return gzip.compress(data)


def _error(dialect: str, status: int, message: str) -> dict[str, Any]:
    if dialect == "anthropic":
        kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _error_frame(dialect: str) -> bytes:
    err: dict[str, Any]
    if dialect == "responses":
        err = {"type": "error", "code": "server_error", "message": "stream interrupted", "param": None}
        return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"
    if dialect == "anthropic":
        err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"
    return b"data: " + orjson.dumps({"error": {"message": "stream interrupted", "type": "server_error"}}) + b"\n\n"


# ---------------------------------------------------------------------- OpenAI


def _openai_usage(req: dict[str, Any], out: int) -> dict[str, Any]:
    inp = prompt_tokens(req)
    return {
        "prompt_tokens": inp,
        "completion_tokens": out,
        "total_tokens": inp + out,
        "prompt_tokens_details": {"cached_tokens": prefix_tokens(req)},
    }


def _openai_message(reply: Reply, p: Profile, ident: str) -> tuple[dict[str, Any], str, int]:
    """(message, finish reason, output tokens) of one choice."""
    text, reasoning = layout(reply, p, native_available=True)
    msg: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if reasoning:
        msg["reasoning_content"] = reasoning
    if not reply.tool_name:
        return msg, "stop", tokens(text) + tokens(reasoning or "")
    msg["content"] = None
    call = {
        "id": f"call_{ident}",
        "type": "function",
        "function": {"name": reply.tool_name, "arguments": reply.tool_args},
    }
    msg["tool_calls"] = [call]
    return msg, "tool_calls", tokens(text) + tokens(reasoning or "")


def _openai_body(replies: list[Reply], req: dict[str, Any], model: str, ident: str, p: Profile) -> dict[str, Any]:
    choices, out = [], 0
    for i, reply in enumerate(replies):
        msg, finish, n = _openai_message(reply, p, f"{ident}{i}")
        choices.append({"index": i, "message": msg, "logprobs": None, "finish_reason": finish})
        out += n
    return {
        "id": f"chatcmpl-{ident}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _openai_usage(req, out),
    }


def _openai_stream(replies: list[Reply], req: dict[str, Any], model: str, ident: str, p: Profile) -> list[bytes]:
    base = {
        "id": f"chatcmpl-{ident}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }
    frames: list[bytes] = []
    out = 0
    for i, reply in enumerate(replies):

        def chunk(delta: dict[str, Any], finish: str | None = None, i: int = i) -> bytes:
            doc = {**base, "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            return b"data: " + orjson.dumps(doc) + b"\n\n"

        msg, finish, n = _openai_message(reply, p, f"{ident}{i}")
        out += n
        frames.append(chunk({"role": "assistant", "content": ""}))
        for piece in pieces(msg.get("reasoning_content") or "", p.chunk_chars):
            frames.append(chunk({"reasoning_content": piece}))
        for call in msg.get("tool_calls") or []:
            frames.append(
                chunk({"tool_calls": [{"index": 0, **call, "function": {**call["function"], "arguments": ""}}]})
            )
            for piece in pieces(call["function"]["arguments"] or "", p.chunk_chars):
                frames.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        for piece in pieces(msg["content"] or "", p.chunk_chars):
            frames.append(chunk({"content": piece}))
        frames.append(chunk({}, finish))
    if (req.get("stream_options") or {}).get("include_usage"):
        usage = _openai_usage(req, out)
        frames.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


# ---------------------------------------------------------------------- Anthropic


def _anthropic_input(req: dict[str, Any]) -> dict[str, int]:
    """Anthropic counts cached input apart from input_tokens."""
    cached = prefix_tokens(req)
    return {
        "input_tokens": max(1, prompt_tokens(req) - cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _thinking_enabled(req: dict[str, Any]) -> bool:
    t = req.get("thinking")
    return isinstance(t, dict) and t.get("type") in ("enabled", "adaptive")


def _anthropic_body(reply: Reply, req: dict[str, Any], model: str, ident: str, p: Profile) -> dict[str, Any]:
    text, reasoning = layout(reply, p, native_available=_thinking_enabled(req))
    content: list[dict[str, Any]] = []
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": f"sig{ident}"})
    stop = "end_turn"
    if reply.tool_name:
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{ident}",
                "name": reply.tool_name,
                "input": orjson.loads(reply.tool_args or "{}"),
            }
        )
        stop = "tool_use"
    else:
        content.append({"type": "text", "text": text})
    return {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {**_anthropic_input(req), "output_tokens": tokens(text) + tokens(reasoning or "")},
    }


def _anthropic_stream(reply: Reply, req: dict[str, Any], model: str, ident: str, p: Profile) -> list[bytes]:
    text, reasoning = layout(reply, p, native_available=_thinking_enabled(req))

    def ev(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    frames = [
        ev(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{ident}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**_anthropic_input(req), "output_tokens": 1},
                },
            },
        ),
        ev("ping", {"type": "ping"}),
    ]
    index = 0
    if reasoning:
        frames.append(
            ev(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            )
        )
        for piece in pieces(reasoning, p.chunk_chars):
            frames.append(
                ev(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    },
                )
            )
        frames.append(
            ev(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": f"sig{ident}"},
                },
            )
        )
        frames.append(ev("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    stop = "end_turn"
    if reply.tool_name:
        frames.append(
            ev(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": f"toolu_{ident}", "name": reply.tool_name, "input": {}},
                },
            )
        )
        for piece in pieces(reply.tool_args or "", p.chunk_chars):
            frames.append(
                ev(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
            )
        stop = "tool_use"
    else:
        frames.append(
            ev(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
        )
        for piece in pieces(text, p.chunk_chars):
            frames.append(
                ev(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
                )
            )
    frames.append(ev("content_block_stop", {"type": "content_block_stop", "index": index}))
    frames.append(
        ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": tokens(text) + tokens(reasoning or "")},
            },
        )
    )
    frames.append(ev("message_stop", {"type": "message_stop"}))
    return frames
