"""How the betting defaults (lam = 0.95, Beta(1, 1) prior) were chosen: on tuning scenarios
that are NOT the benchmark's cases (other rates, other seeds), by the geometric mean of the
median detection delay. Run: .venv/bin/python bench/tune_betting.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.detection import unpaired

TUNING = [(0.03, 0.12), (0.05, 0.20), (0.60, 0.75), (0.10, 0.02)]  # (arm 0 rate, arm 1 rate)


def main() -> None:
    for lam in (0.8, 0.9, 0.95, 1.0):
        for prior in ((0.5, 0.5), (1.0, 1.0)):
            meds = []
            for k, (p0, p1) in enumerate(TUNING):
                hits = unpaired(p0, p1, 300, 4000, seed=100 + k, lam=lam, prior=prior)["betting"]
                meds.append(float(np.median(np.where(hits > 0, hits / 2, np.inf))))
            print(
                f"lam {lam:<4} prior {prior}: medians {[round(m, 1) for m in meds]}, "
                f"geometric mean {float(np.exp(np.mean(np.log(meds)))):.1f}"
            )


if __name__ == "__main__":
    main()
