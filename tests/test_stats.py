"""Statistics on seeded streams: exact values, martingale properties, alarm levels, coverage."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.stats import Alarm, ArmBet, PairedSignBet, bernoulli_cs, mean_evalue, rate_difference_cs


def _stream(seed: int, n: int, p0: float, p1: float, pi: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arm = (rng.random(n) < pi).astype(int)
    y = (rng.random(n) < np.where(arm == 1, p1, p0)).astype(int)
    return arm, y


# Computed once from this implementation (lam 0.95, Beta(1, 1)); a change to the betting rule
# must show up here.
PINNED_FIRST, PINNED_FINAL = 273, 8.337276


def test_seeded_gap_stream_exact_wealth() -> None:
    """A fixed seeded 2% vs 14% stream gives a pinned log wealth and first alarm time."""
    arm, y = _stream(7, 400, 0.02, 0.14)
    bet = ArmBet(0.5)
    path = [float(bet.update(arm[i : i + 1], y[i : i + 1])[0]) for i in range(400)]
    first = next(i for i, v in enumerate(path) if v >= math.log(100)) + 1
    assert (first, round(path[-1], 6)) == (PINNED_FIRST, PINNED_FINAL)


def test_scalar_path_equals_vectorised() -> None:
    """The single-stream fast path (`update_one`, used by detectors) gives the batch path's wealth."""
    arm, y = _stream(12, 500, 0.04, 0.2)
    rng = np.random.default_rng(1)
    strata = rng.integers(0, 3, 500)
    fast, slow = ArmBet(0.4, n_strata=3), ArmBet(0.4, n_strata=3)
    pf, ps = PairedSignBet(), PairedSignBet()
    for t in range(500):
        assert fast.update_one(int(arm[t]), int(y[t]), int(strata[t])) == pytest.approx(
            float(slow.update(arm[t : t + 1], y[t : t + 1], strata[t : t + 1])[0]), abs=1e-12
        )
        y1, y0 = float(y[t]), float(rng.random() < 0.1)
        assert pf.update_one(y1, y0) == pytest.approx(float(ps.update(np.array([y1]), np.array([y0]))[0]), abs=1e-12)


def test_vectorised_equals_one_stream_at_a_time() -> None:
    """Streams run in a batch give exactly the wealth each gets alone (the bench's premise)."""
    streams = [_stream(s, 300, 0.05, 0.2) for s in range(4)]
    batch = ArmBet(0.5, streams=4)
    for t in range(300):
        batch.update(np.array([s[0][t] for s in streams]), np.array([s[1][t] for s in streams]))
    for k, (arm, y) in enumerate(streams):
        one = ArmBet(0.5)
        for t in range(300):
            one.update(arm[t : t + 1], y[t : t + 1])
        assert one.log_wealth[0] == pytest.approx(batch.log_wealth[k], abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 2)), max_size=200),
    st.floats(0.05, 0.95),
    st.floats(0.01, 1.0),
)
def test_wealth_never_negative_or_nan(seq: list[tuple[int, int, int]], pi: float, lam: float) -> None:
    """Whatever the data, every payoff is positive: wealth stays > 0 and finite."""
    bet = ArmBet(pi, n_strata=3, lam=lam)
    for arm, y, s in seq:
        lw = bet.update(np.array([arm]), np.array([y]), np.array([s]))
        assert np.isfinite(lw).all()


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0.05, 0.95), st.floats(0.01, 1.0), st.integers(0, 1), st.lists(st.integers(0, 50), min_size=4, max_size=4)
)
def test_one_step_expectation_is_exactly_one(pi: float, lam: float, y: int, counts: list[int]) -> None:
    """For any learned state and outcome, E[payoff | past, outcome] = 1 when the arm is random:
    the martingale property that Ville's inequality needs."""
    bet = ArmBet(pi, lam=lam)
    bet.successes[0, 0] = [min(counts[0], counts[1]), min(counts[2], counts[3])]
    bet.trials[0, 0] = [counts[1], counts[3]]
    q = float(bet.predict(np.array([y]))[0])
    assert pi * (q / pi) + (1 - pi) * ((1 - q) / (1 - pi)) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0.05, 0.95),
    st.floats(0.01, 1.0),
    st.floats(0.0, 100.0),
    st.integers(0, 1),
    st.integers(0, 2),
    st.lists(st.integers(0, 40), min_size=12, max_size=12),
)
def test_pooled_strata_one_step_expectation_is_exactly_one(
    pi: float, lam: float, pool: float, y: int, stratum: int, counts: list[int]
) -> None:
    """Strata pooled through the common odds ratio: for any learned state and outcome, the wealth
    each arm would bring, weighed by the arm's probability, averages exactly 1 (both the batch
    and the single-stream paths), so the stratified bet stays a test martingale."""
    bet = ArmBet(pi, n_strata=3, lam=lam, pool=pool)
    for s_ in range(3):
        c = counts[4 * s_ : 4 * s_ + 4]
        bet.successes[0, s_] = [min(c[0], c[1]), min(c[2], c[3])]
        bet.trials[0, s_] = [c[1], c[3]]
    for step in (
        lambda b, arm: float(b.update(np.array([arm]), np.array([y]), np.array([stratum]))[0]),
        lambda b, arm: b.update_one(arm, y, stratum),
    ):
        gain = {arm: math.exp(step(copy.deepcopy(bet), arm)) for arm in (0, 1)}
        assert gain[0] > 0 and gain[1] > 0
        assert pi * gain[1] + (1 - pi) * gain[0] == pytest.approx(1.0, abs=1e-12)


