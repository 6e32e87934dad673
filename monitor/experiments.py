"""Cue experiments at run time: which experiment a request falls in, which arm it gets, and
the request(s) to send.

    plan = experiments.plan(dialect, path, headers, req)
    live:   plan.request / plan.headers replace the client's; plan.labels go on the record
    shadow: the client's request goes untouched; `experiments.sample(plan, ...)` decides (off the
            request path) whether it is also sent once per arm, filling plan.variants
    off:    nothing changes; plan.labels name the experiment

Assignment is random with the arms' probabilities from a seeded generator (reproducible for the
same seed and request order), or sticky: a subject key hashed with the experiment's salt maps to
the same arm every time. The salt is what keeps the arm from being computed by the client: take
it from a secret (`salt: {env: NAME}`, read once when the policy loads); a literal salt or the
default (the experiment's name) is logged as public when the policy loads.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from typing import Any

from monitor.budget import Budget
from monitor.cues import apply_cue
from monitor.policy import Arm, Experiment, Policy
from monitor.routes import model_of

JSON = dict[str, Any]


def hash_unit(salt: str, subject: str) -> float:
    """A uniform number in [0, 1) fixed by salt and subject."""
    digest = hashlib.sha256(f"{salt}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def pick_arm(arms: list[Arm], u: float) -> Arm:
    acc = 0.0
    for arm in arms:
        acc += arm.probability
        if u < acc:
            return arm
    return arms[-1]


def subject_of(exp: Experiment, dialect: str, req: JSON, headers: dict[str, str]) -> str | None:
    """The sticky subject key of a request, or None when there is none (then: random)."""
    if exp.sticky == "none":
        return None
    if exp.sticky == "user":
        if dialect == "anthropic":
            meta = req.get("metadata")
            value = meta.get("user_id") if isinstance(meta, dict) else None
        else:
            value = req.get("user") or req.get("safety_identifier")
        return str(value) if value else None
    return headers.get(exp.sticky.removeprefix("header:").lower())


@dataclass
class Variant:
    """One arm's copy of a request (shadow mode and probes)."""

    arm: Arm
    request: JSON
    headers: dict[str, str]
    cue_text: str | None


@dataclass
class Plan:
    experiment: Experiment
    labels: dict[str, Any]
    request: JSON | None = None  # live: the request to send instead of the client's
    headers: dict[str, str] = field(default_factory=dict)
    variants: list[Variant] = field(default_factory=list)  # shadow: extra copies, one per arm
    debug_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class Experiments:
    """The experiments of one policy, ready to plan requests. Budgets are passed in so they
    survive a policy reload."""

    def __init__(self, policy: Policy, budgets: dict[str, Budget] | None = None, seed: int | None = None) -> None:
        self.policy = policy
        self.seed = seed if seed is not None else (policy.seed if policy.seed is not None else _random_seed())
        self._assign_rng = random.Random(self.seed)
        self._text_rng = random.Random(f"{self.seed}:texts")
        self._sample_rng = random.Random(f"{self.seed}:shadow")
        self.budgets = budgets if budgets is not None else {}
        for exp in policy.experiments:
            s = exp.shadow
            if exp.name in self.budgets:
                self.budgets[exp.name].update_limits(s.max_requests_per_minute, s.max_tokens_per_hour)
            else:
                self.budgets[exp.name] = Budget(s.max_requests_per_minute, s.max_tokens_per_hour)
        self._active = list(policy.experiments)
        self._needs_headers = any(e.filter.headers or e.sticky.startswith("header:") for e in self._active)

    def __bool__(self) -> bool:
        return bool(self._active)

    def plan(self, dialect: str, path: str, raw_headers: list[tuple[bytes, bytes]], req: JSON) -> Plan | None:
        """What to do with one request, or None when no experiment applies."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers} if self._needs_headers else {}
        model = model_of(req, path)
        for exp in self._active:
            if exp.filter.matches(dialect, path, model, headers, req):
                return self._plan(exp, dialect, req, headers)
        return None

    def _plan(self, exp: Experiment, dialect: str, req: JSON, headers: dict[str, str]) -> Plan:
        if exp.mode == "off":
            return Plan(exp, {"experiment": exp.name, "mode": "off"})
        if exp.mode == "live":
            subject = subject_of(exp, dialect, req, headers)
            u = hash_unit(exp.hash_salt, subject) if subject is not None else self._assign_rng.random()
            arm = pick_arm(exp.arms, u)
            variant = self.variant(dialect, req, arm)
            plan = Plan(
                exp,
                {
                    "experiment": exp.name,
                    "arm": arm.name,
                    "mode": "live",
                    "assignment_probability": arm.probability,
                    "cue": variant.cue_text,
                },
                request=variant.request,
                headers=variant.headers,
            )
            if self.policy.debug_headers:
                plan.debug_headers = [
                    (b"x-cuewatch-experiment", exp.name.encode()),
                    (b"x-cuewatch-arm", arm.name.encode()),
                ]
            return plan
        # shadow: production untouched; `sample` decides whether copies go out. The pair id is
        # fixed now, so the production record names the pair its copies would share.
        return Plan(exp, {"experiment": exp.name, "mode": "shadow", "pair_id": os.urandom(8).hex()})

    def sample(
        self, plan: Plan, dialect: str, req: JSON, harmful: bool = False, category: str | None = None
    ) -> Plan | None:
        """A shadow request drawn with its sampling rules' probability and admitted by the
        budget (sends at the highest probability first): the plan for its copies, one per arm,
        whose labels carry the probability used; None when it is not sampled."""
        exp = plan.experiment
        rules = exp.shadow.sample
        model = req.get("model")
        p, rule = rules.probability(model if isinstance(model, str) else "", harmful, category)
        if p <= 0 or self._sample_rng.random() >= p:
            return None
        if not self.budgets[exp.name].try_take(len(exp.arms), priority=p / rules.top):
            return None
        labels = {**plan.labels, "sample_probability": p, "sample_rule": rule}
        return Plan(exp, labels, variants=[self.variant(dialect, req, arm) for arm in exp.arms])

    def variant(self, dialect: str, req: JSON, arm: Arm) -> Variant:
        text = self._text_rng.choice(arm.cue.texts) if arm.cue.texts else None
        request, headers = apply_cue(dialect, req, arm.cue, text or "")
        return Variant(arm, request, headers, text)


def _random_seed() -> int:
    return int.from_bytes(os.urandom(4), "big")
