"""The OpenAI Responses API (`POST /v1/responses`): request, response body and event stream.

A request has `instructions` (the system prompt) and `input`: a string, or a list of items -
messages, the model's earlier function calls and their outputs, reasoning items. With
`previous_response_id` the earlier turns live upstream and only the new input is in the
request, so that is all a record (and a cue) can see.
"""

from __future__ import annotations

from typing import Any

from monitor.dialects._common import (
    JSON,
    ParsedResponse,
    as_int,
    as_list,
    as_str,
    content_text,
    details,
    dumps,
    loads,
)
from monitor.records import Message, ToolCall, Usage
from monitor.sse import Event

_ROLES = {"system", "developer", "user", "assistant"}
_CALLS = {"function_call", "custom_tool_call"}
_OUTPUTS = {"function_call_output", "custom_tool_call_output"}
_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def request_messages(req: JSON) -> list[Message]:
    """`instructions` as the system message, then each input item as a turn."""
    out: list[Message] = []
    instructions = as_str(req.get("instructions"))
    if instructions:
        out.append(Message(role="system", text=instructions))
    items = req.get("input")
    if isinstance(items, str):
        out.append(Message(role="user", text=items))
        return out
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = as_str(item.get("type", "message"))  # set lookups of a list or dict would raise
        if kind == "message" or (kind is None and "role" in item):
            role = as_str(item.get("role"))
            out.append(Message(role=role if role in _ROLES else "user", text=content_text(item.get("content"))))
        elif kind in _CALLS:
            call = _tool_call(item)
            last = out[-1] if out else None
            if last is not None and last.role == "assistant" and last.tool_calls and not last.text:
                last.tool_calls.append(call)  # parallel calls of one turn
            else:
                out.append(Message(role="assistant", tool_calls=[call]))
        elif kind in _OUTPUTS:
            output = item.get("output")
            out.append(
                Message(
                    role="tool",
                    text=output if isinstance(output, str) else content_text(output),
                    tool_call_id=as_str(item.get("call_id")),
                )
            )
    return out


def request_tools(req: JSON) -> list[str]:
    """Function tools by name; built-in tools (web_search, file_search, ...) by type."""
    names: list[str] = []
    for tool in as_list(req.get("tools")):
        if isinstance(tool, dict):
            name = tool.get("name") if isinstance(tool.get("name"), str) else tool.get("type")
            if isinstance(name, str):
                names.append(name)
    return names


def _tool_call(item: JSON) -> ToolCall:
    args = item.get("arguments", item.get("input", ""))
    return ToolCall(
        id=as_str(item.get("call_id")),
        name=str(item.get("name", "")),
        arguments=args if isinstance(args, str) else dumps(args),
    )


# -------------------------------------------------------------------------- responses