def test_scalar_path_equals_vectorised_with_many_strata() -> None:
    """Pooled, with 16 strata of which 6 never see an exchange: `update_one` gives the batch
    path's wealth."""
    arm, y = _stream(13, 1500, 0.05, 0.15)
    strata = np.random.default_rng(2).integers(0, 10, 1500)
    fast, slow = ArmBet(0.5, n_strata=16, pool=20.0), ArmBet(0.5, n_strata=16, pool=20.0)
    for t in range(1500):
        assert fast.update_one(int(arm[t]), int(y[t]), int(strata[t])) == pytest.approx(
            float(slow.update(arm[t : t + 1], y[t : t + 1], strata[t : t + 1])[0]), abs=1e-9
        )


def test_pooling_strata_finds_a_shared_gap_sooner() -> None:
    """Eight strata with the same 3% vs 12% gap: pooled, the gap is learned once instead of
    eight times, so on the same seeded streams the wealth after 300 exchanges is higher than
    with strata learning alone (and pooling changes nothing with one stratum)."""
    pooled, alone = ArmBet(0.5, n_strata=8, streams=400), ArmBet(0.5, n_strata=8, streams=400, pool=0.0)
    rng = np.random.default_rng(21)
    for _ in range(300):
        arm = (rng.random(400) < 0.5).astype(int)
        stratum = rng.integers(0, 8, 400)
        y = (rng.random(400) < np.where(arm == 1, 0.12, 0.03)).astype(int)
        pooled.update(arm, y, stratum)
        alone.update(arm, y, stratum)
    assert np.median(pooled.log_wealth) > np.median(alone.log_wealth) + 0.5
    arm, y = _stream(3, 300, 0.03, 0.12)  # one stratum: `pool` is unused
    one, plain = ArmBet(0.5, pool=50.0), ArmBet(0.5, pool=0.0)
    for t in range(300):
        assert one.update_one(int(arm[t]), int(y[t])) == plain.update_one(int(arm[t]), int(y[t]))


def test_pooled_strata_keep_their_own_base_rates() -> None:
    """Strata of requests that are always complied with (benign ones let through) beside strata
    with the gap: pooling through the odds ratio, not the rate, keeps them from diluting it."""
    rates = [(0.97, 0.97), (0.97, 0.97), (0.04, 0.14), (0.04, 0.14)]
    pooled, alone = ArmBet(0.5, n_strata=4, streams=400), ArmBet(0.5, n_strata=4, streams=400, pool=0.0)
    rng = np.random.default_rng(22)
    for _ in range(600):
        arm = (rng.random(400) < 0.5).astype(int)
        stratum = rng.integers(0, 4, 400)
        y = (rng.random(400) < np.asarray(rates)[stratum, arm]).astype(int)
        pooled.update(arm, y, stratum)
        alone.update(arm, y, stratum)
    assert np.median(pooled.log_wealth) > np.median(alone.log_wealth)


def test_pooled_strata_null_evalues_average_at_most_one() -> None:
    """No difference between the arms, strata with different base rates, pooled: mean wealth is
    not above 1 and typical streams lose."""
    streams, rates = 4000, np.asarray([0.02, 0.2, 0.9])
    rng = np.random.default_rng(23)
    bet = ArmBet(0.5, n_strata=3, streams=streams)
    for _ in range(150):
        arm = (rng.random(streams) < 0.5).astype(int)
        stratum = rng.integers(0, 3, streams)
        bet.update(arm, (rng.random(streams) < rates[stratum]).astype(int), stratum)
    assert float(np.exp(bet.log_wealth).mean()) < 1.1
    assert float(np.median(bet.log_wealth)) < 0


