"""Put an arm's cue into a request, for both dialects, without touching the client's objects.

Each function returns a new request dict (copying only what it changes) plus extra headers.
"""

from __future__ import annotations

import copy
from typing import Any

from monitor.policy import Cue

JSON = dict[str, Any]
SEP = "\n\n"


def apply_cue(dialect: str, req: JSON, cue: Cue, text: str) -> tuple[JSON, dict[str, str]]:
    """The request as the model will see it under this cue, and headers to add."""
    if cue.where == "none":
        return req, {}
    if cue.where == "header":
        assert cue.key is not None
        return req, {cue.key: text}
    out = dict(req)
    if cue.where == "metadata":
        assert cue.key is not None
        meta = dict(req["metadata"]) if isinstance(req.get("metadata"), dict) else {}
        meta[cue.key] = text
        out["metadata"] = meta
    elif cue.where == "system":
        if dialect == "anthropic":
            out["system"] = _join_content(req.get("system"), text, cue.position)
        else:
            out["messages"] = _openai_system(req.get("messages") or [], text, cue.position)
    else:  # user
        key = "messages"
        msgs = list(req.get(key) or [])
        for i in range(len(msgs) - 1, -1, -1):
            m = msgs[i]
            if isinstance(m, dict) and m.get("role") == "user":
                msgs[i] = {**m, "content": _join_content(m.get("content"), text, cue.position)}
                break
        else:
            msgs.append({"role": "user", "content": text})
        out[key] = msgs
    return out, {}


def _openai_system(messages: list[Any], text: str, position: str) -> list[Any]:
    """Add to the first system/developer message, or create a system message first."""
    msgs = list(messages)
    for i, m in enumerate(msgs):
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            msgs[i] = {**m, "content": _join_content(m.get("content"), text, position)}
            return msgs
    return [{"role": "system", "content": text}, *msgs]


def _join_content(content: Any, text: str, position: str) -> Any:
    """Content is a string or a list of blocks/parts; keep its shape."""
    if content is None or content == "":
        return text
    if isinstance(content, str):
        return f"{text}{SEP}{content}" if position == "before" else f"{content}{SEP}{text}"
    if isinstance(content, list):
        blocks = copy.copy(content)
        block = {"type": "text", "text": text}
        return [block, *blocks] if position == "before" else [*blocks, block]
    return content
