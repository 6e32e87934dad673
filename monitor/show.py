"""`cuewatch show ID`: one exchange or finding from a traffic log, readable in a terminal.

An exchange shows who sent it under which arm, its outcome, the conversation (the latest turns),
the model's reasoning and its answer; a finding shows what was found, the effect with its
interval, the evidence and the example exchanges to `show` next. `--json` prints the record as
stored. Ids may be given in full or as a prefix of at least 6 characters.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

from monitor.records import Exchange, Finding, Record
from monitor.store import LogReader

WIDTH = 100
TEXT_MAX = 2000  # characters of any one text shown (the full record: --json)
TURNS = 4  # the latest turns of the conversation


def find(paths: Iterable[Path], ident: str) -> list[Record]:
    """The record whose id is `ident`, else those whose id starts with it (6 characters at least)."""
    exact: list[Record] = []
    prefixed: list[Record] = []
    for r in LogReader(paths):  # streaming: a log can be larger than memory
        if r.id == ident:
            exact.append(r)
        elif len(ident) >= 6 and r.id.startswith(ident):
            prefixed.append(r)
    if not exact and len(ident) < 6:
        raise ValueError(f"no id {ident!r}; give the whole id or at least 6 characters of it")
    return exact or prefixed


def _block(title: str, text: str | None) -> list[str]:
    if not text:
        return []
    cut = text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + f" … [{len(text) - TEXT_MAX:,} more characters]"
    body = [textwrap.fill(p, WIDTH, initial_indent="  ", subsequent_indent="  ") for p in cut.split("\n") if p.strip()]
    return [f"{title}:", *body]


def render(record: Record) -> str:
    return "\n".join(_exchange(record) if isinstance(record, Exchange) else _finding(record))


def _exchange(ex: Exchange) -> list[str]:
    arm = f"arm {ex.arm!r} of {ex.experiment!r} ({ex.mode}, p={ex.assignment_probability})" if ex.arm else "no arm"
    lines = [
        f"exchange {ex.id}  {ex.time.isoformat()}  {ex.origin}",
        f"  {ex.dialect} {ex.path}  model {ex.model}  {'stream' if ex.stream else 'whole'}  "
        f"status {ex.status} {ex.outcome}" + (f" ({ex.error})" if ex.error else ""),
        f"  {arm}" + (f"  pair {ex.pair_id}" if ex.pair_id else "") + (f"  probe {ex.probe_id}" if ex.probe_id else ""),
    ]
    if ex.cue:
        lines.append(f"  cue: {ex.cue!r}")
    for m in ex.messages[-TURNS:]:
        lines += _block(f"[{m.role}]", m.text)
    lines += _block("[reasoning]", ex.reasoning)
    lines += _block("[answer]", ex.response_text)
    if ex.tool_calls:
        lines.append("[tool calls] " + ", ".join(t.name for t in ex.tool_calls))
    flags = [f for f, on in (("truncated", ex.truncated), ("redacted", ex.redacted), ("unparsed", ex.unparsed)) if on]
    if flags:
        lines.append("  note: " + ", ".join(flags))
    return lines


def _finding(f: Finding) -> list[str]:
    lines = [f"finding {f.id}  {f.time.isoformat()}  {f.detector} / {f.metric}  {f.severity}", f"  {f.summary}"]
    if f.effect is not None:
        e = f.effect
        lines.append(f"  effect ({' - '.join(f.arms)}): {e.estimate:+.4g} [{e.lo:+.4g}, {e.hi:+.4g}] {e.unit}")
    lines.append(f"  e-value {f.e_value:.3g}  p-value {f.p_value:.3g}  alpha {f.alpha:g}  paired {f.paired}")
    for arm, counts in f.counts.items():
        lines.append(f"  {arm}: " + ", ".join(f"{k} {v:g}" for k, v in counts.items()))
    lines += _block("[excerpt]", f.excerpt)
    for arm, ids in f.example_ids.items():
        lines.append(f"  examples under {arm!r}: " + " ".join(ids) + ("  (cuewatch show ID)" if ids else ""))
    return lines
