"""Change detectors over a stream of numbers, with state that is plain JSON.

- `Adwin`: ADWIN (Bifet & Gavaldà, 2007). A window of recent values kept as an exponential
  histogram (at most `max_buckets` buckets of each size 1, 2, 4, ...); every `clock` values it
  looks for a split of the window into an older and a newer part whose means differ by more than
  the Hoeffding-type bound at confidence `delta`, and drops the older part when it finds one.
- `PageHinkley`: Page (1954), Hinkley (1971). Cumulative deviation from the running mean, with a
  forgetting factor; a change when it strays more than `threshold` from its extreme.

Both take one value at a time (`update`), say whether that value revealed a change
(`drift_detected`), and give their state as JSON-able data (`state()` / `from_state`).

Example
-------
>>> det = Adwin(delta=0.002, clock=8)
>>> hits = [i for i in range(2000) if det.update(0.1 if i < 1000 else 0.9)]
>>> 1000 <= hits[0] < 1100, round(det.estimation, 1)
(True, 0.9)
>>> Adwin.from_state(det.state()).state() == det.state()
True
"""

from __future__ import annotations

import math
from typing import Any

_MIN_PART = 5  # values each side of a split, at the least
_GRACE = 10  # values seen before the first check


class Adwin:
    """ADWIN: adaptive windowing for changes in the mean of a stream."""

    def __init__(self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1:
            raise ValueError(f"clock must be >= 1, got {clock}")
        if max_buckets < 2:
            raise ValueError(f"max_buckets must be >= 2, got {max_buckets}")
        self.delta, self.clock, self.max_buckets = delta, clock, max_buckets
        # rows[i]: buckets of 2**i values each, oldest first, as [total, variance]
        self.rows: list[list[list[float]]] = []
        self.width = 0
        self.total = 0.0
        self.variance = 0.0  # sum of squared deviations from the window's mean
        self.ticks = 0
        self.drift_detected = False

    @property
    def estimation(self) -> float:
        return self.total / self.width if self.width else 0.0

    def update(self, x: float) -> bool:
        """Add one value; True when the window was cut (a change in the mean)."""
        x = float(x)
        if self.width:
            mean = self.total / self.width
            self.variance += self.width * (x - mean) ** 2 / (self.width + 1)
        self.width += 1
        self.total += x
        if not self.rows:
            self.rows.append([])
        self.rows[0].append([x, 0.0])
        self._compress()
        self.ticks += 1
        self.drift_detected = False
        if self.ticks % self.clock == 0 and self.width > _GRACE:
            while self._cut():
                self.drift_detected = True
        return self.drift_detected

    def _compress(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) <= self.max_buckets:
                return
            (t1, v1), (t2, v2) = row[0], row[1]
            n = 2.0**i
            merged = [t1 + t2, v1 + v2 + n * n / (2 * n) * (t1 / n - t2 / n) ** 2]
            del row[:2]
            if i + 1 == len(self.rows):
                self.rows.append([])
            self.rows[i + 1].append(merged)

    def _cut(self) -> bool:
        """Drop the oldest bucket if some split of the window shows two different means."""
        if self.width < 2 * _MIN_PART:
            return False
        log_term = math.log(2.0 * math.log(self.width) / self.delta)
        var = self.variance / self.width
        n0, t0 = 0.0, 0.0
        for i in range(len(self.rows) - 1, -1, -1):  # oldest (biggest) buckets first
            size = 2.0**i
            for total, _ in self.rows[i]:
                n0 += size
                t0 += total
                n1 = self.width - n0
                if n1 < _MIN_PART:
                    return False
                if n0 < _MIN_PART:
                    continue
                m = 1.0 / (1.0 / n0 + 1.0 / n1)
                eps = math.sqrt(2.0 * m * var * log_term) / m + 2.0 / (3.0 * m) * log_term
                if abs(t0 / n0 - (self.total - t0) / n1) > eps:
                    self._drop_oldest()
                    return True
        return False

    def _drop_oldest(self) -> None:
        i = len(self.rows) - 1
        total, var = self.rows[i].pop(0)
        n = 2.0**i
        self.width -= int(n)
        self.total -= total
        if self.width:
            mean_rest = self.total / self.width
            self.variance -= var + n * self.width / (n + self.width) * (total / n - mean_rest) ** 2
            self.variance = max(self.variance, 0.0)
        else:
            self.variance = 0.0
        while self.rows and not self.rows[-1]:
            self.rows.pop()

    def state(self) -> dict[str, Any]:
        return {
            "delta": self.delta,
            "clock": self.clock,
            "max_buckets": self.max_buckets,
            "rows": [[list(b) for b in row] for row in self.rows],
            "width": self.width,
            "total": self.total,
            "variance": self.variance,
            "ticks": self.ticks,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Adwin:
        det = cls(float(state["delta"]), int(state["clock"]), int(state["max_buckets"]))
        det.rows = [[[float(t), float(v)] for t, v in row] for row in state["rows"]]
        det.width, det.total = int(state["width"]), float(state["total"])
        det.variance, det.ticks = float(state["variance"]), int(state["ticks"])
        if sum(len(row) * 2**i for i, row in enumerate(det.rows)) != det.width:
            raise ValueError("ADWIN state is inconsistent: its buckets do not add up to its width")
        return det


class PageHinkley:
    """Page-Hinkley test for a change in the mean, in either direction."""

    def __init__(
        self, delta: float = 0.005, threshold: float = 50.0, alpha: float = 0.9999, min_instances: int = 30
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.delta, self.threshold, self.alpha, self.min_instances = delta, threshold, alpha, min_instances
        self.n = 0
        self.mean = 0.0
        self.up = self.up_min = 0.0  # cumulative deviation for an increase, and its minimum
        self.down = self.down_max = 0.0  # ... for a decrease, and its maximum
        self.drift_detected = False

    @property
    def estimation(self) -> float:
        return self.mean

    def update(self, x: float) -> bool:
        if self.drift_detected:
            self.__init__(self.delta, self.threshold, self.alpha, self.min_instances)  # type: ignore[misc]
        x = float(x)
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.up = self.alpha * self.up + (x - self.mean - self.delta)
        self.down = self.alpha * self.down + (x - self.mean + self.delta)
        self.up_min, self.down_max = min(self.up_min, self.up), max(self.down_max, self.down)
        self.drift_detected = self.n >= self.min_instances and (
            self.up - self.up_min > self.threshold or self.down_max - self.down > self.threshold
        )
        return self.drift_detected

    def state(self) -> dict[str, Any]:
        keys = ("delta", "threshold", "alpha", "min_instances", "n", "mean", "up", "up_min", "down", "down_max")
        return {k: getattr(self, k) for k in keys} | {"drift_detected": self.drift_detected}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PageHinkley:
        det = cls(float(state["delta"]), float(state["threshold"]), float(state["alpha"]), int(state["min_instances"]))
        det.n, det.mean = int(state["n"]), float(state["mean"])
        det.up, det.up_min = float(state["up"]), float(state["up_min"])
        det.down, det.down_max = float(state["down"]), float(state["down_max"])
        det.drift_detected = bool(state["drift_detected"])
        return det
