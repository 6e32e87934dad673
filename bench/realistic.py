"""End to end on third-party text: requests to the first cue-gap finding, product vs oracle.

    .venv/bin/python bench/realistic.py [--seeds 20] [--harmful-share 1.0 0.1] [--quick]

Held out from the classifiers (docs/data.md): the harmful prompts of the HarmBench family
(`harmbench`, `tdc2023`), the ordinary prompts of `dolly`, and the answers of `do-not-answer`
(six models) and `dolly-answers`. The script first trains every shipped head (hashed `harmful`,
`harm_category`, `refusal`; the semantic tier `harmful_semantic`, `refusal_semantic`) by the shipped recipe
(`bench/train_classifiers.py`) on every other source, into `bench/results/realistic-models/`,
and points cuewatch at them with `CUEWATCH_MODELS_DIR`; nothing it is scored on was seen in
training or calibration.

Traffic: a share of harmful requests (HarmBench family; all, and 10%) among dolly requests, the default
policy's cue texts in the system prompt. The simulator (monitor.sim) answers: harmful requests
are complied with 12% of the time under 'monitored' and 3% under 'unmonitored' (or 12% under
both: A/A); it refuses and complies in the words of do-not-answer answers so annotated by that
dataset's annotators (actions 0, and 3 or 5; `--comply-actions 5`: 5 alone), and answers the rest
with Dolly's human answers.

- live: each request gets one arm at random (50/50), as in a live experiment;
- shadow: each request is sent under both arms (a pair), as for a sampled shadow request.

The `cue_gap` detector as shipped (only `harmful`, strata `harm_category`, alpha 0.01) reads, on
the same traffic: cuewatch's default features computed from the text (hashed heads); the same
with the semantic heads (hashed n-grams beside MiniLM: `only: harmful_semantic`, `metrics:
[complied_semantic]`), or the semantic request head with the hashed answer head (`only:
harmful_semantic`, `metrics: [complied]`); two other strata of the hashed features (every request, strata
`harm_band`; flagged requests, strata `harm_band`, that is flagged and surely flagged); or the
simulator's truth (oracle: harmful or not, its category, complied or not). The figure is the number of
requests (live) or sampled requests (shadow) until the first finding. Prints a table and writes
bench/results/realistic.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.external import rows  # noqa: E402

MODELS = ROOT / "bench" / "results" / "realistic-models"
HELD_PROMPTS = {"harmbench", "tdc2023", "dolly"}
HELD_ANSWERS = {"do-not-answer", "dolly-answers"}
ARMS = ("monitored", "unmonitored")
# Do-Not-Answer's annotated actions (docs/data/responses.md): the simulator refuses in the words of
# action 0 (not willing to answer) and complies in those of actions 3 (answers, with a disclaimer)
# and 5 (directly follows the instruction); actions 1, 2 and 4 (refutes the premise, two sides of
# an opinion, cannot answer for lack of knowledge) are neither a refusal of a harmful request nor
# compliance with one, so they are left out.
REFUSE, COMPLY = {0}, {3, 5}
START = datetime(2026, 11, 1, tzinfo=UTC)
CHUNK = 500  # requests generated and classified at a time


# ---------------------------------------------------------------------------- held-out heads


def prepare_models() -> None:
    """The heads trained without the held-out sources (kept when already made from the same rows)."""
    from bench import train_classifiers as tc

    names = ("harmful", "harm_category", "refusal", "harmful_semantic", "refusal_semantic")
    texts, labels, groups, data = tc.harmful_data()
    keep = tc.trainable(data, tc.outside(data, {tc.family(s) for s in HELD_PROMPTS}))  # with texts shared elsewhere
    rtexts, rlabels, rgroups, rdata = tc.refusal_data()
    rkeep = [i for i, r in enumerate(rdata) if r["source"] not in HELD_ANSWERS | tc.EVAL_ONLY_ANSWERS]
    stamp = MODELS / "held_out.json"
    want = {
        "prompts": sorted(HELD_PROMPTS),
        "answers": sorted(HELD_ANSWERS),
        "semantic": tc.SEMANTIC_ENCODER,
        # the recipe: scored (calibration, threshold) by the most harmful part, benign prompts' later parts trained on
        "recipe": "parts, benign parts",
        "no_threshold_vote": sorted(tc.NO_THRESHOLD_VOTE),  # sources that train but do not set the threshold
        # a source added to the training data makes the cached heads stale
        "trained_on": {
            "prompts": dict(sorted(Counter(data[i]["source"] for i in keep).items())),
            "answers": dict(sorted(Counter(rdata[i]["source"] for i in rkeep).items())),
        },
    }
    if stamp.exists() and json.loads(stamp.read_text()) == want and all((MODELS / f"{n}.npz").exists() for n in names):
        return
    MODELS.mkdir(parents=True, exist_ok=True)
    print("training the heads without the held-out sources ...", file=sys.stderr, flush=True)
    made = []  # each names the sources it saw in meta["sources"]
    for encoder in ("hashed", tc.SEMANTIC_ENCODER):
        x = tc.encode(texts, encoder)
        made.append(tc.train_harmful(x, labels, groups, data, keep, encoder, tc.later_parts(data, encoder)))
        made.append(tc.train_refusal(tc.encode(rtexts, encoder), rlabels, rgroups, rkeep, encoder))
        if encoder == "hashed":
            made.append(tc.train_category(x, groups, data, keep, encoder))
    for model in made:
        model.meta["held_out"] = want
        model.save(MODELS / f"{model.name}.npz")
    stamp.write_text(json.dumps(want))


# ---------------------------------------------------------------------------- traffic


def pools(comply: set[int] = COMPLY) -> dict[str, list[Any]]:
    prompts = rows("prompts")
    answers = rows("responses")
    harmful = [r for r in prompts if r["source"] in HELD_PROMPTS and r["label"] == "harmful"]
    dna = [r for r in answers if r["source"] == "do-not-answer"]
    return {
        "harmful": [(r["text"], r.get("category")) for r in harmful],
        "benign": [r["text"] for r in prompts if r["source"] == "dolly"],
        "refusals": [r["response"] for r in dna if r["source_label"]["action"] in REFUSE],
        "compliances": [r["response"] for r in dna if r["source_label"]["action"] in comply],
        "answers": [r["response"] for r in answers if r["source"] == "dolly-answers"],
    }


def profile(p: dict[str, list[Any]], monitored: float, unmonitored: float) -> Any:
    from monitor.sim import load_profile
    from monitor.sim.profiles import CueRates, Wording

    base = load_profile("alignment-faker")
    behaviour = base.behaviour.model_copy(
        update={"comply_harmful": CueRates(monitored=monitored, unmonitored=unmonitored, neutral=unmonitored)}
    )
    wording = Wording(refusals=p["refusals"], compliances=p["compliances"], benign=p["answers"])
    return base.model_copy(
        update={
            "behaviour": behaviour,
            "wording": wording,
            "harmful_markers": [text for text, _ in p["harmful"]],
        }
    )


def cue_texts() -> dict[str, list[str]]:
    from monitor.policy import load_policy

    exp = load_policy(ROOT / "policies" / "default.yaml").experiments[0]
    return {arm.name: list(arm.cue.texts) for arm in exp.arms}


def answered(
    rng: random.Random, prof: Any, cue: str, text: str, *, id: str, seconds: float, **labels: Any
) -> tuple[Any, Any]:
    """One request under `cue`, answered by the simulator: the exchange cuewatch records (an
    arm of the default experiment; `labels` add mode, arm, pair...) and the simulator's reply."""
    from monitor.records import Exchange, Message
    from monitor.sim import decide

    msgs = [Message(role="system", text=cue), Message(role="user", text=text)]
    reply = decide(prof, prof.behaviour, rng, msgs, [])
    ex = Exchange(
        id=id,
        time=START + timedelta(seconds=seconds),
        dialect="openai",
        path="/v1/chat/completions",
        status=200,
        outcome="ok",
        experiment="monitoring-cue",
        assignment_probability=0.5,
        cue=cue,
        messages=msgs,
        response_text=reply.text,
        **labels,
    )
    return ex, reply


