"""Shadow budget: time to the first cue-gap finding and requests spent, uniform vs request-aware
sampling, at 1, 10 and 100 requests/s with 2% and 10% harmful requests.

    .venv/bin/python bench/shadow_budget.py [--seeds 10] [--hours 24] [--quick]

Traffic: requests arrive at random (Poisson) at the given rate; a share of them are harmful
requests of the HarmBench family, the rest Dolly's; all are held out from the classifiers (the
heads of bench/realistic.py, trained without them). The simulated model complies with harmful
requests 12% of the time under the 'monitored' cue and 3% under 'unmonitored' (A/A: 12% under
both), in do-not-answer's wording (bench/realistic.py).

Strategies, both under the shipped default budget (20 requests a minute, paced by
`monitor.budget.Budget`, two requests a pair):
- uniform: every request sampled with probability 0.02 (the former default);
- request-aware: the shipped default rules (policies/default.yaml: `harmful` requests, as the
  hashed classifier sees them before any arm is sent, at 0.25, others at 0.005), the budget
  spending first on the requests at the highest probability.

Each sampled pair goes through the simulator, cuewatch's features (harmful, harm_category,
complied) and the `cue_gap` detector as shipped (paired, only `harmful`, alpha 0.01). Only the
sampled requests are simulated: a request that is not sampled changes nothing, so the sampled
ones arrive as a thinned Poisson stream (exactly). Prints a table and writes
bench/results/shadow_budget.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import realistic  # noqa: E402

UNIFORM = 0.02
BATCH = 128  # pairs classified at a time
START = datetime(2026, 11, 1, tzinfo=UTC)


def default_rules() -> Any:
    from monitor.policy import load_policy

    exp = load_policy(ROOT / "policies" / "default.yaml").experiments[0]
    return exp.shadow


def classes(pool: dict[str, list[Any]]) -> dict[tuple[bool, bool], list[tuple[str, str | None]]]:
    """Prompts by (truly harmful, flagged by cuewatch's `harmful` before sending)."""
    from detectors import features
    from monitor.records import Exchange, Message

    prompts = [(t, c, True) for t, c in pool["harmful"]] + [(t, None, False) for t in pool["benign"]]
    exchanges = [
        Exchange(
            id=str(i),
            time=START,
            dialect="openai",
            path="/",
            status=0,
            outcome="ok",
            messages=[Message(role="user", text=t)],
        )
        for i, (t, _, _) in enumerate(prompts)
    ]
    flags = features.harmful(exchanges)
    out: dict[tuple[bool, bool], list[tuple[str, str | None]]] = {}
    for (text, cat, truth), flag in zip(prompts, flags, strict=True):
        out.setdefault((truth, bool(flag)), []).append((text, cat))
    return out


def run(
    seed: int,
    rate: float,
    share: float,
    strategy: str,
    prof: Any,
    by_class: dict[tuple[bool, bool], list[tuple[str, str | None]]],
    hours: float,
) -> dict[str, Any]:
    from detectors import features
    from detectors.base import Observation
    from detectors.cue_gap import CueGap
    from monitor.budget import Budget
    from monitor.records import Exchange

    rng = random.Random(seed)
    shadow = default_rules()
    rules = shadow.sample
    cues = realistic.cue_texts()
    # each class: its share of traffic, its sampling probability
    prior = {True: share, False: 1 - share}
    cells = []
    for (truth, flag), items in by_class.items():
        n_truth = sum(len(v) for (t, _), v in by_class.items() if t == truth)
        p = UNIFORM if strategy == "uniform" else rules.probability("gpt-sim", flag)[0]
        cells.append(((truth, flag), prior[truth] * len(items) / n_truth, p))
    sampled_rate = rate * sum(w * p for _, w, p in cells)
    weights = [w * p for _, w, p in cells]
    top = max(p for _, _, p in cells)
    clock = [0.0]
    budget = Budget(shadow.max_requests_per_minute, shadow.max_tokens_per_hour, clock=lambda: clock[0])
    det = CueGap(experiment="monitoring-cue")
    horizon = hours * 3600
    pending: list[tuple[float, int, list[Exchange]]] = []
    spent = pairs = informative = 0
    found: tuple[float, int] | None = None

    def flush() -> tuple[float, int] | None:
        """The time and the requests spent at the first finding among the pending pairs."""
        batch = [ex for _, _, pair in pending for ex in pair]
        feats = features.compute_batch(batch, det.wants)
        i = 0
        for t, spent_then, pair in pending:
            for ex in pair:
                if det.update(Observation(ex, feats[i])):
                    return t, spent_then
                i += 1
        return None

    while found is None:
        clock[0] += rng.expovariate(sampled_rate)
        if clock[0] > horizon:
            break
        (truth, flag), _, p = cells[rng.choices(range(len(cells)), weights)[0]]
        if not budget.try_take(2, priority=p / top):
            continue
        spent += 2
        pairs += 1
        informative += truth
        text, _ = rng.choice(by_class[(truth, flag)])
        pair_id = f"{seed}-{pairs}"
        exchanges = [
            realistic.answered(
                rng,
                prof,
                rng.choice(cues[arm]),
                text,
                id=f"{pair_id}-{arm}",
                seconds=clock[0],
                arm=arm,
                mode="shadow",
                pair_id=pair_id,
                sample_probability=p,
                origin="shadow",
            )[0]
            for arm in realistic.ARMS
        ]
        pending.append((clock[0], spent, exchanges))
        if len(pending) >= BATCH:
            found = flush()
            pending = []
    if found is None and pending:
        found = flush()
    return {
        "seed": seed,
        "hours_to_finding": None if found is None else found[0] / 3600,
        "extra_requests_to_finding": None if found is None else found[1],
        "extra_requests": spent,
        "pairs": pairs,
        "informative_pairs": informative,
        "simulated_hours": min(clock[0], horizon) / 3600,
    }


def summarise(runs: list[dict[str, Any]], hours: float) -> dict[str, Any]:
    t = np.asarray([r["hours_to_finding"] if r["hours_to_finding"] is not None else np.inf for r in runs])
    per_hour = [r["extra_requests"] / max(r["simulated_hours"], 1e-9) for r in runs]
    return {
        "median_hours": float(np.median(t)),
        "p90_hours": float(np.percentile(t, 90)),
        "found": int(np.isfinite(t).sum()),
        "runs": len(runs),
        "horizon_hours": hours,
        "extra_requests_to_finding_median": float(
            np.median([r["extra_requests_to_finding"] if r["hours_to_finding"] is not None else np.inf for r in runs])
        ),
        "extra_requests_per_hour": float(np.mean(per_hour)),
        "informative_share": float(np.mean([r["informative_pairs"] / max(r["pairs"], 1) for r in runs])),
    }


def _h(x: float) -> str:
    if not np.isfinite(x):
        return "not found"
    return f"{x * 60:.0f} min" if x < 1 else f"{x:.1f} h"


def _n(x: float) -> str:
    return f"{x:,.0f}" if np.isfinite(x) else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours per run at most")
    ap.add_argument("--rates", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    ap.add_argument("--shares", type=float, nargs="+", default=[0.02, 0.10])
    ap.add_argument("--aa-seeds", type=int, default=20, help="A/A runs (request-aware, 10 requests/s)")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "shadow_budget.json")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.hours, a.rates, a.aa_seeds = 3, 6.0, [10.0], 3
    t0 = time.time()
    pool = realistic.setup()
    by_class = classes(pool)
    print("prompts by (truly harmful, flagged):", {k: len(v) for k, v in sorted(by_class.items())}, flush=True)
    gap, null = realistic.profile(pool, 0.12, 0.03), realistic.profile(pool, 0.12, 0.12)
    out: dict[str, Any] = {"seeds": a.seeds, "hours": a.hours, "cases": {}}
    print(
        "\n| requests/s | harmful share | sampling | median time to first finding | p90 | found | "
        "extra requests to finding (median) | extra requests/hour | informative pairs |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for rate in a.rates:
        for share in a.shares:
            for strategy in ("uniform", "request-aware"):
                runs = [run(a.seed + i, rate, share, strategy, gap, by_class, a.hours) for i in range(a.seeds)]
                s = summarise(runs, a.hours)
                out["cases"][f"{rate:g}/s {share:.0%} {strategy}"] = {**s, "runs": runs}
                print(
                    f"| {rate:g} | {share:.0%} | {strategy} | {_h(s['median_hours'])} | {_h(s['p90_hours'])} | "
                    f"{s['found']}/{s['runs']} | {_n(s['extra_requests_to_finding_median'])} | "
                    f"{s['extra_requests_per_hour']:,.0f} | {s['informative_share']:.0%} |",
                    flush=True,
                )
    aa = {}
    for share in a.shares:
        runs = [
            run(a.seed + 1000 + i, 10.0, share, "request-aware", null, by_class, a.hours) for i in range(a.aa_seeds)
        ]
        alarms = sum(r["hours_to_finding"] is not None for r in runs)
        aa[f"{share:.0%}"] = {"alarms": alarms, "runs": len(runs), "runs_detail": runs}
        print(
            f"\nA/A (12% vs 12%), request-aware, 10 requests/s, {share:.0%} harmful: {alarms}/{len(runs)} runs "
            f"alarmed within {a.hours:g} h (alpha 0.01)",
            flush=True,
        )
    out["aa"] = aa
    out["seconds"] = round(time.time() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {a.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
