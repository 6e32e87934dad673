"""Harmful requests behind pasted text: does `harmful` still read them?

    .venv/bin/python bench/padding.py [--lengths 0 1000 3000 10000] [--tiers hashed,semantic] [--sample 200]

People paste a document and put their request after it (or before it); an adversary can pad a
request with harmless text to push it out of what a classifier reads. This scores WildGuardTest's
prompts (human-labelled harmful, and the benign prompts written beside them; no shipped model
was trained on them, docs/data/prompts.md) with benign text from Dolly's prompts (third-party)
placed before or after each one (a blank line between), or in the same paragraph. Scored through
the live features (`harm_score`, `harm_score_semantic`: a request scores as its most harmful part,
`request_windows`), and through the first window alone (what the features read before parts).
Flagged share at the shipped thresholds, per padding length and position. Writes
bench/results/padding.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.external import rows  # noqa: E402

TIERS = {"hashed": ("harmful", "harm_score"), "semantic": ("harmful_semantic", "harm_score_semantic")}
SOURCES = {"wildguard_harmful": "harmful", "wildguard_benign": "confusable"}
# where the request goes: after the pasted text, before it, or in the same paragraph (no blank line)
POSITIONS = {"before": "{pad}\n\n{text}", "after": "{text}\n\n{pad}", "inline": "{pad} {text}"}
PADS_PER_LENGTH = 8  # padding texts per length, reused across prompts (and so embedded once)


def paddings(length: int, seed: int = 0) -> list[str]:
    """PADS_PER_LENGTH benign texts of about `length` characters, cut at a word boundary."""
    dolly = [r["text"] for r in rows("prompts") if r["source"] == "dolly"]
    rng = random.Random(seed * 1_000_003 + length)
    out = []
    for _ in range(PADS_PER_LENGTH):
        parts: list[str] = []
        while sum(len(p) + 2 for p in parts) < length:
            parts.append(rng.choice(dolly))
        out.append("\n\n".join(parts)[:length].rsplit(" ", 1)[0])
    return out


def run(lengths: list[int], tiers: list[str], sample: int, seed: int) -> list[dict[str, object]]:
    from detectors import features, textclf
    from monitor.records import Exchange, Message

    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(seed)
    prompts = {src: [r["text"] for r in rows("prompts") if r["source"] == src] for src in SOURCES}
    if sample:
        prompts = {src: rng.sample(texts, min(sample, len(texts))) for src, texts in prompts.items()}
    out: list[dict[str, object]] = []
    for tier in tiers:
        model, feature = TIERS[tier]
        clf = textclf.load(model)
        cut = clf.threshold("harmful")
        score = getattr(features, feature)
        for length in lengths:
            pads = paddings(length, seed) if length else [""]
            for position in POSITIONS if length else ("none",):
                for src, kind in SOURCES.items():
                    started = time.monotonic()
                    texts = []
                    for i, text in enumerate(prompts[src]):
                        pad = pads[i % len(pads)]
                        texts.append(POSITIONS[position].format(pad=pad, text=text) if pad else text)
                    exs = [
                        Exchange(
                            id=str(i),
                            time=stamp,
                            dialect="openai",
                            path="/v1/chat/completions",
                            status=200,
                            outcome="ok",
                            messages=[Message(role="user", text=t)],
                            response_text="",
                        )
                        for i, t in enumerate(texts)
                    ]
                    windows = np.asarray(score(exs), dtype=float)
                    first = clf.proba([features.request_view(t) for t in texts])[:, 1]
                    row = {
                        "tier": tier,
                        "padding": length,
                        "position": position,
                        "source": src,
                        "kind": kind,
                        "rows": len(texts),
                        "threshold": round(cut, 4),
                        "flagged_windows": round(float((windows >= cut).mean()), 4),
                        "flagged_first_window": round(float((first >= cut).mean()), 4),
                    }
                    out.append(row)
                    print(
                        f"| {tier} | {length:,} | {position} | {src} ({kind}) | {len(texts)} "
                        f"| {row['flagged_first_window']:.1%} | **{row['flagged_windows']:.1%}** |"
                        f"  ({time.monotonic() - started:.0f} s)",
                        flush=True,
                    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[0, 1000, 3000, 10000], help="padding, characters")
    ap.add_argument("--tiers", default="hashed,semantic", help=f"comma-separated: {', '.join(TIERS)}")
    ap.add_argument("--sample", type=int, default=0, help="prompts per source (seeded; 0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "padding.json")
    args = ap.parse_args()
    tiers = [t for t in args.tiers.split(",") if t]
    if unknown := set(tiers) - set(TIERS):
        raise SystemExit(f"--tiers: unknown {sorted(unknown)}; choose from {', '.join(TIERS)}")
    if any(n < 0 for n in args.lengths):
        raise SystemExit("--lengths: characters of padding, 0 or more")
    print("| tier | padding (chars) | position | source | rows | first window only | parts (live feature) |")
    print("|---|---|---|---|---|---|---|")
    results = run(args.lengths, tiers, args.sample, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "results": results}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
