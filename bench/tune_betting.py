"""How the betting defaults were chosen: on tuning scenarios that are NOT the benchmark's cases
(other rates, other seeds), by the geometric mean of the median detection delay.

- lam = 0.95 and the Beta(1, 1) prior: one stratum, four rate pairs (`--part single`);
- pool = 20 (a stratum's prior at the strata's common odds ratio): four stratified scenarios
  (`--part strata`), among them strata that all behave alike, strata with rates of their own,
  a gap in one stratum only, and strata that always comply (benign requests let through).

Run: .venv/bin/python bench/tune_betting.py [--part single|strata]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.detection import unpaired

TUNING = [(0.03, 0.12), (0.05, 0.20), (0.60, 0.75), (0.10, 0.02)]  # (arm 0 rate, arm 1 rate)
# (name, (arm 0 rate, arm 1 rate) per stratum): each exchange falls in a stratum at random
STRATA = [
    ("8 alike, 3% vs 12%", [(0.03, 0.12)] * 8),
    (
        "8 with rates of their own",
        [(0.01, 0.04), (0.02, 0.08), (0.05, 0.15), (0.1, 0.25), (0.2, 0.4), (0.4, 0.6), (0.6, 0.75), (0.8, 0.9)],
    ),
    ("gap in 1 of 6", [(0.05, 0.35)] + [(0.1, 0.1)] * 5),
    ("2 always comply, 2 at 4% vs 14%", [(0.97, 0.97), (0.97, 0.97), (0.04, 0.14), (0.04, 0.14)]),
]


def _median(hits: np.ndarray) -> float:
    return float(np.median(np.where(hits > 0, hits / 2, np.inf)))


def _report(label: str, meds: list[float]) -> None:
    """One candidate's median delays per scenario and their geometric mean."""
    gmean = float(np.exp(np.mean(np.log(meds))))
    print(f"{label}: medians {[round(m, 1) for m in meds]}, geometric mean {gmean:.1f}", flush=True)


def single() -> None:
    for lam in (0.8, 0.9, 0.95, 1.0):
        for prior in ((0.5, 0.5), (1.0, 1.0)):
            meds = [
                _median(unpaired(p0, p1, 300, 4000, seed=100 + k, lam=lam, prior=prior)["betting"])
                for k, (p0, p1) in enumerate(TUNING)
            ]
            _report(f"lam {lam:<4} prior {prior}", meds)


def strata() -> None:
    print("scenarios: " + "; ".join(name for name, _ in STRATA))
    for pool in (0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 200.0):
        meds = [
            _median(unpaired(0, 0, 300, 8000, seed=200 + k, strata_rates=rates, pool=pool)["betting"])
            for k, (_, rates) in enumerate(STRATA)
        ]
        _report(f"pool {pool:<5}", meds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("single", "strata"), default=None, help="one part only (default: both)")
    a = ap.parse_args()
    if a.part in (None, "single"):
        single()
    if a.part in (None, "strata"):
        strata()


if __name__ == "__main__":
    main()
