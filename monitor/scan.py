"""`cuewatch scan`: red flags, answer checks, harmful requests and refusals over transcripts.

Input: JSON Lines, one object per line with `id`, optional `reasoning` (scratchpad / chain of
thought, tagged or plain), optional `prompt` (the user's request), optional `response` (final
answer text), optional `choices` (`{"A": "...", ...}`) and optional `expected` (the correct
answer). Output: one JSON object per input line, in order, on stdout:

    {"id", "scores": {category: 0..1}, "flags": [...], "spans": {category: [[start, end], ...]},
     "answer": parsed final answer or null, "consistent": true|false|null,
     "harmful": {"score": 0..1, "flag": bool, "category": str|null},     # with a prompt
     "refusal": {"label": "refusal"|"partial"|"compliance", "score": 0..1}}   # with a response

`--classifiers semantic` takes `harmful` and `refusal` from the semantic tier (hashed n-grams
beside the embedding model) instead of the live default's hashed heads.
Spans index into the line's `reasoning`. Lines that cannot be read are reported on stderr with
their line number and written as `{"id", "line", "error"}` so nothing is silently dropped. The
same scorer and answer parser as the live detectors; deterministic for a given input.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from monitor.errors import CuewatchError

PARTS = ("scratchpad", "answers", "classify")


@dataclass
class Item:
    line: int
    id: Any
    reasoning: str
    prompt: str | None = None
    response: str | None = None
    choices: dict[str, str] | None = None
    expected: str | None = None


def _read(path: Path) -> Iterator[Item | dict[str, Any]]:
    opener = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    with opener as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                if "id" not in obj:
                    raise ValueError("missing 'id'")
                reasoning = obj.get("reasoning") or ""
                if not isinstance(reasoning, str):
                    raise ValueError("'reasoning' must be a string")
                choices = obj.get("choices")
                if choices is not None and not (
                    isinstance(choices, dict) and all(isinstance(v, str) for v in choices.values())
                ):
                    raise ValueError("'choices' must map letters to option texts")
                response = obj.get("response")
                expected = obj.get("expected")
                prompt = obj.get("prompt")
                if prompt is not None and not isinstance(prompt, str):
                    raise ValueError("'prompt' must be a string")
                yield Item(
                    n,
                    obj["id"],
                    reasoning,
                    prompt,
                    response if isinstance(response, str) else None,
                    {str(k).strip().upper(): v for k, v in choices.items()} if choices else None,
                    None if expected is None else str(expected),
                )
            except ValueError as exc:
                yield {"id": None, "line": n, "error": f"{type(exc).__name__}: {exc}"}


def settings_from_policy(path: Path) -> dict[str, Any]:
    """The tier, thresholds and categories of the policy's `scratchpad` detector, if any."""
    from monitor.policy import load_policy

    policy = load_policy(path)
    for spec in policy.detectors:
        if spec.name == "scratchpad":
            return {k: v for k, v in spec.params.items() if k in ("tier", "thresholds", "categories")}
    return {}


