"""Put an arm's cue into a request, for every dialect, without touching the client's objects.

Each function returns a new request dict (copying only what it changes) plus extra headers.

Where a `user` cue goes (`Cue.turn`):
- `last` (default): the newest turn. When that turn is the user's, the cue joins its text. When
  it carries tool results, the results stay first and untouched: Anthropic gets the cue as a text
  block after its `tool_result` blocks (the Messages API requires them first in their turn);
  OpenAI chat and the Responses API get a user message after the tool output. Earlier turns are
  never rewritten, so everything before the newest turn stays a prompt-cache hit.
- `first`: the first user turn, the same place on every turn of a conversation.
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
    part = "input_text" if dialect == "responses" else "text"
    if cue.where == "metadata":
        assert cue.key is not None
        meta = dict(req["metadata"]) if isinstance(req.get("metadata"), dict) else {}
        meta[cue.key] = text
        out["metadata"] = meta
    elif cue.where == "system":
        if dialect == "anthropic":
            out["system"] = _join(req.get("system"), text, cue.position, part)
        elif dialect == "responses":
            out["instructions"] = _join(req.get("instructions"), text, cue.position, part)
        else:
            out["messages"] = _openai_system(_list(req.get("messages")), text, cue.position)
    elif dialect == "responses" and not isinstance(req.get("input"), list):
        out["input"] = _join(req.get("input"), text, cue.position, part)
    else:
        key = "input" if dialect == "responses" else "messages"
        out[key] = _user_turn(dialect, _list(req.get(key)), text, cue)
    return out, {}


def _user_turn(dialect: str, turns: list[Any], text: str, cue: Cue) -> list[Any]:
    part = "input_text" if dialect == "responses" else "text"
    turns = list(turns)
    users = [i for i, t in enumerate(turns) if _is_user(dialect, t)]
    if cue.turn == "first" and users:
        i = users[0]
    elif turns and _is_user(dialect, turns[-1]):
        i = len(turns) - 1
    elif turns and dialect == "anthropic" and _tool_results(turns[-1]):
        turns[-1] = {**turns[-1], "content": _after_tool_results(turns[-1]["content"], text, cue.position)}
        return turns
    elif (turns and _is_tool_output(dialect, turns[-1])) or not users:
        return [*turns, {"role": "user", "content": text}]
    else:  # the newest turn is the model's (a prefill): the user turn before it
        i = users[-1]
    turns[i] = {**turns[i], "content": _join(turns[i].get("content"), text, cue.position, part)}
    return turns


def _is_user(dialect: str, turn: Any) -> bool:
    """A user turn that holds what the user said (not only tool results)."""
    if not isinstance(turn, dict) or turn.get("role") != "user":
        return False
    if dialect == "responses" and turn.get("type", "message") != "message":
        return False
    return not (dialect == "anthropic" and _tool_results(turn))


def _is_tool_output(dialect: str, turn: Any) -> bool:
    if not isinstance(turn, dict):
        return False
    if dialect == "responses":
        return str(turn.get("type", "")).endswith("_output")
    return turn.get("role") in ("tool", "function")


def _tool_results(turn: Any) -> bool:
    content = turn.get("content") if isinstance(turn, dict) else None
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _after_tool_results(blocks: list[Any], text: str, position: str) -> list[Any]:
    """Anthropic: tool_result blocks first, then the cue (`before` any other text, or last)."""
    block = {"type": "text", "text": text}
    if position == "after":
        return [*blocks, block]
    cut = max(i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == "tool_result") + 1
    return [*blocks[:cut], block, *blocks[cut:]]


def _openai_system(messages: list[Any], text: str, position: str) -> list[Any]:
    """Add to the first system/developer message, or create a system message first."""
    msgs = list(messages)
    for i, m in enumerate(msgs):
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            msgs[i] = {**m, "content": _join(m.get("content"), text, position, "text")}
            return msgs
    return [{"role": "system", "content": text}, *msgs]


def _join(content: Any, text: str, position: str, part: str) -> Any:
    """Content is a string or a list of blocks/parts; keep its shape."""
    if content is None or content == "":
        return text
    if isinstance(content, str):
        return f"{text}{SEP}{content}" if position == "before" else f"{content}{SEP}{text}"
    if isinstance(content, list):
        blocks = copy.copy(content)
        block = {"type": part, "text": text}
        return [block, *blocks] if position == "before" else [*blocks, block]
    return content


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
