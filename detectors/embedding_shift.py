"""Embedding shift: responses under one arm differ in meaning (topic, stance) from another's,
or drift over time within an arm, without any hand-made feature saying how.

Feature `response_embedding`: the unit-norm sentence embedding of the final answer (its first
1,000 characters), computed in batches off the request path by the local model (GPU when
present), loaded once, lazily.

Detector `embedding_shift`:
- a two-sample test by betting on the arm: an online logistic classifier predicts the arm from
  the embedding before seeing it, and wealth grows by p_hat(arm)/pi(arm) (mixed with pi).
  Under "the arm is independent of the response" this is a nonnegative martingale, so an alarm
  at wealth >= 1/alpha is a false alarm with probability <= alpha, however long it runs;
- per arm, drift over time: ADWIN on each response's cosine similarity to the arm's
  reference centroid (its first `reference` responses).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from detectors import features
from detectors.base import Observation, Params, feature_name
from detectors.registry import register
from detectors.stats import Alarm, ClassifierBet, bernoulli_cs
from detectors.stats.adwin import Adwin
from detectors.stats.online import OnlineLogit
from monitor.records import Effect, Exchange, Finding, Severity, Track

_CHARS = 1000


@features.batch_feature("response_embedding", kind="object", model=True)
def response_embedding(batch: list[Exchange]) -> list[NDArray[np.float32] | None]:
    from detectors import semantic

    idx = [i for i, ex in enumerate(batch) if ex.outcome == "ok" and features.final_answer(ex)]
    out: list[NDArray[np.float32] | None] = [None] * len(batch)
    if idx:
        vecs = semantic.embed([features.final_answer(batch[i])[:_CHARS] for i in idx])
        for j, i in enumerate(idx):
            out[i] = vecs[j]
    return out


class _ArmDrift:
    def __init__(self, reference: int, delta: float) -> None:
        self.reference = reference
        self.centroid: NDArray[np.float64] | None = None
        self.acc: NDArray[np.float64] | None = None
        self.n = 0
        self.adwin = Adwin(delta=delta, clock=16)

    def update(self, v: NDArray[Any]) -> float | None:
        """Feed one embedding; the similarity to the reference when ADWIN detects a change."""
        self.n += 1
        if self.n <= self.reference:
            self.acc = v.astype(np.float64) if self.acc is None else self.acc + v
            if self.n == self.reference:
                self.centroid = self.acc / max(float(np.linalg.norm(self.acc)), 1e-12)
            return None
        sim = float(v @ self.centroid)
        return sim if self.adwin.update(sim) else None

    def state(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "n": self.n,
            "acc": None if self.acc is None else self.acc.tolist(),
            "centroid": None if self.centroid is None else self.centroid.tolist(),
            "adwin": self.adwin.state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _ArmDrift:
        d = cls(int(state["reference"]), 0.5)
        d.n = int(state["n"])
        d.acc = None if state["acc"] is None else np.asarray(state["acc"], np.float64)
        d.centroid = None if state["centroid"] is None else np.asarray(state["centroid"], np.float64)
        d.adwin = Adwin.from_state(state["adwin"])
        return d


class EmbeddingShiftParams(Params):
    """Parameters of `embedding_shift` (see `EmbeddingShift`)."""

    experiment: str = Field(..., min_length=1)
    arms: tuple[str, ...] | None = None
    only: str | None = None
    alpha: float = Field(0.01, gt=0, lt=1)
    lam: float = Field(0.5, gt=0, le=1)
    lr: float = Field(0.5, gt=0)
    drift: bool = True
    reference: int = Field(200, ge=1)
    delta: float = Field(0.002, gt=0, lt=1)
    severity: Severity = "warning"

    _only = field_validator("only")(classmethod(lambda cls, v: feature_name(v)))

    @field_validator("arms")
    @classmethod
    def _two_arms(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and len(set(v)) != 2:
            raise ValueError("arms must name exactly two distinct arms")
        return v


@register("embedding_shift")
class EmbeddingShift:
    """Meaning of responses depends on the arm, or drifts within an arm.

    Parameters
    ----------
    experiment: the experiment whose two arms are compared.
    arms: the two arms (default: the first two seen).
    only: a feature that must be truthy for an exchange to count (None: all).
    alpha: false-alarm level of the first alarm (later ones alpha / k^2).
    lam: weight of the classifier's prediction against the assignment probability.
    lr: the classifier's learning rate.
    drift: also watch each arm for drift over time (ADWIN on similarity to its reference).
    reference: responses per arm that make its reference centroid.
    delta: ADWIN's confidence.
    severity: severity of findings.
    """

    name: ClassVar[str] = "embedding_shift"
    state_version: ClassVar[int] = 1

    Params: ClassVar[type[EmbeddingShiftParams]] = EmbeddingShiftParams
    test_params: ClassVar[dict[str, Any]] = {"experiment": "e", "reference": 50}

    def __init__(self, **params: Any) -> None:
        p = self.params = self.Params.model_validate(params)
        experiment, arms, alpha = p.experiment, p.arms, p.alpha
        self.experiment, self.only, self.severity = experiment, p.only, p.severity
        self.lam, self.lr, self.drift, self.reference, self.delta = p.lam, p.lr, p.drift, p.reference, p.delta
        self.alarm = Alarm(alpha)
        self.alpha = alpha
        self._arms: list[str] = list(arms or [])
        self._bet: ClassifierBet | None = None
        self._hits = 0  # predictions that named the right arm
        self._n = {a: 0 for a in self._arms}
        self._prob: dict[str, float] = {}
        self._drifts: dict[str, _ArmDrift] = {}
        self._examples: dict[str, list[str]] = {}

    @property
    def wants(self) -> set[str]:
        return {"response_embedding", *([self.only] if self.only else [])}

    def __repr__(self) -> str:
        return f"EmbeddingShift(experiment={self.experiment!r}, arms={self._arms!r}, alpha={self.alpha})"

    def update(self, obs: Observation) -> list[Finding]:
        ex = obs.exchange
        vec = obs.features.get("response_embedding")
        if ex.experiment != self.experiment or ex.arm is None or vec is None:
            return []
        if self.only and not obs.features.get(self.only):
            return []
        if ex.arm not in self._arms:
            if len(self._arms) >= 2:
                return []
            self._arms.append(ex.arm)
        arm = ex.arm
        if ex.assignment_probability:
            self._prob.setdefault(arm, ex.assignment_probability)
        self._n[arm] = self._n.get(arm, 0) + 1
        ex_list = self._examples.setdefault(arm, [])
        ex_list.append(ex.id)
        del ex_list[:-5]
        found: list[Finding] = []
        if self.drift:
            d = self._drifts.setdefault(arm, _ArmDrift(self.reference, self.delta))
            sim = d.update(np.asarray(vec, dtype=np.float64))
            if sim is not None:
                found.append(self._drift_finding(ex, arm, d))
        if len(self._arms) == 2:
            if self._bet is None:
                p1, p0 = self._prob.get(self._arms[0]), self._prob.get(self._arms[1])
                # the chance of the first arm given that one of the two was assigned
                pi = p1 / (p1 + p0) if p1 and p0 else 0.5
                self._bet = ClassifierBet(pi, OnlineLogit(len(vec), lr=self.lr), lam=self.lam)
            y = int(arm == self._arms[0])
            x = np.asarray(vec, dtype=np.float64)
            self._hits += int((self._bet.model.predict_proba_one(x)[1] >= 0.5) == bool(y))
            log_wealth = self._bet.update(y, x)
            if log_wealth >= self.alarm.log_threshold:
                found.append(self._gap_finding(ex, log_wealth))
                self.alarm.alarms += 1
                self._bet.log_wealth = 0.0
        return found

    def _gap_finding(self, ex: Exchange, log_wealth: float) -> Finding:
        a1, a0 = self._arms
        n = sum(self._n.values())
        est = self._hits / n if n else 0.0
        lo, hi = bernoulli_cs(self._hits, n, self.alpha)
        e_value = math.exp(min(log_wealth, 700.0))
        fid = hashlib.sha256(f"{self.name}|{self.experiment}|{a1}|{a0}|{ex.id}".encode()).hexdigest()[:16]
        return Finding(
            id=fid,
            time=ex.time,
            detector=self.name,
            metric="response_embedding",
            experiment=self.experiment,
            model=ex.model,
            arms=[a1, a0],
            direction=f"responses under {a1!r} differ in meaning from those under {a0!r}",
            effect=Effect(estimate=est, lo=lo, hi=hi, unit="accuracy of predicting the arm from the response"),
            e_value=e_value,
            p_value=min(1.0, 1.0 / e_value),
            alpha=self.alarm.level,
            counts={a: {"n": float(self._n.get(a, 0))} for a in (a1, a0)},
            example_ids={a: list(self._examples.get(a, [])) for a in (a1, a0)},
            severity=self.severity,
            summary=(
                f"{self.experiment}: responses under '{a1}' and '{a0}' are told apart by their embeddings "
                f"(arm predicted right {est:.1%}, n={n}, e-value {e_value:.3g} >= {1 / self.alarm.level:.3g})"
            ),
        )

    def _drift_finding(self, ex: Exchange, arm: str, d: _ArmDrift) -> Finding:
        mean = float(d.adwin.estimation)
        fid = hashlib.sha256(f"{self.name}|drift|{self.experiment}|{arm}|{ex.id}".encode()).hexdigest()[:16]
        return Finding(
            id=fid,
            time=ex.time,
            detector=self.name,
            metric="response_embedding_drift",
            experiment=self.experiment,
            model=ex.model,
            arms=[arm],
            direction=f"responses under {arm!r} drifted from their reference",
            effect=Effect(
                estimate=mean, lo=mean, hi=mean, unit="cosine similarity to the arm's reference (recent window)"
            ),
            e_value=1.0 / self.delta,
            p_value=self.delta,
            alpha=self.delta,
            counts={arm: {"n": float(d.n)}},
            example_ids={arm: list(self._examples.get(arm, []))},
            severity=self.severity,
            summary=f"{self.experiment}: responses under '{arm}' drifted in meaning (n={d.n}, delta {self.delta})",
        )

    def tracks(self) -> list[Track]:
        if self._bet is None:
            return []
        n = sum(self._n.values())
        lo, hi = bernoulli_cs(self._hits, n, self.alpha)
        return [
            Track(
                experiment=self.experiment,
                metric="response_embedding",
                arms=list(self._arms),
                log_wealth=float(self._bet.log_wealth),
                log_threshold=self.alarm.log_threshold,
                estimate=self._hits / n if n else 0.0,
                lo=lo,
                hi=hi,
                n={a: float(self._n.get(a, 0)) for a in self._arms},
            )
        ]

    def snapshot(self) -> dict[str, Any]:
        return {
            "arms": list(self._arms),
            "alarms": self.alarm.alarms,
            "bet": None if self._bet is None else self._bet.state(),
            "hits": self._hits,
            "n": dict(self._n),
            "prob": dict(self._prob),
            "drifts": {arm: d.state() for arm, d in self._drifts.items()},
            "examples": {arm: list(ids) for arm, ids in self._examples.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._arms = [str(a) for a in state["arms"]]
        self.alarm.alarms = int(state["alarms"])
        self._bet = None if state["bet"] is None else ClassifierBet.from_state(state["bet"])
        self._hits = int(state["hits"])
        self._n = {str(a): int(v) for a, v in state["n"].items()}
        self._prob = {str(a): float(v) for a, v in state["prob"].items()}
        self._drifts = {str(a): _ArmDrift.from_state(d) for a, d in state["drifts"].items()}
        self._examples = {str(a): [str(i) for i in ids] for a, ids in state["examples"].items()}