def scan(
    path: Path,
    out: IO[str],
    *,
    tier: str = "combined",
    thresholds: dict[str, float] | None = None,
    categories: list[str] | None = None,
    parts: tuple[str, ...] = PARTS,
    batch_size: int = 64,
    progress: IO[str] | None = None,
    judge: Any = None,
    classifiers: str = "hashed",
) -> dict[str, int]:
    """Scan `path` (or '-' for stdin), writing one JSON line per input line to `out`.

    With a `judge` (detectors.scratchpad.judge.Judge), categories the local tier scores at or
    above the judge's gate are put to it; `judge` holds the share of Yes votes and the flags
    become the categories the judge confirms (share >= 0.5). `classifiers` picks the harmful-request
    and refusal heads: `hashed` (the live default) or `semantic` (with the embedding model)."""
    from detectors import features, semantic
    from detectors.scratchpad.model import Scorer

    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise CuewatchError(f"--detectors: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if classifiers not in features.CLASSIFIER_TIERS:
        raise CuewatchError(f"--classifiers: choose from {', '.join(features.CLASSIFIER_TIERS)}, got {classifiers!r}")
    if classifiers == "semantic" and "classify" in parts and not semantic.available():
        raise CuewatchError(f"--classifiers semantic {semantic.MISSING}")
    if str(path) != "-" and not path.exists():
        raise CuewatchError(f"no such file: {path}")
    try:
        scorer = Scorer(tier=tier, thresholds=thresholds, categories=categories)  # type: ignore[arg-type]
    except ValueError as exc:
        raise CuewatchError(str(exc)) from exc
    counts = {"lines": 0, "errors": 0, "flagged": 0}
    started = time.monotonic()
    batch: list[Item | dict[str, Any]] = []

    def flush() -> None:
        items = [b for b in batch if isinstance(b, Item)]
        results = {}
        reasoned = [it for it in items if it.reasoning.strip()]
        if "scratchpad" in parts and reasoned:
            results = dict(
                zip((it.line for it in reasoned), scorer.score_texts([it.reasoning for it in reasoned]), strict=True)
            )
        answered = _answers(items) if "answers" in parts else {}
        classified = _classified(items, classifiers) if "classify" in parts else {}
        for b in batch:
            counts["lines"] += 1
            if not isinstance(b, Item):
                counts["errors"] += 1
                print(f"cuewatch scan: line {b['line']}: {b['error']}", file=sys.stderr)
                out.write(json.dumps(b) + "\n")
                continue
            row: dict[str, Any] = {"id": b.id}
            if b.line in results:
                r = results[b.line]
                spans = {c: [list(s) for s in v] for c, v in r.spans.items()}
                row |= {"scores": r.scores, "flags": r.flags, "spans": spans}
                if judge is not None:
                    row["judge"] = _judged(judge, b.reasoning, r.scores)
                    row["flags"] = [c for c, share in row["judge"].items() if share is not None and share >= 0.5]
                counts["flagged"] += bool(row["flags"])
            row |= answered.get(b.line, {})
            row |= classified.get(b.line, {})
            out.write(json.dumps(row) + "\n")
        out.flush()
        batch.clear()
        if progress is not None:
            rate = counts["lines"] / max(time.monotonic() - started, 1e-9)
            progress.write(f"\rscanned {counts['lines']:,} lines ({rate:,.0f}/s), {counts['flagged']:,} flagged")
            progress.flush()

    for entry in _read(path):
        batch.append(entry)
        if len(batch) >= batch_size:
            flush()
    flush()
    if progress is not None:
        progress.write("\n")
    return counts


def _judged(judge: Any, reasoning: str, scores: dict[str, float]) -> dict[str, float | None]:
    import httpx

    out: dict[str, float | None] = {}
    for cat, score in scores.items():
        if score < judge.gate:
            continue
        try:
            out[cat] = judge.score(reasoning, cat)
        except httpx.HTTPError as exc:
            raise CuewatchError(f"judge request failed: {exc}") from exc
    return out


def _answers(items: list[Item]) -> dict[int, dict[str, Any]]:
    from detectors import answers
    from detectors.sandbagging import conclusions, consistent
    from detectors.scratchpad import extract

    fmts = [answers.infer_format(it.expected, it.choices) for it in items]
    finals = [
        answers.parse(extract.without_reasoning(it.response), f, it.choices) if it.response is not None else None
        for it, f in zip(items, fmts, strict=True)
    ]
    reasoned = conclusions([(it.reasoning, f, it.choices) for it, f in zip(items, fmts, strict=True)])
    out = {}
    for it, f, final, concl in zip(items, fmts, finals, reasoned, strict=True):
        # consistency is defined for choices and numbers; free text has no single conclusion to compare
        agree = consistent(final, concl, f) if f != "text" else None
        row: dict[str, Any] = {"answer": final, "consistent": agree}
        if it.expected is not None:
            row["correct"] = answers.same(final, it.expected, f)
        out[it.line] = row
    return out


def _classified(items: list[Item], tier: str = "hashed") -> dict[int, dict[str, Any]]:
    """The live features' harmful-request and refusal verdicts, for lines with a prompt or a
    response (the same code: each line becomes an exchange), from the `hashed` or `semantic` tier."""
    from datetime import UTC, datetime

    from detectors import features
    from monitor.records import Exchange, Message

    def exchange(it: Item) -> Exchange:
        return Exchange(
            id=str(it.id),
            time=datetime.now(UTC),
            dialect="openai",
            path="scan",
            status=200,
            outcome="ok",
            messages=[Message(role="user", text=it.prompt)] if it.prompt is not None else [],
            response_text=it.response,
        )

    out: dict[int, dict[str, Any]] = {it.line: {} for it in items}
    asked = [it for it in items if it.prompt is not None]
    if asked:
        exs = [exchange(it) for it in asked]
        for it, (score, flag, cat) in zip(asked, features.harm_verdicts(exs, tier), strict=True):
            out[it.line]["harmful"] = {"score": score, "flag": bool(flag), "category": cat}
    answered = [it for it in items if it.response is not None]
    if answered:
        exs = [exchange(it) for it in answered]
        for it, (label, score) in zip(answered, features.refusal_verdicts(exs, tier), strict=True):
            out[it.line]["refusal"] = {"label": label, "score": score}
    return out
