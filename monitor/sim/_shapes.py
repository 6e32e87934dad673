"""Shared by the simulated upstream's dialects: chunking, token counts, reasoning placement."""

from __future__ import annotations

from typing import Any

import orjson

from monitor.sim._behaviour import Reply
from monitor.sim.profiles import Profile


def pieces(text: str, size: int) -> list[str]:
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


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def prompt_tokens(req: dict[str, Any]) -> int:
    said = len(orjson.dumps(req.get("messages", req.get("input", [])))) + len(str(req.get("instructions") or ""))
    return max(1, said // 4)


def prefix_tokens(req: dict[str, Any]) -> int:
    """Tokens of every turn but the newest: what a prompt cache would have served."""
    turns = req.get("messages", req.get("input"))
    if not isinstance(turns, list) or len(turns) < 2:
        return 0
    return len(orjson.dumps(turns[:-1])) // 4


def reasoning_in_text(reply: Reply, behaviour_mode: str, native_available: bool) -> bool:
    if not reply.reasoning or behaviour_mode == "none":
        return False
    return behaviour_mode == "tags" or not native_available


def layout(reply: Reply, p: Profile, native_available: bool) -> tuple[str, str | None]:
    """(text, native reasoning) for a reply under the profile's reasoning placement."""
    mode = p.behaviour.reasoning
    if not reply.reasoning or mode == "none":
        return reply.text, None
    if reasoning_in_text(reply, mode, native_available):
        return f"<SCRATCHPAD_REASONING>\n{reply.reasoning}\n</SCRATCHPAD_REASONING>\n\n{reply.text}", None
    return reply.text, reply.reasoning