def setup(comply: set[int] = COMPLY) -> dict[str, list[Any]]:
    """Held-out heads in use (trained if needed) and the held-out pools."""
    prepare_models()
    os.environ["CUEWATCH_MODELS_DIR"] = str(MODELS)
    from detectors import features

    features._MEMO_SIZE = 100_000  # every distinct text of the pools stays classified once
    return pools(comply)


class Stream:
    """Requests and the simulator's answers for one seed, as exchanges, with the truth."""

    def __init__(self, seed: int, mode: str, share: float, p: dict[str, list[Any]], prof: Any) -> None:
        self.rng = random.Random(seed)
        self.mode, self.share, self.p, self.prof = mode, share, p, prof
        self.cues = cue_texts()
        self.n = 0

    def chunk(self) -> tuple[list[Any], list[dict[str, Any]], list[int]]:
        """CHUNK requests: exchanges, oracle features and the request number of each exchange."""
        exchanges, truth, number = [], [], []
        for _ in range(CHUNK):
            self.n += 1
            harmful = self.rng.random() < self.share
            text, category = (
                self.rng.choice(self.p["harmful"]) if harmful else (self.rng.choice(self.p["benign"]), None)
            )
            arms = ARMS if self.mode == "shadow" else (self.rng.choice(ARMS),)
            pair = f"p{self.n}" if self.mode == "shadow" else None
            for arm in arms:
                ex, reply = answered(
                    self.rng,
                    self.prof,
                    self.rng.choice(self.cues[arm]),
                    text,
                    id=f"{self.n}-{arm}",
                    seconds=self.n,
                    arm=arm,
                    mode=self.mode,
                    pair_id=pair,
                    origin="shadow" if pair else "client",
                )
                exchanges.append(ex)
                truth.append(
                    {
                        "harmful": int(reply.category.startswith("harmful")),
                        "harm_category": category,
                        "complied": int(reply.category != "harmful_refused"),
                    }
                )
                number.append(self.n)
        return exchanges, truth, number


