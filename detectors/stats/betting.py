"""Anytime-valid tests by betting that the arm is independent of the behaviour.

The arm of each exchange is assigned at random with a known probability, so "the cue does not
change behaviour" means the arm is independent of the outcome. Before each arm is revealed, a
predictor guesses q = P(arm = 1 | outcome, stratum) from past data only; wealth is multiplied by
q/pi when the arm is 1 and (1-q)/(1-pi) when it is 0. Under the null each factor has conditional
expectation exactly 1, whatever the predictor, so wealth is a nonnegative martingale and by
Ville's inequality P(wealth ever >= 1/alpha) <= alpha. The predictor is mixed with pi
(q = (1-lam) pi + lam q_hat) so that a bad predictor cannot ruin the bet.

Every class works on a batch of independent streams at once (arrays with a leading stream
axis): a detector uses one stream, the benchmarks run thousands with the same code.

References
----------
Shekhar & Ramdas (2023), Nonparametric two-sample testing by betting.
Podkopaev, Bloebaum, Kasiviswanathan & Ramdas (2023), Sequential kernelized independence testing;
Podkopaev & Ramdas (2023), Sequential predictive two-sample and independence testing.
Ville (1939); Waudby-Smith & Ramdas (2024), Estimating means of bounded random variables by betting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.stats.online import OnlineLogit

Array = NDArray[np.float64]

#: Mixing weight and prior chosen on tuning scenarios distinct from the benchmark's (see
#: bench/tune_betting.py and docs/benchmarks.md), never on the benchmark cases themselves.
DEFAULT_LAMBDA = 0.95
DEFAULT_PRIOR = (1.0, 1.0)
DEFAULT_POOL = 20.0


def _check(name: str, value: float, lo: float, hi: float, *, open_lo: bool = True) -> None:
    ok = (lo < value if open_lo else lo <= value) and value <= hi
    if not ok or math.isnan(value):
        raise ValueError(f"{name} must be in {'(' if open_lo else '['}{lo}, {hi}], got {value!r}")


class _Bet:
    """Wealth reset and JSON-able state shared by the bets; `_STATE` names their arrays."""

    _STATE: tuple[str, ...] = ()
    log_wealth: Array

    def reset_wealth(self, which: NDArray[Any] | None = None) -> None:
        """Start betting again from wealth 1 (re-arming); what the predictor learned is kept."""
        if which is None:
            self.log_wealth[:] = 0.0
        else:
            self.log_wealth[which] = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name).tolist() for name in self._STATE}

    def restore(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            shape = getattr(self, name).shape
            setattr(self, name, np.asarray(state[name], dtype=np.float64).reshape(shape))


class ArmBet(_Bet):
    """Unpaired test of arm independence for a binary outcome, stratified by request features.

    The predictor is Bayesian in the per-arm outcome rates: with Beta(prior) posteriors p_a(s)
    for the outcome rate of arm a in stratum s, q_hat = pi P(y|1,s) / (pi P(y|1,s) + (1-pi)
    P(y|0,s)). Rare outcomes that differ between arms move q_hat far from pi; common ones that
    do not barely move it, so no wealth is wasted on strata that carry no signal.

    With strata, the arms' rates in a stratum borrow from what all strata show: each stratum's
    prior (`pool` pseudo-observations on top of the Beta prior) is centred on the stratum's own
    rate (both arms), with the arms set apart by the common odds ratio of all strata
    (Mantel-Haenszel, the stratum included). The gap the strata share is then learned once, not
    once per stratum, while each stratum keeps its base rate: strata that comply alike, strata
    of requests that are always complied with (benign ones let through) and strata with rates
    of their own cost less than strata learning alone; a gap confined to one stratum costs a
    little more (bench/tune_betting.py). Everything is learned from past exchanges only, so the
    bet stays a test martingale. With `n_strata` 1 `pool` is unused; a caller with strata that
    all land in one should pass 0 (the pooled prior would count that stratum's data twice).

    Parameters
    ----------
    pi: probability that an exchange of the two arms compared is in arm 1.
    n_strata: number of request strata (e.g. harmful-request categories).
    lam: weight of the predictor against pi, in (0, 1].
    prior: Beta prior (a, b) of each arm's outcome rate.
    pool: pseudo-observations of each stratum's prior at the common odds ratio of all strata
        (0: strata learn alone).
    streams: number of independent streams (1 for a detector).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bet = ArmBet(pi=0.5)
    >>> for _ in range(400):
    ...     arm = int(rng.random() < 0.5)
    ...     y = int(rng.random() < (0.14 if arm else 0.02))
    ...     _ = bet.update(np.array([arm]), np.array([y]))
    >>> bool(bet.log_wealth[0] > math.log(100))
    True
    """

    _STATE = ("successes", "trials", "log_wealth")

    def __init__(
        self,
        pi: float,
        n_strata: int = 1,
        lam: float = DEFAULT_LAMBDA,
        prior: tuple[float, float] = DEFAULT_PRIOR,
        streams: int = 1,
        pool: float = DEFAULT_POOL,
    ) -> None:
        _check("pi", pi, 0.0, 1.0)
        if pi >= 1.0:
            raise ValueError(f"pi must be < 1, got {pi}")
        _check("lam", lam, 0.0, 1.0)
        if n_strata < 1:
            raise ValueError(f"n_strata must be >= 1, got {n_strata}")
        if min(prior) <= 0:
            raise ValueError(f"prior must be positive, got {prior}")
        if not 0 <= pool < math.inf:
            raise ValueError(f"pool must be >= 0 and finite, got {pool!r}")
        self.pi, self.lam, self.prior, self.n_strata, self.streams = pi, lam, prior, n_strata, streams
        self.pool = pool if n_strata > 1 else 0.0  # one stratum: nothing to pool
        self.successes = np.zeros((streams, n_strata, 2))
        self.trials = np.zeros((streams, n_strata, 2))
        self.log_wealth = np.zeros(streams)

    def predict(self, y: NDArray[Any], stratum: NDArray[Any] | None = None) -> Array:
        """q = P(arm = 1) for the next exchanges, from their outcomes and past data only."""
        idx = np.arange(self.streams)
        st = np.zeros(self.streams, dtype=int) if stratum is None else stratum
        a, b, m = *self.prior, self.pool
        succ, tri = self.successes[idx, st], self.trials[idx, st]  # (streams, 2)
        centre = self._centre(succ, tri) if m else 0.0
        rate = (succ + a + m * centre) / (tri + a + b + m)
        lik = np.where(np.asarray(y)[:, None] == 1, rate, 1.0 - rate)
        q_hat = self.pi * lik[:, 1] / (self.pi * lik[:, 1] + (1.0 - self.pi) * lik[:, 0])
        return np.asarray((1.0 - self.lam) * self.pi + self.lam * q_hat, dtype=np.float64)

    def _centre(self, succ: Array, tri: Array) -> Array:
        """Each arm's prior rate in the strata of `succ`, `tri` (streams, 2): the stratum's rate
        over both arms, its log odds moved half the common log odds ratio each way."""
        a, b = self.prior
        s, n = self.successes, self.trials  # (streams, strata, 2)
        total = np.maximum(n.sum(axis=2), 1.0)
        mh_num = 0.5 + (s[..., 1] * (n[..., 0] - s[..., 0]) / total).sum(axis=1)  # Mantel-Haenszel, smoothed
        mh_den = 0.5 + ((n[..., 1] - s[..., 1]) * s[..., 0] / total).sum(axis=1)
        half_log_or = 0.5 * np.log(mh_num / mh_den)
        rate = (succ.sum(axis=1) + a) / (tri.sum(axis=1) + a + b)
        logit = np.log(rate / (1.0 - rate))
        shift = np.stack([-half_log_or, half_log_or], axis=1)
        return np.asarray(1.0 / (1.0 + np.exp(-(logit[:, None] + shift))), np.float64)

    def update(self, arm: NDArray[Any], y: NDArray[Any], stratum: NDArray[Any] | None = None) -> Array:
        """Bet on each stream's arm, then learn from it; returns the log wealth."""
        arm = np.asarray(arm)
        q = self.predict(y, stratum)
        payoff = np.where(arm == 1, q / self.pi, (1.0 - q) / (1.0 - self.pi))
        self.log_wealth += np.log(payoff)
        idx = np.arange(self.streams)
        st = np.zeros(self.streams, dtype=int) if stratum is None else stratum
        self.successes[idx, st, arm] += np.asarray(y)
        self.trials[idx, st, arm] += 1
        return self.log_wealth

    def update_one(self, arm: int, y: int, stratum: int = 0) -> float:
        """`update` for a single stream (a detector's case) with Python floats: the same formula
        without numpy's per-call overhead on one-element arrays; returns the log wealth."""
        a, b, m = *self.prior, self.pool
        succ, tri = self.successes[0, stratum], self.trials[0, stratum]
        c0 = c1 = 0.0
        if m:  # `_centre` for one stream, in Python floats
            mh_num = mh_den = 0.0
            for (s0, s1), (n0, n1) in zip(self.successes[0].tolist(), self.trials[0].tolist(), strict=True):
                if n0 + n1:
                    mh_num += s1 * (n0 - s0) / (n0 + n1)
                    mh_den += (n1 - s1) * s0 / (n0 + n1)
            half_log_or = 0.5 * math.log((0.5 + mh_num) / (0.5 + mh_den))
            rate = (float(succ[0]) + float(succ[1]) + a) / (float(tri[0]) + float(tri[1]) + a + b)
            logit = math.log(rate / (1.0 - rate))
            c0 = 1.0 / (1.0 + math.exp(-(logit - half_log_or)))
            c1 = 1.0 / (1.0 + math.exp(-(logit + half_log_or)))
        r0 = (float(succ[0]) + a + m * c0) / (float(tri[0]) + a + b + m)
        r1 = (float(succ[1]) + a + m * c1) / (float(tri[1]) + a + b + m)
        l0, l1 = (r0, r1) if y == 1 else (1.0 - r0, 1.0 - r1)
        pi = self.pi
        q = (1.0 - self.lam) * pi + self.lam * (pi * l1 / (pi * l1 + (1.0 - pi) * l0))
        lw = float(self.log_wealth[0]) + math.log(q / pi if arm == 1 else (1.0 - q) / (1.0 - pi))
        self.log_wealth[0] = lw
        succ[arm] += y
        tri[arm] += 1
        return lw


class PairedSignBet(_Bet):
    """Paired test: the same prompt sent under both arms (shadow mode).

    Under the null the two responses of a pair are exchangeable, so when they differ, which arm
    gave the larger outcome is a fair coin. The predictor is a Beta-Bernoulli rate of "arm 1
    larger" among past discordant pairs (mixed with 1/2); tied pairs leave wealth unchanged.
    Works for binary and continuous outcomes (a sign test), in any order of arrival.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> bet = PairedSignBet()
    >>> for _ in range(300):
    ...     y1, y0 = rng.random() < 0.14, rng.random() < 0.02
    ...     _ = bet.update(np.array([float(y1)]), np.array([float(y0)]))
    >>> bool(bet.log_wealth[0] > math.log(100))
    True
    """

    _STATE = ("wins", "discordant", "log_wealth")

    def __init__(
        self, lam: float = DEFAULT_LAMBDA, prior: tuple[float, float] = DEFAULT_PRIOR, streams: int = 1
    ) -> None:
        _check("lam", lam, 0.0, 1.0)
        if min(prior) <= 0:
            raise ValueError(f"prior must be positive, got {prior}")
        self.lam, self.prior, self.streams = lam, prior, streams
        self.wins = np.zeros(streams)  # discordant pairs where arm 1 was larger
        self.discordant = np.zeros(streams)
        self.log_wealth = np.zeros(streams)

    def update(self, y1: NDArray[Any], y0: NDArray[Any]) -> Array:
        diff = np.asarray(y1, dtype=np.float64) - np.asarray(y0, dtype=np.float64)
        disc = diff != 0
        a, b = self.prior
        q = (1.0 - self.lam) * 0.5 + self.lam * (self.wins + a) / (self.discordant + a + b)
        payoff = np.where(disc, np.where(diff > 0, q / 0.5, (1.0 - q) / 0.5), 1.0)
        self.log_wealth += np.log(payoff)
        self.wins += diff > 0
        self.discordant += disc
        return self.log_wealth

    def update_one(self, y1: float, y0: float) -> float:
        """`update` for a single stream with Python floats; returns the log wealth."""
        if y1 != y0:
            a, b = self.prior
            q = (1.0 - self.lam) * 0.5 + self.lam * (float(self.wins[0]) + a) / (float(self.discordant[0]) + a + b)
            self.log_wealth[0] += math.log((q if y1 > y0 else 1.0 - q) / 0.5)
            self.wins[0] += y1 > y0
            self.discordant[0] += 1
        return float(self.log_wealth[0])


class ClassifierBet:
    """Unpaired test with an online classifier predicting the arm from a feature vector
    (`OnlineLogit`), e.g. for continuous metrics or embeddings. One stream."""

    def __init__(self, pi: float, model: OnlineLogit, lam: float = 0.5) -> None:
        _check("pi", pi, 0.0, 1.0)
        _check("lam", lam, 0.0, 1.0)
        self.pi, self.model, self.lam = pi, model, lam
        self.log_wealth = 0.0

    def update(self, arm: int, x: NDArray[Any]) -> float:
        q_hat = self.model.predict_proba_one(x)[1]
        q_hat = min(max(q_hat, 1e-6), 1 - 1e-6)
        q = (1.0 - self.lam) * self.pi + self.lam * q_hat
        self.log_wealth += math.log(q / self.pi if arm == 1 else (1.0 - q) / (1.0 - self.pi))
        self.model.learn_one(x, arm)
        return self.log_wealth

    def state(self) -> dict[str, Any]:
        return {"pi": self.pi, "lam": self.lam, "log_wealth": self.log_wealth, "model": self.model.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClassifierBet:
        bet = cls(float(state["pi"]), OnlineLogit.from_state(state["model"]), float(state["lam"]))
        bet.log_wealth = float(state["log_wealth"])
        return bet


class Alarm:
    """Alarm thresholds that re-arm after each alarm with an alpha-spending schedule.

    The k-th alarm (k = 1, 2, ...) is raised at wealth >= 1/alpha_k with alpha_k = alpha / k^2,
    and after an alarm the wealth restarts at 1. Under the null the probability of ever raising
    a (first, false) alarm is at most alpha, and the expected number of false alarms over the
    whole unbounded lifetime is at most sum(alpha_k) = alpha * pi^2 / 6.
    """

    def __init__(self, alpha: float = 0.01) -> None:
        _check("alpha", alpha, 0.0, 1.0)
        if alpha >= 1.0:
            raise ValueError(f"alpha must be < 1, got {alpha}")
        self.alpha = alpha
        self.alarms = 0

    @property
    def level(self) -> float:
        """The alpha of the next alarm."""
        return self.alpha / (self.alarms + 1) ** 2

    @property
    def log_threshold(self) -> float:
        return math.log(1.0 / self.level)


def mean_evalue(log_wealths: list[float]) -> float:
    """Average of e-values (an e-value itself: combining metrics), returned as a log."""
    if not log_wealths:
        return 0.0
    m = max(log_wealths)
    return m + math.log(sum(math.exp(x - m) for x in log_wealths) / len(log_wealths))
