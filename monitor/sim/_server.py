"""The simulated upstream: a raw ASGI app speaking OpenAI chat completions and Anthropic
messages, streamed (SSE) and not, with its behaviour set by a profile.

Test affordances (never used by real clients):
- `x-sim-fault` request header, comma-separated: `status=429`, `retry-after=2`, `delay=5`
  (seconds before the headers), `disconnect-after=N` (drop the connection after N body chunks),
  `stall-after=N` (stop sending after N chunks, keep the connection open), `error-event`
  (a 200 stream that ends with the dialect's error event).
- `GET /_sim/requests` lists the requests received: the body (what prompt the model saw), the
  `x-request-id` it answered with, the SHA-256 of the body bytes it sent, and the ground truth
  of its behaviour (cue condition seen, category of reply); `DELETE /_sim/requests` clears it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import deque
from typing import Any

import orjson

from monitor._asgi import Receive, Scope, Send, header, read_body, send_json
from monitor.dialects import request_messages
from monitor.sim._behaviour import Reply, decide
from monitor.sim.profiles import Profile

_FAULT = b"x-sim-fault"


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
        if method == "POST" and path == "/v1/chat/completions":
            await self._chat(scope, receive, send, "openai")
        elif method == "POST" and path == "/v1/messages":
            await self._chat(scope, receive, send, "anthropic")
        elif path == "/v1/models":
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
        entry: dict[str, Any] = {"dialect": dialect, "body": req}
        self.requests.append(entry)
        faults = _faults(header(scope["headers"], _FAULT))
        if "delay" in faults:
            await asyncio.sleep(float(faults["delay"]))
        if "status" in faults:
            status = int(faults["status"])
            extra = [(b"retry-after", faults["retry-after"].encode())] if "retry-after" in faults else []
            await send_json(send, status, _error(dialect, status, "simulated upstream error"), extra)
            return
        self.count += 1
        p = self.profile
        behaviour = p.drift.behaviour if p.drift and self.count > p.drift.after_requests else p.behaviour
        tools = [t for t in req.get("tools") or [] if isinstance(t, dict)]
        reply = decide(p, behaviour, self.rng, request_messages(dialect, req), tools)
        if p.latency_ms:
            await asyncio.sleep(p.latency_ms / 1000.0)
        model = str(req.get("model") or "sim-model")
        ident = f"{self.rng.getrandbits(64):016x}"
        if dialect == "openai":
            frames = _openai_stream(reply, req, model, ident, p) if req.get("stream") else None
            doc = None if frames else _openai_body(reply, req, model, ident, p)
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


def _error(dialect: str, status: int, message: str) -> dict[str, Any]:
    if dialect == "anthropic":
        kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _error_frame(dialect: str) -> bytes:
    if dialect == "anthropic":
        err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"
    return b"data: " + orjson.dumps({"error": {"message": "stream interrupted", "type": "server_error"}}) + b"\n\n"


def _pieces(text: str, size: int) -> list[str]:
    """Split text into chunks of about `size` characters at word boundaries."""
    out: list[str] = []
    cur = ""
    for word in text.split(" "):
        cur = f"{cur} {word}" if cur else word
        if len(cur) >= size:
            out.append(cur + " ")
            cur = ""
    if cur:
        out.append(cur)
    elif out:
        out[-1] = out[-1].rstrip(" ")
    return out


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _prompt_tokens(req: dict[str, Any]) -> int:
    return max(1, len(orjson.dumps(req.get("messages", []))) // 4)


def _reasoning_in_text(reply: Reply, behaviour_mode: str, native_available: bool) -> bool:
    if not reply.reasoning or behaviour_mode == "none":
        return False
    return behaviour_mode == "tags" or not native_available


def _layout(reply: Reply, p: Profile, native_available: bool) -> tuple[str, str | None]:
    """(text, native reasoning) for a reply under the profile's reasoning placement."""
    mode = p.behaviour.reasoning
    if not reply.reasoning or mode == "none":
        return reply.text, None
    if _reasoning_in_text(reply, mode, native_available):
        return f"<SCRATCHPAD_REASONING>\n{reply.reasoning}\n</SCRATCHPAD_REASONING>\n\n{reply.text}", None
    return reply.text, reply.reasoning


# ---------------------------------------------------------------------- OpenAI


def _openai_body(reply: Reply, req: dict[str, Any], model: str, ident: str, p: Profile) -> dict[str, Any]:
    text, reasoning = _layout(reply, p, native_available=True)
    msg: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if reasoning:
        msg["reasoning_content"] = reasoning
    finish = "stop"
    if reply.tool_name:
        msg["content"] = None
        msg["tool_calls"] = [
            {
                "id": f"call_{ident}",
                "type": "function",
                "function": {"name": reply.tool_name, "arguments": reply.tool_args},
            }
        ]
        finish = "tool_calls"
    out = _tokens(text) + _tokens(reasoning or "")
    return {
        "id": f"chatcmpl-{ident}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": _prompt_tokens(req),
            "completion_tokens": out,
            "total_tokens": _prompt_tokens(req) + out,
        },
    }


def _openai_stream(reply: Reply, req: dict[str, Any], model: str, ident: str, p: Profile) -> list[bytes]:
    text, reasoning = _layout(reply, p, native_available=True)
    base = {
        "id": f"chatcmpl-{ident}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        doc = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    frames = [chunk({"role": "assistant", "content": ""})]
    for piece in _pieces(reasoning or "", p.chunk_chars):
        frames.append(chunk({"reasoning_content": piece}))
    finish = "stop"
    if reply.tool_name:
        frames.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": f"call_{ident}",
                            "type": "function",
                            "function": {"name": reply.tool_name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in _pieces(reply.tool_args or "", p.chunk_chars):
            frames.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        finish = "tool_calls"
    else:
        for piece in _pieces(text, p.chunk_chars):
            frames.append(chunk({"content": piece}))
    frames.append(chunk({}, finish))
    if (req.get("stream_options") or {}).get("include_usage"):
        out = _tokens(text) + _tokens(reasoning or "")
        usage = {
            "prompt_tokens": _prompt_tokens(req),
            "completion_tokens": out,
            "total_tokens": _prompt_tokens(req) + out,
        }
        frames.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


# ---------------------------------------------------------------------- Anthropic


def _thinking_enabled(req: dict[str, Any]) -> bool:
    t = req.get("thinking")
    return isinstance(t, dict) and t.get("type") in ("enabled", "adaptive")


def _anthropic_body(reply: Reply, req: dict[str, Any], model: str, ident: str, p: Profile) -> dict[str, Any]:
    text, reasoning = _layout(reply, p, native_available=_thinking_enabled(req))
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
        "usage": {"input_tokens": _prompt_tokens(req), "output_tokens": _tokens(text) + _tokens(reasoning or "")},
    }


def _anthropic_stream(reply: Reply, req: dict[str, Any], model: str, ident: str, p: Profile) -> list[bytes]:
    text, reasoning = _layout(reply, p, native_available=_thinking_enabled(req))

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
                    "usage": {"input_tokens": _prompt_tokens(req), "output_tokens": 1},
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
        for piece in _pieces(reasoning, p.chunk_chars):
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
        for piece in _pieces(reply.tool_args or "", p.chunk_chars):
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
        for piece in _pieces(text, p.chunk_chars):
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
                "usage": {"output_tokens": _tokens(text) + _tokens(reasoning or "")},
            },
        )
    )
    frames.append(ev("message_stop", {"type": "message_stop"}))
    return frames
