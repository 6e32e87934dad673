"""Read OpenAI and Anthropic request/response bodies into the normalised record fields.

Pure functions over parsed JSON (and SSE events for streams); tolerant of fields they do not
know, since upstreams add fields over time. Nothing here runs on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from monitor.records import Message, ToolCall, Usage
from monitor.sse import Event

JSON = dict[str, Any]

_OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool"}


@dataclass
class ParsedResponse:
    """What a response said, whichever dialect and whether streamed or not."""

    text: str | None = None
    reasoning: str | None = None
    redacted_reasoning_blocks: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None  # an error reported inside a 200 stream


# --------------------------------------------------------------------------- requests


def request_messages(dialect: str, req: JSON) -> list[Message]:
    """The conversation of a request as normalised messages (system first)."""
    if dialect == "anthropic":
        return _anthropic_messages(req)
    return _openai_messages(req)


def request_tools(dialect: str, req: JSON) -> list[str]:
    """Names of the tools a request offers."""
    names: list[str] = []
    for tool in req.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function") if dialect == "openai" else None
        name = (fn or tool).get("name") if isinstance(fn or tool, dict) else None
        if isinstance(name, str):
            names.append(name)
    for fn in req.get("functions") or []:  # legacy OpenAI function calling
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _part_text(part: Any) -> str:
    """Text of one content part/block; non-text parts become a short placeholder."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text"):
        return str(part.get("text", ""))
    if kind == "refusal":
        return str(part.get("refusal", ""))
    if kind in ("image_url", "image", "input_image"):
        return "[image]"
    if kind in ("input_audio", "audio"):
        return "[audio]"
    if kind in ("file", "document"):
        return "[document]"
    return ""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_part_text(p) for p in content) if t)
    return ""


def _openai_messages(req: JSON) -> list[Message]:
    out: list[Message] = []
    for m in req.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        role = "tool" if role == "function" else role
        if role not in _OPENAI_ROLES:
            role = "user"
        calls = [c for c in (_openai_tool_call(tc) for tc in m.get("tool_calls") or []) if c]
        if isinstance(m.get("function_call"), dict):
            fc = m["function_call"]
            calls.append(ToolCall(name=str(fc.get("name", "")), arguments=str(fc.get("arguments", ""))))
        out.append(
            Message(
                role=role,
                text=_content_text(m.get("content")),
                tool_calls=calls,
                tool_call_id=m.get("tool_call_id") if isinstance(m.get("tool_call_id"), str) else None,
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
        id=tc.get("id") if isinstance(tc.get("id"), str) else None,
        name=str(fn.get("name", "")),
        arguments=str(fn.get("arguments", "")),
    )


def _anthropic_messages(req: JSON) -> list[Message]:
    out: list[Message] = []
    system = req.get("system")
    if system:
        out.append(Message(role="system", text=_content_text(system)))
    for m in req.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = "assistant" if m.get("role") == "assistant" else "user"
        content = m.get("content")
        if not isinstance(content, list):
            out.append(Message(role=role, text=_content_text(content)))
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
                        id=block.get("id"),
                        name=str(block.get("name", "")),
                        arguments=_dumps(block.get("input", {})),
                    )
                )
            elif kind == "tool_result":
                results.append(
                    Message(
                        role="tool",
                        text=_content_text(block.get("content")),
                        tool_call_id=block.get("tool_use_id"),
                    )
                )
            else:
                t = _part_text(block)
                if t:
                    texts.append(t)
        out.extend(results)
        if texts or calls or not results:
            out.append(Message(role=role, text="\n".join(texts), tool_calls=calls))
    return out


# -------------------------------------------------------------------------- responses


