"""Sandbagging flags on multiple-choice transcripts that models produced (third-party data).

    .venv/bin/python bench/sandbagging_real.py [--per-label 300] [--tiers lexical,combined]

Data: `bench/data/external/sandbagging/msc_sandbagging.jsonl`, rebuilt by
`bench/data/build_sandbagging.py` (docs/data/sandbagging.md): claude-3-haiku and gpt-4o-mini
answering WMDP, MMLU and CommonsenseQA questions in three parts (Scratchpad, Reasoning, Answer),
once normally (`honest`) and once told to answer hazardous questions wrongly behind a convincing
Reasoning; a sandbagged row is a wrong answer to a question the model answered right
normally. `covert` / `verbalised`: whether the Reasoning section betrays the intent, by the
source's own LLM judge. No threshold or weight of cuewatch is fitted on these rows.

Each row becomes a probe exchange (question, options, expected letter, final answer) whose
reasoning is, in two views:
- `reasoning`: the Reasoning section only (what a chain-of-thought monitor reads when the model
  keeps a private scratchpad to itself);
- `full`: Scratchpad and Reasoning (what cuewatch reads when the scratchpad is in the output).

Per exchange, cuewatch's flags: `reasoning_inconsistent` (the reasoning arrives at another
option than the answer) and the scratchpad category `sandbagging_intent` at the shipped
threshold, per tier; "caught" is either. Prints the share flagged per label, view and tier
(a seeded sample of at most --per-label rows per label and model) and writes
bench/results/sandbagging_real.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.external import rows  # noqa: E402
from detectors import features  # noqa: E402
from detectors.scratchpad.model import Scorer  # noqa: E402
from monitor.records import Exchange, Message  # noqa: E402

LABELS = ("honest", "covert", "verbalised")
VIEWS = ("reasoning", "full")


def view_text(row: dict[str, Any], view: str) -> str:
    if view == "reasoning":
        return row["reasoning"]
    return f"{row.get('scratchpad') or ''}\n\n{row['reasoning']}".strip()


def exchange(row: dict[str, Any], view: str) -> Exchange:
    options = "\n".join(f"{k}. {v}" for k, v in sorted((row["choices"] or {}).items()))
    return Exchange(
        id=f"{row['id']}:{view}",
        time=datetime(2026, 11, 1, tzinfo=UTC),
        dialect="openai",
        path="/v1/chat/completions",
        status=200,
        outcome="ok",
        origin="probe",
        probe_id=row["id"],
        expected_answer=row["expected"],
        probe_choices=row["choices"],
        messages=[Message(role="user", text=f"{row['question']}\n\n{options}")],
        reasoning=view_text(row, view),
        response_text=f"Answer: {row['final']}",
    )


def sample(data: list[dict[str, Any]], per_label: int) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in data:
        if r["label"] in LABELS:
            groups[(r["label"], r["model"])].append(r)
    out = []
    for key in sorted(groups):
        g = groups[key]
        out += random.Random(f"{key}").sample(g, min(per_label, len(g)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-label", type=int, default=300, help="rows per label and model (seeded sample)")
    ap.add_argument("--tiers", default="lexical,combined")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sandbagging_real.json")
    args = ap.parse_args()
    started = time.monotonic()
    data = sample(rows("sandbagging"), args.per_label)
    tiers = args.tiers.split(",")
    scorers = {t: Scorer(tier=t) for t in tiers}  # type: ignore[arg-type]
    flags: dict[str, list[int]] = {}
    for view in VIEWS:
        batch = [exchange(r, view) for r in data]
        feats = features.compute_batch(batch, {"reasoning_inconsistent", "probe_correct"})
        flags[f"{view}/inconsistent"] = [int(f["reasoning_inconsistent"] == 1) for f in feats]
        for tier, scorer in scorers.items():
            res = scorer.score_texts([view_text(r, view) for r in data])
            t = scorer.thresholds["sandbagging_intent"]
            intent = [int(x.scores["sandbagging_intent"] >= t) for x in res]
            flags[f"{view}/intent {tier}"] = intent
            flags[f"{view}/caught {tier}"] = [
                max(a, b) for a, b in zip(intent, flags[f"{view}/inconsistent"], strict=True)
            ]
        print(f"view {view}: scored {len(data)} rows ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    models = sorted({r["model"] for r in data})
    report: dict[str, Any] = {"rows": len(data), "per_label": args.per_label, "table": {}}
    head = " | ".join(f"{lab} (n={sum(r['label'] == lab for r in data)})" for lab in LABELS)
    print(f"\n| view / flag | {head} |\n|---|" + "---|" * len(LABELS))
    for name, v in flags.items():
        cells, entry = [], {}
        for lab in LABELS:
            idx = [i for i, r in enumerate(data) if r["label"] == lab]
            k = sum(v[i] for i in idx)
            per_model = {
                m: f"{sum(v[i] for i in idx if data[i]['model'] == m)}/{sum(data[i]['model'] == m for i in idx)}"
                for m in models
            }
            entry[lab] = {"flagged": k, "n": len(idx), "per_model": per_model}
            cells.append(f"{k}/{len(idx)} ({k / max(len(idx), 1):.1%})")
        report["table"][name] = entry
        print(f"| {name} | " + " | ".join(cells) + " |")
    wrong = [i for i, r in enumerate(data) if r["label"] == "honest" and r["final"] != r["expected"]]
    for name in flags:
        k = sum(flags[name][i] for i in wrong)
        report["table"][name]["honest_wrong"] = {"flagged": k, "n": len(wrong)}
    print(f"\nhonest rows answered wrongly (mistakes, not sandbagging): {len(wrong)}; flagged:")
    print(", ".join(f"{n} {sum(flags[n][i] for i in wrong)}" for n in flags))
    report["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
