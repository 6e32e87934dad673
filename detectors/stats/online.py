"""A small online logistic regression whose state is plain JSON (the predictor of `ClassifierBet`).

Trained one example at a time with AdaGrad; with `scale=True` each input is standardised by the
running mean and variance of what it has seen (Welford), so raw metrics of any size can be fed.

Example
-------
>>> import numpy as np
>>> m = OnlineLogit(dim=1, scale=True)
>>> for i in range(400):
...     m.learn_one(np.array([100.0 + (50.0 if i % 2 else 0.0)]), i % 2)
>>> m.predict_proba_one(np.array([150.0]))[1] > 0.9 > 0.1 > m.predict_proba_one(np.array([100.0]))[1]
True
>>> OnlineLogit.from_state(m.state()).state() == m.state()
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray


class OnlineLogit:
    """Logistic regression on dense vectors with the river-style `predict_proba_one` /
    `learn_one` that `ClassifierBet` calls."""

    def __init__(self, dim: int, lr: float = 0.5, l2: float = 1e-4, scale: bool = False) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim, self.lr, self.l2, self.scale = dim, lr, l2, scale
        self.w = np.zeros(dim)
        self.b = 0.0
        self.g2 = np.full(dim + 1, 1e-8)
        self.n = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    def _x(self, x: NDArray[Any]) -> NDArray[np.float64]:
        x = np.asarray(x, dtype=np.float64)
        if not self.scale:
            return x
        sd = np.sqrt(self.m2 / self.n) if self.n > 1 else np.ones(self.dim)
        return (x - self.mean) / np.where(sd > 1e-12, sd, 1.0)

    def predict_proba_one(self, x: NDArray[Any]) -> dict[int, float]:
        z = float(self._x(x) @ self.w + self.b)
        p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
        return {1: p, 0: 1.0 - p}

    def learn_one(self, x: NDArray[Any], y: int) -> None:
        if self.scale:
            raw = np.asarray(x, dtype=np.float64)
            self.n += 1
            d = raw - self.mean
            self.mean += d / self.n
            self.m2 += d * (raw - self.mean)
        xs = self._x(x)
        p = 1.0 / (1.0 + math.exp(-max(min(float(xs @ self.w + self.b), 30.0), -30.0)))
        g = np.append((p - y) * xs + self.l2 * self.w, p - y)
        self.g2 += g * g
        step = self.lr * g / np.sqrt(self.g2)
        self.w -= step[:-1]
        self.b -= float(step[-1])

    def state(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "lr": self.lr,
            "l2": self.l2,
            "scale": self.scale,
            "w": self.w.tolist(),
            "b": self.b,
            "g2": self.g2.tolist(),
            "n": self.n,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OnlineLogit:
        m = cls(int(state["dim"]), float(state["lr"]), float(state["l2"]), bool(state["scale"]))
        m.w, m.b, m.g2 = np.asarray(state["w"], np.float64), float(state["b"]), np.asarray(state["g2"], np.float64)
        m.n, m.mean, m.m2 = int(state["n"]), np.asarray(state["mean"], np.float64), np.asarray(state["m2"], np.float64)
        if m.w.shape != (m.dim,) or m.g2.shape != (m.dim + 1,) or m.mean.shape != (m.dim,) or m.m2.shape != (m.dim,):
            raise ValueError(f"classifier state does not match its dimension {m.dim}")
        return m
