"""OpenAI chat completions and Anthropic messages: request and response bodies, and streams."""

from __future__ import annotations

from typing import Any

from monitor.dialects._common import (
    JSON,
    ParsedResponse,
    as_dict,
    as_int,
    as_list,
    as_str,
    content_text,
    details,
    dumps,
    error_message,
    loads,
    part_text,
)
from monitor.records import Choice, Message, ToolCall, Usage
from monitor.sse import Event

_OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool"}


# --------------------------------------------------------------------------- requests


def request_messages(dialect: str, req: JSON) -> list[Message]:
    """The conversation of a request as normalised messages (system first)."""
    if dialect == "anthropic":
        return _anthropic_messages(req)
    return _openai_messages(req)


def request_tools(dialect: str, req: JSON) -> list[str]:
    """Names of the tools a request offers."""
    names: list[str] = []
    for tool in as_list(req.get("tools")):
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function") if dialect == "openai" else None
        name = (fn or tool).get("name") if isinstance(fn or tool, dict) else None
        if isinstance(name, str):
            names.append(name)
    for fn in as_list(req.get("functions")):  # legacy OpenAI function calling
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _openai_messages(req: JSON) -> list[Message]:
    out: list[Message] = []
    for m in as_list(req.get("messages")):
        if not isinstance(m, dict):
            continue
        role = as_str(m.get("role"))  # a set lookup of a list would raise
        role = "tool" if role == "function" else role
        if role not in _OPENAI_ROLES:
            role = "user"
        calls = [c for c in (_openai_tool_call(tc) for tc in as_list(m.get("tool_calls"))) if c]
        if isinstance(m.get("function_call"), dict):
            fc = m["function_call"]
            calls.append(ToolCall(name=str(fc.get("name", "")), arguments=str(fc.get("arguments", ""))))
        out.append(
            Message(
                role=role,
                text=content_text(m.get("content")),
                tool_calls=calls,
                tool_call_id=as_str(m.get("tool_call_id")),
            )
        )
    return out


def _openai_tool_call(tc: Any) -> ToolCall | None:
    if not isinstance(tc, dict):
        return None
    fn = tc.get("function") or {}
    if not isinstance(fn, dict):
        return None
    return ToolCall(
        id=as_str(tc.get("id")),
        name=str(fn.get("name", "")),
        arguments=str(fn.get("arguments", "")),
    )


def _anthropic_messages(req: JSON) -> list[Message]:
    out: list[Message] = []
    system = req.get("system")
    if system:
        out.append(Message(role="system", text=content_text(system)))
    for m in as_list(req.get("messages")):
        if not isinstance(m, dict):
            continue
        role = "assistant" if m.get("role") == "assistant" else "user"
        content = m.get("content")
        if not isinstance(content, list):
            out.append(Message(role=role, text=content_text(content)))
            continue
        texts: list[str] = []
        calls: list[ToolCall] = []
        results: list[Message] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_use":
                calls.append(
                    ToolCall(
                        id=as_str(block.get("id")),
                        name=str(block.get("name", "")),
                        arguments=dumps(block.get("input", {})),
                    )
                )
            elif kind == "tool_result":
                results.append(
                    Message(
                        role="tool",
                        text=content_text(block.get("content")),
                        tool_call_id=as_str(block.get("tool_use_id")),
                    )
                )
            else:
                t = part_text(block)
                if t:
                    texts.append(t)
        out.extend(results)
        if texts or calls or not results:
            out.append(Message(role=role, text="\n".join(texts), tool_calls=calls))
    return out


# -------------------------------------------------------------------------- responses


def parse_response(dialect: str, body: JSON) -> ParsedResponse:
    """A complete (non-streamed) response body."""
    if dialect == "anthropic":
        return _anthropic_response(body)
    return _openai_response(body)


def parse_stream(dialect: str, events: list[Event]) -> ParsedResponse:
    """A streamed response, from its SSE events."""
    if dialect == "anthropic":
        return _anthropic_stream(events)
    return _openai_stream(events)