@pytest.mark.parametrize("pi", [0.5, 0.3])
def test_null_evalues_average_at_most_one(pi: float) -> None:
    """Under no difference, mean wealth over many seeded streams is not above 1 (it is 1 in
    expectation but heavy-tailed: most streams end below 1, a few far above)."""
    streams, n = 4000, 150
    rng = np.random.default_rng(11)
    bet = ArmBet(pi, streams=streams)
    for _ in range(n):
        arm = (rng.random(streams) < pi).astype(int)
        bet.update(arm, (rng.random(streams) < 0.2).astype(int))
    mean = float(np.exp(bet.log_wealth).mean())
    assert mean < 1.1, mean
    assert float(np.median(bet.log_wealth)) < 0  # typical null streams lose


def test_paired_null_evalues_average_at_most_one_and_ties_are_free() -> None:
    """Paired bets: mean wealth not above 1 under exchangeability; tied pairs change nothing."""
    rng = np.random.default_rng(5)
    bet = PairedSignBet(streams=4000)
    for _ in range(150):
        bet.update((rng.random(4000) < 0.3).astype(float), (rng.random(4000) < 0.3).astype(float))
    assert float(np.exp(bet.log_wealth).mean()) < 1.1
    one = PairedSignBet()
    one.update(np.array([1.0]), np.array([1.0]))
    one.update(np.array([0.0]), np.array([0.0]))
    assert one.log_wealth[0] == 0.0 and one.discordant[0] == 0


def test_alarm_levels_spend_alpha() -> None:
    """Re-armed alarms use alpha, alpha/4, alpha/9, ...: expected false alarms <= alpha*pi^2/6."""
    alarm = Alarm(0.01)
    levels = []
    for _ in range(4):
        levels.append(alarm.level)
        alarm.alarms += 1
    assert levels == pytest.approx([0.01, 0.0025, 0.01 / 9, 0.01 / 16])
    with pytest.raises(ValueError, match="alpha"):
        Alarm(1.5)


def test_invalid_parameters_name_themselves() -> None:
    """Bad parameters raise ValueError naming the parameter."""
    for kwargs, name in (
        ({"pi": 0.0}, "pi"),
        ({"pi": 0.5, "lam": 0.0}, "lam"),
        ({"pi": 0.5, "n_strata": 0}, "n_strata"),
        ({"pi": 0.5, "pool": -1.0}, "pool"),
        ({"pi": 0.5, "pool": math.inf}, "pool"),
        ({"pi": 0.5, "pool": math.nan}, "pool"),
    ):
        with pytest.raises(ValueError, match=name):
            ArmBet(**kwargs)  # type: ignore[arg-type]


def test_bernoulli_cs_covers_uniformly() -> None:
    """The confidence sequence covers the true rate at every n on at least 1 - alpha of streams."""
    rng = np.random.default_rng(3)
    p, alpha, missed = 0.1, 0.05, 0
    checkpoints = [10, 30, 100, 300, 1000]
    for _ in range(200):
        y = rng.random(1000) < p
        s = np.cumsum(y)
        if any(
            not (bernoulli_cs(float(s[n - 1]), n, alpha)[0] <= p <= bernoulli_cs(float(s[n - 1]), n, alpha)[1])
            for n in checkpoints
        ):
            missed += 1
    assert missed / 200 <= alpha


def test_rate_difference_interval() -> None:
    """The difference interval is ordered, contains the estimate, and narrows with data."""
    est, lo, hi = rate_difference_cs(14, 100, 2, 100, 0.01)
    _, lo2, hi2 = rate_difference_cs(140, 1000, 20, 1000, 0.01)
    assert lo < est < hi and est == pytest.approx(0.12) and (hi2 - lo2) < (hi - lo) and lo2 > 0


def test_mean_evalue_is_average() -> None:
    """Combining metrics averages e-values."""
    assert math.exp(mean_evalue([math.log(4.0), math.log(2.0)])) == pytest.approx(3.0)
    assert mean_evalue([]) == 0.0


def test_snapshot_restore_continues_identically() -> None:
    """A bet restored from a snapshot mid-stream continues exactly as the original."""
    arm, y = _stream(9, 200, 0.05, 0.15)
    a, b = ArmBet(0.5), ArmBet(0.5)
    for t in range(100):
        a.update(arm[t : t + 1], y[t : t + 1])
    b.restore(a.snapshot())
    for t in range(100, 200):
        assert a.update(arm[t : t + 1], y[t : t + 1])[0] == b.update(arm[t : t + 1], y[t : t + 1])[0]