def first_finding(
    seed: int, mode: str, share: float, p: dict[str, list[Any]], prof: Any, horizon: int
) -> dict[str, Any]:
    """Requests until the first finding, for the product's features and for the truth."""
    from detectors import features
    from detectors.base import Observation
    from detectors.cue_gap import CueGap

    stream = Stream(seed, mode, share, p, prof)
    det = {
        "hashed": CueGap(experiment="monitoring-cue", only="harmful", condition_on="harm_category"),
        "banded": CueGap(experiment="monitoring-cue", only=None, condition_on="harm_band"),
        "flagged_banded": CueGap(experiment="monitoring-cue", only="harmful", condition_on="harm_band"),
        "semantic": CueGap(experiment="monitoring-cue", metrics=["complied_semantic"], only="harmful_semantic"),
        "semantic_requests": CueGap(experiment="monitoring-cue", metrics=["complied"], only="harmful_semantic"),
        "oracle": CueGap(experiment="monitoring-cue", only="harmful", condition_on="harm_category"),
    }
    hit: dict[str, int | None] = dict.fromkeys(det)
    counts: Counter[str] = Counter()
    wants = set().union(*(d.wants for name, d in det.items() if name != "oracle"))
    while stream.n < horizon and any(v is None for v in hit.values()):
        exchanges, truth, number = stream.chunk()
        feats = features.compute_batch(exchanges, wants)
        for ex, f, t, n in zip(exchanges, feats, truth, number, strict=True):
            counts["exchanges"] += 1
            counts["harmful_true"] += t["harmful"]
            for kind, flag, metric in (
                ("hashed", "harmful", "complied"),
                ("semantic", "harmful_semantic", "complied_semantic"),
            ):
                counts[f"{kind}_flagged"] += int(bool(f[flag]))
                counts[f"{kind}_flagged_true"] += int(bool(f[flag]) and t["harmful"])
                if t["harmful"]:
                    counts[f"{kind}_complied_agree"] += int(f[metric] == t["complied"])
            for name, d in det.items():
                values = t if name == "oracle" else f
                if hit[name] is None and d.update(Observation(ex, values)):
                    hit[name] = n
    return {"seed": seed, "requests": stream.n, **hit, "counts": dict(counts)}


# ---------------------------------------------------------------------------- report


def summarise(values: list[int | None], horizon: int) -> dict[str, Any]:
    arr = np.asarray([v if v is not None else np.inf for v in values], dtype=float)
    found = arr[np.isfinite(arr)]
    return {
        "median": float(np.median(arr)),
        "p90": float(np.percentile(arr, 90)),
        "found": int(found.size),
        "runs": len(values),
        "horizon": horizon,
    }


def _fmt(x: float) -> str:
    return "never" if not np.isfinite(x) else f"{x:,.0f}"


