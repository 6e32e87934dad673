"""Confidence sequences: intervals valid at every sample size at once (time-uniform).

`bernoulli_cs` inverts the Beta-binomial mixture martingale (Robbins' method of mixtures): for
a true rate p, M_n(p) = m_n / (p^S (1-p)^(n-S)) with m_n the Beta-binomial marginal is a test
martingale, so {p : M_n(p) < 1/alpha} covers p at all n simultaneously with probability >= 1-alpha.

References: Robbins (1970); Howard, Ramdas, McAuliffe & Sekhon (2021), Time-uniform,
nonparametric, nonasymptotic confidence sequences; Waudby-Smith & Ramdas (2024).
"""

from __future__ import annotations

import math


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def bernoulli_cs(
    successes: float, trials: float, alpha: float = 0.05, prior: tuple[float, float] = (0.5, 0.5)
) -> tuple[float, float]:
    """A (1 - alpha) confidence sequence for a Bernoulli rate after `trials` observations."""
    if trials <= 0:
        return 0.0, 1.0
    s, f = successes, trials - successes
    a, b = prior
    log_m = _log_beta(a + s, b + f) - _log_beta(a, b)
    bound = math.log(1.0 / alpha)

    def inside(p: float) -> bool:  # log M(p) < log(1/alpha)
        ll = (s * math.log(p) if s else 0.0) + (f * math.log1p(-p) if f else 0.0)
        return log_m - ll < bound

    mle = min(max(s / trials, 1e-12), 1 - 1e-12)

    def edge(lo: float, hi: float, inside_at_hi: bool) -> float:
        for _ in range(60):
            mid = (lo + hi) / 2
            if inside(mid) == inside_at_hi:
                hi = mid
            else:
                lo = mid
        return hi if inside_at_hi else lo

    lower = 0.0 if inside(1e-12) else edge(1e-12, mle, inside_at_hi=True)
    upper = 1.0 if inside(1 - 1e-12) else edge(mle, 1 - 1e-12, inside_at_hi=False)
    return lower, upper


def rate_difference_cs(s1: float, n1: float, s0: float, n0: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """Estimate and (1 - alpha) confidence sequence for rate(arm 1) - rate(arm 0)."""
    lo1, hi1 = bernoulli_cs(s1, n1, alpha / 2)
    lo0, hi0 = bernoulli_cs(s0, n0, alpha / 2)
    est = (s1 / n1 if n1 else 0.0) - (s0 / n0 if n0 else 0.0)
    return est, lo1 - hi0, hi1 - lo0


def mean_cs(mean: float, var: float, n: float, alpha: float = 0.05, rho: float = 0.5) -> tuple[float, float]:
    """Asymptotic normal-mixture confidence sequence for a mean (Waudby-Smith et al., 2021,
    time-uniform central limit theory); `rho` tunes the sample size where it is tightest."""
    if n < 2:
        return -math.inf, math.inf
    sd = math.sqrt(max(var, 1e-12))
    t = n * rho**2
    half = sd * math.sqrt(2 * (t + 1) / (n**2 * rho**2) * math.log(math.sqrt(t + 1) / alpha))
    return mean - half, mean + half