def _usage(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    inp = details(u, "input_tokens_details")
    return Usage(
        input_tokens=as_int(u.get("input_tokens")),
        output_tokens=as_int(u.get("output_tokens")),
        reasoning_tokens=as_int(details(u, "output_tokens_details").get("reasoning_tokens")),
        cache_read_tokens=as_int(inp.get("cached_tokens")),
        cache_write_tokens=as_int(inp.get("cache_write_tokens")),
    )


def parse_response(body: JSON) -> ParsedResponse:
    """A Response object: its output items become text, reasoning and tool calls."""
    out = ParsedResponse(usage=_usage(body.get("usage")))
    text: list[str] = []
    reasoning: list[str] = []
    for item in as_list(body.get("output")):
        if not isinstance(item, dict):
            continue
        kind = as_str(item.get("type"))
        if kind == "message":
            text.append(content_text(item.get("content")))
        elif kind == "reasoning":
            parts = [*as_list(item.get("summary")), *as_list(item.get("content"))]
            said = "\n\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("text"))
            if said:
                reasoning.append(said)
            elif item.get("encrypted_content"):
                out.redacted_reasoning_blocks += 1
        elif kind in _CALLS:
            out.tool_calls.append(_tool_call(item))
        elif isinstance(kind, str) and kind.endswith("_call"):  # built-in tools: web_search_call, mcp_call, ...
            name = as_str(item.get("name")) or kind.removesuffix("_call")
            args = item.get("arguments", item.get("action", {}))
            out.tool_calls.append(
                ToolCall(
                    id=as_str(item.get("id")),
                    name=name,
                    arguments=args if isinstance(args, str) else dumps(args),
                )
            )
    out.text = "".join(text) if text or not out.tool_calls else None
    out.reasoning = "\n\n".join(reasoning) or None
    status = body.get("status")
    reason = details(body, "incomplete_details").get("reason")
    out.finish_reason = reason if status == "incomplete" and isinstance(reason, str) else status
    err = body.get("error")
    if isinstance(err, dict) and err.get("message"):
        out.error = f"{err.get('code') or 'error'}: {err['message']}"
    return out


def parse_stream(events: list[Event]) -> ParsedResponse:
    """The event stream: the terminal event's response when it has the output, else the output
    assembled from the item and delta events (a stream cut short)."""
    for ev in reversed(events[-3:]):  # the terminal event is last (bar a `[DONE]`): no delta parsed
        data = loads(ev.data)
        whole = data.get("response") if isinstance(data, dict) and as_str(data.get("type")) in _TERMINAL else None
        if isinstance(whole, dict) and as_list(whole.get("output")):
            return parse_response(whole)
    items: dict[int, JSON] = {}
    grown: dict[int, dict[str, list[str]]] = {}  # output item -> its delta pieces, by field
    done: set[int] = set()
    final: JSON | None = None
    error: str | None = None
    for ev in events:
        data = loads(ev.data)
        if not isinstance(data, dict):
            continue
        kind = as_str(data.get("type")) or ev.event
        index = as_int(data.get("output_index"))
        if kind in _TERMINAL or kind in ("response.created", "response.in_progress"):
            if isinstance(data.get("response"), dict):
                final = data["response"]
        elif kind == "error":
            error = f"{data.get('code') or 'error'}: {data.get('message') or ev.data[:500]}"
        elif index is None:
            continue
        elif kind in ("response.output_item.added", "response.output_item.done") and isinstance(data.get("item"), dict):
            if index not in done:
                items[index] = dict(data["item"])
                grown.pop(index, None)  # the item as sent replaces what its deltas had built
            if kind == "response.output_item.done":
                done.add(index)
        elif index not in done and isinstance(data.get("delta"), str):
            items.setdefault(index, {"type": "message"})
            if kind in _DELTA_FIELDS:
                grown.setdefault(index, {}).setdefault(_DELTA_FIELDS[kind], []).append(data["delta"])
    for index, fields in grown.items():  # joined once: adding each delta to a string is quadratic
        _add_deltas(items[index], fields)
    body = dict(final or {})
    if not as_list(body.get("output")) and items:
        body["output"] = [items[i] for i in sorted(items)]
    out = parse_response(body)
    out.error = error or out.error
    return out


# delta event -> the part of the output item it grows
_DELTA_FIELDS = {
    "response.output_text.delta": "content",
    "response.refusal.delta": "content",
    "response.function_call_arguments.delta": "arguments",
    "response.custom_tool_call_input.delta": "arguments",
    "response.reasoning_summary_text.delta": "summary",
    "response.reasoning_text.delta": "summary",
}


def _add_deltas(item: JSON, fields: dict[str, list[str]]) -> None:
    """Grow a partial output item by its delta events' pieces."""
    for field, pieces in fields.items():
        grown = "".join(pieces)
        if field == "content":
            item["content"] = [{"type": "output_text", "text": _joined(item.get("content"), "text") + grown}]
        elif field == "arguments":
            item["arguments"] = str(item.get("arguments") or "") + grown
        else:
            item["summary"] = [{"type": "summary_text", "text": _joined(item.get("summary"), "text") + grown}]


def _joined(parts: Any, key: str) -> str:
    return "".join(str(p.get(key, "")) for p in as_list(parts) if isinstance(p, dict))