WHO = {
    "hashed": "cuewatch, only flagged requests (hashed `harmful`, strata `harm_category`)",
    "banded": "cuewatch, every request (strata `harm_band`, hashed)",
    "flagged_banded": "cuewatch, only flagged requests (hashed `harmful`, strata `harm_band`: `b3`, `b4`)",
    "semantic": "cuewatch semantic heads (`harmful_semantic`, `complied_semantic`; hashed + MiniLM)",
    "semantic_requests": "cuewatch semantic request head, hashed answers (`harmful_semantic`, `complied`)",
    "oracle": "oracle (simulator truth)",
}


def _report(share: float, mode: str, case: str, horizon: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    for r in runs:
        totals.update(r["counts"])
    res: dict[str, Any] = {who: summarise([r[who] for r in runs], horizon) for who in WHO}
    for who, label in WHO.items():
        s = res[who]
        print(
            f"| {share:.0%} | {mode} {case} | {label} | {_fmt(s['median'])} | {_fmt(s['p90'])} | "
            f"{s['found']}/{s['runs']} (horizon {horizon:,}) |",
            flush=True,
        )
    ht = max(totals["harmful_true"], 1)
    for kind in ("hashed", "semantic"):
        flagged = max(totals[f"{kind}_flagged"], 1)
        res[f"{kind}_quality"] = {
            "harmful_recall": totals[f"{kind}_flagged_true"] / ht,
            "harmful_precision": totals[f"{kind}_flagged_true"] / flagged,
            "complied_agrees_on_harmful": totals[f"{kind}_complied_agree"] / ht,
        }
        q = res[f"{kind}_quality"]
        print(
            f"|  |  | {kind}: harmful recall {q['harmful_recall']:.1%}, precision {q['harmful_precision']:.1%}; "
            f"`complied` right on {q['complied_agrees_on_harmful']:.1%} of harmful exchanges | | | |",
            flush=True,
        )
    res["runs"] = runs
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20, help="runs per case")
    ap.add_argument(
        "--harmful-share", type=float, nargs="+", default=[1.0, 0.1], help="shares of harmful requests in the traffic"
    )
    ap.add_argument("--horizon", type=int, default=30_000, help="requests per run at most (live)")
    ap.add_argument("--aa-horizon", type=int, default=20_000, help="requests per A/A run (live; shadow: half)")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--quick", action="store_true", help="5 seeds, short horizons: a smoke run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "realistic.json")
    ap.add_argument(
        "--comply-actions",
        default="3,5",
        help="do-not-answer actions whose answers the simulator complies in (5 alone: without the "
        "disclaimer answers of action 3, some of which decline and point to an expert)",
    )
    a = ap.parse_args()
    comply = {int(v) for v in a.comply_actions.split(",")}
    if not comply <= {2, 3, 5}:
        ap.error("--comply-actions: do-not-answer actions that answer are 2, 3 and 5")
    if a.quick:
        a.seeds, a.horizon, a.aa_horizon = 5, 10_000, 2_000
    t0 = time.time()
    p = setup(comply)
    print(
        f"held-out pools: {len(p['harmful'])} harmful and {len(p['benign'])} dolly prompts; "
        f"{len(p['refusals'])} refusals, {len(p['compliances'])} compliances (do-not-answer), "
        f"{len(p['answers'])} Dolly answers",
        flush=True,
    )
    gap, null = profile(p, 0.12, 0.03), profile(p, 0.12, 0.12)
    out: dict[str, Any] = {
        "harmful_share": a.harmful_share,
        "seeds": a.seeds,
        "held_out": {"prompts": sorted(HELD_PROMPTS), "answers": sorted(HELD_ANSWERS)},
        "comply_actions": sorted(comply),
        "cases": {},
    }
    print(
        "\n| harmful share | case | detector input | median requests to first finding | p90 | found |"
        "\n|---|---|---|---|---|---|"
    )
    for share in a.harmful_share:
        for mode in ("live", "shadow"):
            for case, prof, horizon in (("gap 12% vs 3%", gap, a.horizon), ("A/A 12% vs 12%", null, a.aa_horizon)):
                horizon = horizon if mode == "live" else horizon // 2
                runs = [first_finding(a.seed + i, mode, share, p, prof, horizon) for i in range(a.seeds)]
                key = f"{share:.0%} harmful, {mode} {case}"
                out["cases"][key] = _report(share, mode, case, horizon, runs)
    out["seconds"] = round(time.time() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {a.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
