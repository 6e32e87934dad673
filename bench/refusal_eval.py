"""Refusal feature accuracy, lexical vs semantic, on a labelled held-out set.

    .venv/bin/python bench/refusal_eval.py

bench/data/refusal_eval.jsonl: 60 responses (30 refusals, 30 answers, including hard ones:
answers with "I can't guarantee", "I won't bore you", "I refuse to believe"), written for
cuewatch after the lexical patterns and the semantic prototypes were fixed; neither was
adjusted on it.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import features
from monitor.records import Exchange

DATA = Path(__file__).resolve().parent / "data" / (sys.argv[1] if len(sys.argv) > 1 else "refusal_test.jsonl")


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    exs = [
        Exchange(
            id=r["id"],
            time=datetime(2026, 1, 1, tzinfo=UTC),
            dialect="openai",
            path="/",
            status=200,
            outcome="ok",
            response_text=r["text"],
        )
        for r in rows
    ]
    t0 = time.time()
    got = features.compute_batch(exs, {"refused", "refused_semantic"})
    secs = time.time() - t0
    for name in ("refused", "refused_semantic"):
        tp = sum(g[name] == 1 and r["refused"] == 1 for g, r in zip(got, rows, strict=True))
        fp = sum(g[name] == 1 and r["refused"] == 0 for g, r in zip(got, rows, strict=True))
        fn = sum(g[name] == 0 and r["refused"] == 1 for g, r in zip(got, rows, strict=True))
        acc = sum(g[name] == r["refused"] for g, r in zip(got, rows, strict=True)) / len(rows)
        print(
            f"{name:<17} accuracy {acc:.3f}  precision {tp / max(tp + fp, 1):.3f}  recall {tp / max(tp + fn, 1):.3f}"
            f"  (fp {fp}, fn {fn})"
        )
        for g, r in zip(got, rows, strict=True):
            if g[name] != r["refused"]:
                print(f"    wrong: {r['text'][:80]!r}")
    print(f"{len(rows)} texts, {secs:.1f} s including the model load")


if __name__ == "__main__":
    main()