def _openai_usage(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    return Usage(
        input_tokens=as_int(u.get("prompt_tokens")),
        output_tokens=as_int(u.get("completion_tokens")),
        reasoning_tokens=as_int(details(u, "completion_tokens_details").get("reasoning_tokens")),
        cache_read_tokens=as_int(details(u, "prompt_tokens_details").get("cached_tokens")),
    )


_REASONING_KEYS = ("reasoning_content", "reasoning")


def _reasoning_field(obj: JSON) -> str | None:
    for key in _REASONING_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _first_and_all(out: ParsedResponse, choices: list[Choice]) -> ParsedResponse:
    """Choice 0 fills the response fields; all choices are kept when there were several."""
    choices.sort(key=lambda c: c.index)
    if choices:
        first = choices[0]
        out.text, out.reasoning, out.tool_calls, out.finish_reason = (
            first.text,
            first.reasoning,
            first.tool_calls,
            first.finish_reason,
        )
    if len(choices) > 1:
        out.choices = choices
    return out


def _openai_response(body: JSON) -> ParsedResponse:
    out = ParsedResponse(usage=_openai_usage(body.get("usage")))
    choices: list[Choice] = []
    for i, choice in enumerate(body.get("choices") or []):
        if not isinstance(choice, dict):
            continue
        msg = as_dict(choice.get("message"))
        content = msg.get("content")
        choices.append(
            Choice(
                index=as_int(choice.get("index")) or i,
                text=content_text(content) if content is not None else as_str(msg.get("refusal")),
                reasoning=_reasoning_field(msg),
                tool_calls=[c for c in (_openai_tool_call(tc) for tc in as_list(msg.get("tool_calls"))) if c],
                finish_reason=as_str(choice.get("finish_reason")),
            )
        )
    return _first_and_all(out, choices)


def _openai_stream(events: list[Event]) -> ParsedResponse:
    out = ParsedResponse()
    slots: dict[int, dict[str, Any]] = {}
    for ev in events:
        if ev.data == "[DONE]":
            continue
        chunk = loads(ev.data)
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk or ev.event == "error":
            out.error = error_message(chunk) or ev.data[:500]
            continue
        if chunk.get("usage"):
            out.usage = _openai_usage(chunk["usage"])
        for choice in as_list(chunk.get("choices")):
            if not isinstance(choice, dict):
                continue
            index = as_int(choice.get("index")) or 0
            slot = slots.get(index)  # a stream has one chunk per token: no new dict for each
            if slot is None:
                slot = slots[index] = {"text": [], "reasoning": [], "calls": {}, "finish": None}
            delta = as_dict(choice.get("delta"))
            if isinstance(delta.get("content"), str):
                slot["text"].append(delta["content"])
            elif isinstance(delta.get("refusal"), str):
                slot["text"].append(delta["refusal"])
            if any(key in delta for key in _REASONING_KEYS):
                r = _reasoning_field(delta)
                if r:
                    slot["reasoning"].append(r)
            for tc in as_list(delta.get("tool_calls")):
                if not isinstance(tc, dict):
                    continue
                call = slot["calls"].setdefault(as_int(tc.get("index")) or 0, {"id": "", "name": [], "args": []})
                call["id"] = as_str(tc.get("id")) or call["id"]
                fn = as_dict(tc.get("function"))
                call["name"].append(as_str(fn.get("name")) or "")  # pieces, joined once by _calls
                call["args"].append(as_str(fn.get("arguments")) or "")
            if choice.get("finish_reason"):
                slot["finish"] = as_str(choice["finish_reason"])
    choices = [
        Choice(
            index=index,
            text="".join(slot["text"]) if slot["text"] or not slot["calls"] else None,
            reasoning="".join(slot["reasoning"]) or None,
            tool_calls=_calls(slot["calls"]),
            finish_reason=slot["finish"],
        )
        for index, slot in slots.items()
    ]
    if not choices:
        out.text = ""
    return _first_and_all(out, choices)


def _calls(calls: dict[int, dict[str, Any]]) -> list[ToolCall]:
    """Tool calls assembled from stream fragments, in index order."""
    return [
        ToolCall(id=c["id"] or None, name="".join(c["name"]), arguments="".join(c["args"]))
        for _, c in sorted(calls.items())
    ]


def _anthropic_usage(u: Any, into: Usage | None = None) -> Usage:
    usage = into or Usage()
    if isinstance(u, dict):
        for key, attr in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_read_input_tokens", "cache_read_tokens"),
            ("cache_creation_input_tokens", "cache_write_tokens"),
        ):
            value = as_int(u.get(key))
            if value is not None:
                setattr(usage, attr, value)
    return usage


def _anthropic_blocks(blocks: list[Any], out: ParsedResponse) -> None:
    text: list[str] = []
    thinking: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "redacted_thinking":
            out.redacted_reasoning_blocks += 1
        elif kind in ("tool_use", "server_tool_use"):
            args = block.get("input", {})
            out.tool_calls.append(
                ToolCall(
                    id=as_str(block.get("id")),
                    name=str(block.get("name", "")),
                    arguments=args if isinstance(args, str) else dumps(args),
                )
            )
    out.text = "".join(text) if text or not out.tool_calls else None
    out.reasoning = "\n\n".join(thinking) if thinking else None


def _anthropic_response(body: JSON) -> ParsedResponse:
    out = ParsedResponse(usage=_anthropic_usage(body.get("usage")))
    _anthropic_blocks(as_list(body.get("content")), out)
    out.finish_reason = body.get("stop_reason")
    return out


def _anthropic_stream(events: list[Event]) -> ParsedResponse:
    out = ParsedResponse()
    blocks: dict[int, dict[str, Any]] = {}
    grown: dict[int, dict[str, list[str]]] = {}  # block -> its delta pieces, by field
    for ev in events:
        data = loads(ev.data)
        if not isinstance(data, dict):
            continue
        kind = data.get("type") or ev.event
        if kind == "message_start":
            _anthropic_usage((data.get("message") or {}).get("usage"), out.usage)
        elif kind == "content_block_start":
            block = dict(data.get("content_block") or {})
            if block.get("type") in ("tool_use", "server_tool_use"):
                block["input"] = ""  # filled from input_json_delta fragments
            index = int(data.get("index", len(blocks)))
            blocks[index] = block
            grown.pop(index, None)  # a block started again drops what its deltas had built
        elif kind == "content_block_delta":
            index = int(data.get("index", 0))
            if index not in blocks:
                blocks[index] = {"type": "text", "text": ""}
            delta = data.get("delta") or {}
            grows = _ANTHROPIC_DELTAS.get(str(delta.get("type")))
            if grows is not None:  # pieces joined once at the end: adding each to a string is quadratic
                grown.setdefault(index, {}).setdefault(grows[0], []).append(delta.get(grows[1], ""))
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason"):
                out.finish_reason = delta["stop_reason"]
            _anthropic_usage(data.get("usage"), out.usage)
        elif kind == "error":
            out.error = error_message(data) or ev.data[:500]
    for index, fields in grown.items():
        for field, pieces in fields.items():
            start = blocks[index].get(field, "")
            blocks[index][field] = (str(start) if field == "input" else start) + "".join(pieces)
    _anthropic_blocks([blocks[i] for i in sorted(blocks)], out)
    return out


# delta type -> (the block field it grows, the delta's key holding the piece)
_ANTHROPIC_DELTAS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "input_json_delta": ("input", "partial_json"),
}
