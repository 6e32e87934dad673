"""What every dialect's reader shares: the parsed-response shape and content-part text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from monitor.records import Choice, ToolCall, Usage

JSON = dict[str, Any]


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
    choices: list[Choice] = field(default_factory=list)  # all of them, when there were several


def part_text(part: Any) -> str:
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
    if kind in ("file", "document", "input_file"):
        return "[document]"
    return ""


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (part_text(p) for p in content) if t)
    return ""


def error_message(body: Any) -> str | None:
    """The message of an error body in any dialect's shape."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            msg = err.get("message")
            kind = err.get("type") or err.get("code")
            if msg:
                return f"{kind}: {msg}" if kind else str(msg)
        if isinstance(err, str):
            return err
    return None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def details(obj: Any, key: str) -> JSON:
    """`obj[key]` when both are objects, else {}."""
    return as_dict(as_dict(obj).get(key))


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
