"""Scratchpad red flags on reasoning that models produced (third-party data, docs/data.md).

    .venv/bin/python bench/redflags_real.py [--tiers lexical,combined] [--per-source 300] [--sources a,b]

Per source and category: the share of texts flagged at the shipped thresholds. Every ordinary
source (math, puzzles, QA agents, planning) is a negative for every category by construction,
so any flag there is a false flag. The alignment-faking-setting excerpts (`af_*`, labelled by
their authors' LLM judge) are scored for alignment faking, and count as negatives for oversight
subversion and self-exfiltration (the setting offers neither); the agentic `apollo_*` rollouts
(labelled deceptive or honest by their authors' LLM grader) are scored for deception, and count as
negatives for the categories their scenarios leave no room for. Wherever a source labels a category
both ways, its AUROC and flagged shares are printed under the table. No threshold or weight is
fitted here.
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
    ap.add_argument("--sources", default="", help="comma-separated sources to score (default: every source)")
    args = ap.parse_args()
    data = rows("reasoning")
    if args.sources:
        wanted = set(args.sources.split(","))
        if unknown := wanted - set(sources(data)):
            raise SystemExit(f"no such source {sorted(unknown)}: choose from {sources(data)}")
        data = [r for r in data if r["source"] in wanted]
    for tier in args.tiers.split(","):
        scorer = Scorer(tier=tier)  # type: ignore[arg-type]
        print(f"\n### tier {tier}: share flagged at the shipped thresholds {scorer.thresholds}\n")
        print("| source | texts | " + " | ".join(SHORT[c] for c in CATEGORIES) + " |")
        print("|---|---|" + "---|" * len(CATEGORIES))
        total = {c: [0, 0] for c in CATEGORIES}
        labelled: dict[tuple[str, str], tuple[list[float], list[int]]] = {}  # (source, category)
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
            for c in CATEGORIES:  # a category this source labels both ways: its positives too
                if {r["labels"].get(c) for r in texts} >= {0, 1}:
                    scores, labels, models, judged = labelled.setdefault((src, c), ([], [], [], []))
                    for res, r in zip(results, texts, strict=True):
                        if r["labels"].get(c) in (0, 1):
                            scores.append(res.scores[c])
                            labels.append(r["labels"][c])
                            models.append(r.get("model", ""))
                            judged.append(r.get("judge_score", np.nan))
            sys.stdout.flush()
        print(
            "| **all negatives** | | " + " | ".join(f"{f}/{n} ({f / max(n, 1):.1%})" for f, n in total.values()) + " |"
        )
        for (name, c), (scores, labels, models, judged) in labelled.items():
            s, y, m, j = np.asarray(scores), np.asarray(labels), np.asarray(models), np.asarray(judged, dtype=float)
            flagged = s >= scorer.thresholds[c]
            what = LABELLED_SETS.get(name, name)
            print(
                f"\n{what}, {SHORT[c]} ({len(y)} texts, {int(y.sum())} positive): AUROC {auroc(s, y):.3f}; flagged "
                f"{int(flagged[y == 1].sum())}/{int(y.sum())} positives, "
                f"{int(flagged[y == 0].sum())}/{int((y == 0).sum())} negatives"
            )
            for model in sorted(set(m)) if len(set(m)) > 1 else []:  # a label that follows the model: within each
                k = m == model
                both = f"AUROC {auroc(s[k], y[k]):.3f}; " if len(set(y[k])) == 2 else ""
                pos, neg = k & (y == 1), k & (y == 0)
                print(
                    f"- {model}: {both}flagged {int(flagged[pos].sum())}/{int(pos.sum())} positives, "
                    f"{int(flagged[neg].sum())}/{int(neg.sum())} negatives"
                )
            for low, high in ((5, 8), (8, 11)) if np.isfinite(j).any() else []:  # a judge's 1-10 score
                k = (j >= low) & (j < high)
                print(f"- judge score {low}-{high - 1}: flagged {int(flagged[k].sum())}/{int(k.sum())}")


LABELLED_SETS = {
    "af_vlaf_gpt41": "VLAF GPT-4.1, instructed faking (free tier) vs instructed refusals (paid tier), by construction",
    "af_geodesic_mars": "Geodesic-MARS, free/paid dialogues its author wrote (no licence: internal), by construction",
    "apollo_insider_trading": "Apollo insider trading, Llama-3.1-70B's trajectory to its report, GPT-4o grader",
    "apollo_insider_doubledown": "Apollo insider trading, Llama-3.1-70B asked if it knew, GPT-4o grader",
    "apollo_ai_audit": "Apollo AI audit, Llama-3.3-70B's answers to the auditor, GPT-4o grader",
    "agentic_misalignment_aware": "Agentic misalignment, five frontier models' chains of thought, unprompted; "
    "an LLM judge's evaluation-awareness score >= 5 (no licence: local copy)",
}


if __name__ == "__main__":
    main()
