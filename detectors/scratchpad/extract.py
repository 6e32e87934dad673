"""Where reasoning lives in an exchange, with character offsets so a finding can quote it.

Sources:
- native reasoning (`Exchange.reasoning`): Anthropic `thinking` blocks (streamed
  `thinking_delta`s are joined by the capture), OpenAI-compatible `reasoning_content` /
  `reasoning` fields; `redacted_thinking` blocks are counted, not readable;
- tags inside text: `<think>`, `<thinking>`, `<scratchpad>`, `<SCRATCHPAD_REASONING>`,
  `<reasoning>`, any case. Nested tags belong to the outermost region; an unclosed tag runs to
  the end; a closing tag with no opening one (templates that put `<think>` in the prompt) closes
  a region that starts at the beginning of the text.

Inside reasoning, drafted answers (`<DRAFT_OUTPUT>`-style tags) are answer text, not
reasoning: `sentences()` skips them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from monitor.records import Exchange

Source = Literal["reasoning", "response", "text"]

_TAG = re.compile(r"<(/?)(think|thinking|scratchpad|scratchpad_reasoning|reasoning)\s*>", re.I)
_DRAFT = re.compile(r"<(draft[a-z_]*)\s*>.*?(?:</\1\s*>|\Z)", re.I | re.S)
_SENTENCE = re.compile(r"[^\s.!?\n][^.!?\n]*(?:[.!?]+|\n|\Z)")


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of reasoning: `text == <source string>[start:end]`."""

    source: Source
    start: int
    end: int
    text: str
    tag: str | None = None  # the tag name, None for native reasoning or untagged text


@functools.lru_cache(maxsize=4096)
def tagged(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, tag) of each outermost tagged reasoning region's content in `text`."""
    regions: list[tuple[int, int, str]] = []
    depth, start, name = 0, 0, ""
    seen_any = False
    for m in _TAG.finditer(text):
        closing, tag = m.group(1) == "/", m.group(2)
        if not closing:
            if depth == 0:
                start, name = m.end(), tag
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                regions.append((start, m.start(), name))
        elif not seen_any:  # "... </think> answer": the opening tag was in the prompt
            regions.append((0, m.start(), tag))
        seen_any = True
    if depth > 0:
        regions.append((start, len(text), name))
    return tuple(regions)


def segments_of_text(text: str, source: Source = "text", plain: bool = True) -> list[Segment]:
    """Reasoning regions of a text; with `plain`, an untagged text is all reasoning."""
    regions = tagged(text)
    if regions:
        return [Segment(source, s, e, text[s:e], tag) for s, e, tag in regions]
    if plain and text.strip():
        return [Segment(source, 0, len(text), text)]
    return []


def segments(ex: Exchange) -> list[Segment]:
    """Every readable reasoning segment of an exchange: native first, then tags in the answer."""
    out: list[Segment] = []
    if ex.reasoning:
        out.append(Segment("reasoning", 0, len(ex.reasoning), ex.reasoning))
    if ex.response_text:
        out.extend(segments_of_text(ex.response_text, "response", plain=False))
    return out


def without_reasoning(text: str) -> str:
    """`text` without its tagged reasoning regions (and their tags)."""
    regions = tagged(text)
    if not regions:
        return text.strip()
    parts, pos = [], 0
    for s, e, _ in regions:
        parts.append(text[pos:s])
        pos = e
    parts.append(text[pos:])
    return _TAG.sub("", "".join(parts)).strip()


def sentences(seg: Segment) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a segment, in the segment's source coordinates,
    skipping drafted answers inside the reasoning."""
    text = seg.text
    masked = _DRAFT.sub(lambda m: " " * len(m.group(0)), text) if "<" in text else text
    out = []
    for m in _SENTENCE.finditer(masked):
        s, e = m.start(), m.end()
        while e > s and masked[e - 1].isspace():
            e -= 1
        if e - s >= 3:
            out.append((seg.start + s, seg.start + e))
    return out
