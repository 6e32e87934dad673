"""Scratchpad red flags on reasoning that models produced (third-party data, docs/data.md).

    .venv/bin/python bench/redflags_real.py [--tiers lexical,combined] [--per-source 300]

Per source and category: the share of texts flagged at the shipped thresholds. Every ordinary
source (math, puzzles, QA agents, planning) is a negative for every category by construction,
so any flag there is a false flag. The alignment-faking-setting excerpts (`af_*`, labelled by
their authors' LLM judge) are scored for alignment faking, and count as negatives for oversight
subversion and self-exfiltration (the setting offers neither). No threshold or weight is fitted
here.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.external import rows, sources  # noqa: E402
from bench.scratchpad_eval import auroc  # noqa: E402
from detectors.scratchpad import CATEGORIES  # noqa: E402
from detectors.scratchpad.model import Scorer  # noqa: E402

SHORT = {
    "alignment_faking": "AF",
    "monitoring_awareness": "aware",
    "oversight_subversion": "subvert",
    "self_exfiltration": "exfil",
    "sandbagging_intent": "sandbag",
    "deception": "deceive",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiers", default="lexical,combined")
    ap.add_argument("--per-source", type=int, default=300, help="texts per source for model tiers (seeded sample)")
    args = ap.parse_args()
    data = rows("reasoning")
    for tier in args.tiers.split(","):
        scorer = Scorer(tier=tier)  # type: ignore[arg-type]
        print(f"\n### tier {tier}: share flagged at the shipped thresholds {scorer.thresholds}\n")
        print("| source | texts | " + " | ".join(SHORT[c] for c in CATEGORIES) + " |")
        print("|---|---|" + "---|" * len(CATEGORIES))
        total = {c: [0, 0] for c in CATEGORIES}
        af: dict[str, tuple[list[float], list[int]]] = {}
        for src in sources(data):
            texts = [r for r in data if r["source"] == src]
            if tier != "lexical" and len(texts) > args.per_source:
                texts = random.Random(src).sample(texts, args.per_source)
            started = time.monotonic()
            results = scorer.score_texts([r["text"] for r in texts])
            rate = len(texts) / max(time.monotonic() - started, 1e-9)
            cells = []
            for c in CATEGORIES:
                negatives = [
                    res
                    for res, r in zip(results, texts, strict=True)
                    if r["labels"].get(c, 0 if c in ("oversight_subversion", "self_exfiltration") else None) == 0
                ]
                flagged = sum(res.scores[c] >= scorer.thresholds[c] for res in negatives)
                total[c][0] += flagged
                total[c][1] += len(negatives)
                cells.append(f"{flagged}/{len(negatives)}" if negatives else "-")
            print(f"| {src} | {len(texts)} ({rate:,.0f}/s) | " + " | ".join(cells) + " |")
            for res, r in zip(results, texts, strict=True):
                if "alignment_faking" in r["labels"] and src.startswith("af_"):
                    scores, labels = af.setdefault(src, ([], []))
                    scores.append(res.scores["alignment_faking"])
                    labels.append(r["labels"]["alignment_faking"])
            sys.stdout.flush()
        print(
            "| **all negatives** | | " + " | ".join(f"{f}/{n} ({f / max(n, 1):.1%})" for f, n in total.values()) + " |"
        )
        for name, (scores, labels) in af.items():
            s, y = np.asarray(scores), np.asarray(labels)
            flagged = s >= scorer.thresholds["alignment_faking"]
            what = AF_SETS.get(name, name)
            print(
                f"\n{what} ({len(y)} texts, {int(y.sum())} positive): AUROC {auroc(s, y):.3f}; flagged "
                f"{int(flagged[y == 1].sum())}/{int(y.sum())} positives, "
                f"{int(flagged[y == 0].sum())}/{int((y == 0).sum())} negatives"
            )


AF_SETS = {
    "af_vlaf_gpt41": "VLAF GPT-4.1, instructed faking (free tier) vs instructed refusals (paid tier), by construction",
    "af_geodesic_mars": "Geodesic-MARS, free/paid dialogues its author wrote (no licence: internal), by construction",
}


if __name__ == "__main__":
    main()
