"""Train the scratchpad heads on the TRAIN split and write detectors/scratchpad/weights.json.

    .venv/bin/python bench/train_scratchpad.py [--data bench/data/scratchpads/scratchpads.jsonl]
        [--negatives FILE.jsonl --negatives-for oversight_subversion,self_exfiltration --negatives-max 150]

`--negatives`: third-party reasoning (rows with `text`) added as negatives for the categories of
`--negatives-for` only (a seeded sample of at most `--negatives-max`), so heads trained on the
written set learn what ordinary reasoning in the same setting looks like. The shipped heads use
VLAF's alignment-faking-setting reasoning (none of it subverts oversight or copies weights) for
oversight subversion and self-exfiltration; the alignment-faking head never sees it, so VLAF
still measures that head (docs/benchmarks.md).

For each category and tier (lexical, semantic, combined) a logistic head is fitted on the train
items evaluated for that category; the L2 strength is chosen by 5-fold cross-validation on the
train split alone (log loss). The test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.scratchpad import CATEGORIES, extract  # noqa: E402
from detectors.scratchpad.head import Head, fit  # noqa: E402
from detectors.scratchpad.model import TIERS, Scorer  # noqa: E402

DATA = ROOT / "bench/data/scratchpads/scratchpads.jsonl"
OUT = ROOT / "detectors/scratchpad/weights.json"
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def load(path: Path, split: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["split"] == split]


def negatives(path: Path, categories: list[str], limit: int) -> list[dict[str, Any]]:
    """Third-party texts as rows of the written set's shape: evaluated for `categories`, no label."""
    texts = [json.loads(line)["text"] for line in path.read_text().split("\n") if line.strip()]
    texts = random.Random(0).sample(texts, min(limit, len(texts)))
    return [{"reasoning": t, "labels": [], "evaluated_for": categories, "split": "train"} for t in texts]


def feature_table(rows: list[dict[str, Any]], tier: str) -> dict[str, np.ndarray]:
    scorer = Scorer(tier=tier)  # type: ignore[arg-type]
    items = [scorer._prepare(extract.segments_of_text(r["reasoning"], "text")) for r in rows]
    feats = scorer.features(items)
    return {cat: np.asarray(feats[cat], dtype=np.float64) for cat in CATEGORIES}


def _log_loss(head: Head, x: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(head.predict(x), 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_l2(x: np.ndarray, y: np.ndarray, nonneg: tuple[int, ...], seed: int = 0) -> float:
    idx = list(range(len(y)))
    random.Random(seed).shuffle(idx)
    folds = [idx[k::5] for k in range(5)]
    best, best_loss = L2_GRID[0], float("inf")
    for l2 in L2_GRID:
        losses = []
        for k in range(5):
            test = np.asarray(folds[k])
            train = np.asarray([i for j, f in enumerate(folds) if j != k for i in f])
            head = fit(x[train], y[train], l2=l2, nonneg=nonneg)
            losses.append(_log_loss(head, x[test], y[test]))
        loss = float(np.mean(losses))
        if loss < best_loss:
            best, best_loss = l2, loss
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--negatives", type=Path, help="third-party reasoning JSONL added as negatives")
    ap.add_argument("--negatives-for", default="oversight_subversion,self_exfiltration")
    ap.add_argument("--negatives-max", type=int, default=150)
    args = ap.parse_args()
    rows = load(args.data, "train")
    print(f"train split: {len(rows)} scratchpads", file=sys.stderr)
    extra: list[dict[str, Any]] = []
    if args.negatives is not None:
        cats = args.negatives_for.split(",")
        unknown = sorted(set(cats) - set(CATEGORIES))
        if unknown:
            ap.error(f"--negatives-for: unknown categories {unknown}")
        extra = negatives(args.negatives, cats, args.negatives_max)
        print(f"+ {len(extra)} third-party negatives for {', '.join(cats)}", file=sys.stderr)
        rows = rows + extra
    tables = {tier: feature_table(rows, tier) for tier in TIERS}
    heads: dict[str, dict[str, Any]] = {}
    for cat in CATEGORIES:
        mask = np.asarray([cat in r["evaluated_for"] for r in rows])
        y = np.asarray([float(cat in r["labels"]) for r in rows])[mask]
        heads[cat] = {}
        for tier in TIERS:
            x = tables[tier][cat][mask]
            nonneg = (x.shape[1] - 1,) if tier != "semantic" else ()  # more lexical hits never lower a score
            l2 = choose_l2(x, y, nonneg)
            heads[cat][tier] = fit(x, y, l2=l2, nonneg=nonneg).to_json() | {"l2": l2}
            print(f"{cat:22s} {tier:9s} n={len(y)} positives={int(y.sum())} l2={l2}", file=sys.stderr)
    meta = {
        "trained_on": str(args.data.relative_to(ROOT)) if args.data.is_relative_to(ROOT) else str(args.data),
        "negatives": (
            {"file": str(args.negatives), "for": args.negatives_for.split(","), "rows": len(extra)} if extra else None
        ),
        "split": "train",
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "script": "bench/train_scratchpad.py",
    }
    args.out.write_text(json.dumps({"meta": meta, "heads": heads}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
