"""The small trained head: L2-regularised logistic regression on standardised features.

Fitted by Newton's method (a few dozen features, a few hundred examples); the weights are plain
JSON shipped in the repo (`weights.json`, written by `bench/train_scratchpad.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Head:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def logit(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.asarray(z @ np.asarray(self.coef) + self.intercept, dtype=np.float64)

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated probabilities, one per row of `x`."""
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(self.logit(x), -30, 30))), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "coef": list(self.coef), "intercept": self.intercept}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Head:
        return cls(tuple(d["mean"]), tuple(d["std"]), tuple(d["coef"]), float(d["intercept"]))


def fit(
    x: NDArray[np.float64], y: NDArray[np.float64], l2: float = 1.0, nonneg: tuple[int, ...] = (), iters: int = 50
) -> Head:
    """Fit on rows `x`, labels `y` in {0, 1}. `nonneg`: features whose weight is kept >= 0, so
    the score cannot fall as that evidence grows (e.g. the count of lexical hits)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        for i in nonneg:
            w[i] = max(w[i], 0.0)
        if float(np.abs(step).max()) < 1e-8:
            break
    coef = tuple(float(v) for v in w[:-1])
    if not all(math.isfinite(v) for v in coef):
        raise ValueError("logistic fit diverged")
    return Head(tuple(float(v) for v in mean), tuple(float(v) for v in std), coef, float(w[-1]))
