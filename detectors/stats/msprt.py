"""Mixture SPRT for a difference in means (Johari, Pekelis & Walsh 2017), as a baseline.

Normal approximation with the pooled variance plugged in and a N(0, tau^2) mixture over the
difference: Lambda_n = sqrt(V / (V + n tau^2)) exp(n^2 tau^2 d^2 / (2 V (V + n tau^2))), where n
is the effective number of pairs, d the observed difference and V the variance of one pair's
difference. Used by the benchmark for comparison, not for cuewatch's alarms: its guarantee is
only asymptotic (the plug-in variance), while the betting tests are exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def msprt_log_lambda(
    sum1: NDArray[Any], n1: NDArray[Any], sum0: NDArray[Any], n0: NDArray[Any], tau: float = 0.1
) -> NDArray[np.float64]:
    """log Lambda for Bernoulli arms given per-arm sums and counts (vectorised over streams)."""
    n1 = np.maximum(np.asarray(n1, dtype=np.float64), 1.0)
    n0 = np.maximum(np.asarray(n0, dtype=np.float64), 1.0)
    d = np.asarray(sum1) / n1 - np.asarray(sum0) / n0
    pooled = (np.asarray(sum1) + np.asarray(sum0)) / (n1 + n0)
    var = np.maximum(2.0 * pooled * (1.0 - pooled), 1e-6)  # variance of one pair's difference
    n = 2.0 * n1 * n0 / (n1 + n0)  # effective pairs
    t2 = tau**2
    out = 0.5 * np.log(var / (var + n * t2)) + (n**2 * t2 * d**2) / (2.0 * var * (var + n * t2))
    return np.asarray(out, dtype=np.float64)
