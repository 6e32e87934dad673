"""Anytime-valid statistics: tests by betting, alarms with re-arming, confidence sequences."""

from __future__ import annotations

from detectors.stats.betting import (
    DEFAULT_LAMBDA,
    DEFAULT_POOL,
    DEFAULT_PRIOR,
    Alarm,
    ArmBet,
    ClassifierBet,
    PairedSignBet,
    mean_evalue,
)
from detectors.stats.cs import bernoulli_cs, mean_cs, rate_difference_cs
from detectors.stats.msprt import msprt_log_lambda

__all__ = [
    "DEFAULT_LAMBDA",
    "DEFAULT_POOL",
    "DEFAULT_PRIOR",
    "Alarm",
    "ArmBet",
    "ClassifierBet",
    "PairedSignBet",
    "bernoulli_cs",
    "mean_cs",
    "mean_evalue",
    "msprt_log_lambda",
    "rate_difference_cs",
]
