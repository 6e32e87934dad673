"""The simulated upstream's OpenAI Responses API: a Response object, or its event stream."""

from __future__ import annotations

import time
from typing import Any

import orjson

from monitor.sim._behaviour import Reply
from monitor.sim._shapes import layout, pieces, prefix_tokens, prompt_tokens, tokens
from monitor.sim.profiles import Profile

JSON = dict[str, Any]


def _items(reply: Reply, req: JSON, ident: str, p: Profile) -> tuple[list[JSON], str, str | None]:
    """The output items of a reply (reasoning summary, then a message or a function call)."""
    text, reasoning = layout(reply, p, native_available=isinstance(req.get("reasoning"), dict))
    items: list[JSON] = []
    if reasoning:
        items.append(
            {"type": "reasoning", "id": f"rs_{ident}", "summary": [{"type": "summary_text", "text": reasoning}]}
        )
    if reply.tool_name:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{ident}",
                "call_id": f"call_{ident}",
                "name": reply.tool_name,
                "arguments": reply.tool_args or "{}",
                "status": "completed",
            }
        )
    else:
        items.append(
            {
                "type": "message",
                "id": f"msg_{ident}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        )
    return items, text, reasoning


def _response(req: JSON, model: str, ident: str, output: list[JSON], status: str, usage: JSON | None) -> JSON:
    return {
        "id": f"resp_{ident}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        "instructions": req.get("instructions"),
        "metadata": req.get("metadata") or {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": "auto",
        "tools": req.get("tools") or [],
        "usage": usage,
    }


def _usage(req: JSON, text: str, reasoning: str | None) -> JSON:
    inp, out = prompt_tokens(req), tokens(text) + tokens(reasoning or "")
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": prefix_tokens(req)},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": tokens(reasoning) if reasoning else 0},
        "total_tokens": inp + out,
    }


def responses_body(reply: Reply, req: JSON, model: str, ident: str, p: Profile) -> JSON:
    items, text, reasoning = _items(reply, req, ident, p)
    return _response(req, model, ident, items, "completed", _usage(req, text, reasoning))


def responses_stream(reply: Reply, req: JSON, model: str, ident: str, p: Profile) -> list[bytes]:
    """The documented event sequence: created, in_progress, per item added/deltas/done, completed."""
    items, text, reasoning = _items(reply, req, ident, p)
    frames: list[bytes] = []

    def ev(kind: str, **data: Any) -> None:
        doc = {"type": kind, "sequence_number": len(frames), **data}
        frames.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n")

    ev("response.created", response=_response(req, model, ident, [], "in_progress", None))
    ev("response.in_progress", response=_response(req, model, ident, [], "in_progress", None))
    for index, item in enumerate(items):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            ev("response.output_item.added", output_index=index, item={**item, "summary": []})
            summary: JSON = {"type": "summary_text", "text": ""}
            ev("response.reasoning_summary_part.added", **at, summary_index=0, part=summary)
            for piece in pieces(reasoning or "", p.chunk_chars):
                ev("response.reasoning_summary_text.delta", **at, summary_index=0, delta=piece)
            ev("response.reasoning_summary_text.done", **at, summary_index=0, text=reasoning)
            ev("response.reasoning_summary_part.done", **at, summary_index=0, part=item["summary"][0])
        elif item["type"] == "function_call":
            ev(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for piece in pieces(item["arguments"], p.chunk_chars):
                ev("response.function_call_arguments.delta", **at, delta=piece)
            ev("response.function_call_arguments.done", **at, arguments=item["arguments"])
        else:
            ev("response.output_item.added", output_index=index, item={**item, "content": [], "status": "in_progress"})
            part: JSON = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            ev("response.content_part.added", **at, content_index=0, part=part)
            for piece in pieces(text, p.chunk_chars):
                ev("response.output_text.delta", **at, content_index=0, delta=piece, logprobs=[])
            ev("response.output_text.done", **at, content_index=0, text=text, logprobs=[])
            ev("response.content_part.done", **at, content_index=0, part=item["content"][0])
        ev("response.output_item.done", output_index=index, item=item)
    ev("response.completed", response=_response(req, model, ident, items, "completed", _usage(req, text, reasoning)))
    return frames