def error_message(body: Any) -> str | None:
    """The message of an error body in either dialect's shape."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            msg = err.get("message")
            kind = err.get("type")
            if msg:
                return f"{kind}: {msg}" if kind else str(msg)
        if isinstance(err, str):
            return err
    return None


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
    details = u.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=u.get("prompt_tokens"),
        output_tokens=u.get("completion_tokens"),
        reasoning_tokens=details.get("reasoning_tokens") if isinstance(details, dict) else None,
    )


def _reasoning_field(obj: JSON) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _openai_response(body: JSON) -> ParsedResponse:
    out = ParsedResponse(usage=_openai_usage(body.get("usage")))
    choices = body.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return out
    choice = choices[0]
    msg = choice.get("message") or {}
    content = msg.get("content")
    out.text = _content_text(content) if content is not None else msg.get("refusal")
    out.reasoning = _reasoning_field(msg)
    out.tool_calls = [c for c in (_openai_tool_call(tc) for tc in msg.get("tool_calls") or []) if c]
    out.finish_reason = choice.get("finish_reason")
    return out


def _openai_stream(events: list[Event]) -> ParsedResponse:
    out = ParsedResponse()
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    for ev in events:
        if ev.data == "[DONE]":
            continue
        chunk = _loads(ev.data)
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk or ev.event == "error":
            out.error = error_message(chunk) or ev.data[:500]
            continue
        if chunk.get("usage"):
            out.usage = _openai_usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            elif isinstance(delta.get("refusal"), str):
                text.append(delta["refusal"])
            r = _reasoning_field(delta)
            if r:
                reasoning.append(r)
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(int(tc.get("index", 0)), {"id": "", "name": "", "args": ""})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["args"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                out.finish_reason = choice["finish_reason"]
    out.text = "".join(text) if text or not calls else None
    out.reasoning = "".join(reasoning) or None
    out.tool_calls = [
        ToolCall(id=c["id"] or None, name=c["name"], arguments=c["args"]) for _, c in sorted(calls.items())
    ]
    return out


def _anthropic_usage(u: Any, into: Usage | None = None) -> Usage:
    usage = into or Usage()
    if isinstance(u, dict):
        if u.get("input_tokens") is not None:
            usage.input_tokens = u["input_tokens"]
        if u.get("output_tokens") is not None:
            usage.output_tokens = u["output_tokens"]
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
                    id=block.get("id"),
                    name=str(block.get("name", "")),
                    arguments=args if isinstance(args, str) else _dumps(args),
                )
            )
    out.text = "".join(text) if text or not out.tool_calls else None
    out.reasoning = "\n\n".join(thinking) if thinking else None


def _anthropic_response(body: JSON) -> ParsedResponse:
    out = ParsedResponse(usage=_anthropic_usage(body.get("usage")))
    _anthropic_blocks(body.get("content") or [], out)
    out.finish_reason = body.get("stop_reason")
    return out


def _anthropic_stream(events: list[Event]) -> ParsedResponse:
    out = ParsedResponse()
    blocks: dict[int, dict[str, Any]] = {}
    for ev in events:
        data = _loads(ev.data)
        if not isinstance(data, dict):
            continue
        kind = data.get("type") or ev.event
        if kind == "message_start":
            _anthropic_usage((data.get("message") or {}).get("usage"), out.usage)
        elif kind == "content_block_start":
            block = dict(data.get("content_block") or {})
            if block.get("type") in ("tool_use", "server_tool_use"):
                block["input"] = ""  # filled from input_json_delta fragments
            blocks[int(data.get("index", len(blocks)))] = block
        elif kind == "content_block_delta":
            block = blocks.setdefault(int(data.get("index", 0)), {"type": "text", "text": ""})
            delta = data.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif dkind == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif dkind == "input_json_delta":
                block["input"] = str(block.get("input", "")) + delta.get("partial_json", "")
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason"):
                out.finish_reason = delta["stop_reason"]
            _anthropic_usage(data.get("usage"), out.usage)
        elif kind == "error":
            out.error = error_message(data) or ev.data[:500]
    _anthropic_blocks([blocks[i] for i in sorted(blocks)], out)
    return out


def _loads(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
