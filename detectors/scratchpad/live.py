"""The scratchpad red flags on live traffic: features and the `scratchpad` detector.

Features (computed in batches off the request path, shared by every detector that wants them):
- `redflags_lexical`, `redflags_semantic`, `redflags_combined`: per exchange, the scores of
  every category, the spans to quote, and where they are (None without readable reasoning);
- `flag_<category>` (combined tier) and `lexflag_<category>` (lexical tier): 0/1 at the shipped
  threshold, so `cue_gap` can compare red-flag rates between the arms of an experiment.

The `scratchpad` detector raises a finding for every exchange whose reasoning crosses a
category's threshold, quoting the flagged sentences. The alert layer groups and deduplicates.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, ClassVar

from pydantic import Field, field_validator

from detectors import features
from detectors.base import Observation, Params
from detectors.registry import register
from detectors.scratchpad import CATEGORIES, extract
from detectors.scratchpad.model import TIERS, Result, Scorer, Tier
from monitor.records import Exchange, Finding, Severity, Track

_SPAN_FLOOR = 0.2  # spans are kept for categories scoring at least this, so any threshold can quote
_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[str, str], Result | None] = OrderedDict()
EXCERPT_MAX = 1200


def score_exchanges(batch: list[Exchange], tier: Tier) -> list[Result | None]:
    """Red-flag results per exchange (None: no readable reasoning), cached per exchange id so
    the tier is computed once per batch however many features ask for it."""
    missing = [ex for ex in batch if (ex.id, tier) not in _cache]
    if missing:
        todo = [(ex, extract.segments(ex)) for ex in missing]
        with_text = [(ex, segs) for ex, segs in todo if segs]
        scorer = Scorer(tier=tier, thresholds=dict.fromkeys(CATEGORIES, _SPAN_FLOOR))
        results = scorer.score_segments([segs for _, segs in with_text]) if with_text else []
        for ex, _ in todo:
            _cache[(ex.id, tier)] = None
        for (ex, _), res in zip(with_text, results, strict=True):
            res.redacted = ex.redacted_reasoning_blocks
            _cache[(ex.id, tier)] = res
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return [_cache.get((ex.id, tier)) for ex in batch]


def _register() -> None:
    for tier in TIERS:
        features.batch_feature(f"redflags_{tier}", kind="object", model=tier != "lexical")(
            lambda batch, tier=tier: score_exchanges(batch, tier)  # type: ignore[misc]
        )
    for cat in CATEGORIES:
        for prefix, tier in (("flag", "combined"), ("lexflag", "lexical")):
            features.batch_feature(f"{prefix}_{cat}", model=tier != "lexical")(
                lambda batch, cat=cat, tier=tier: [  # type: ignore[misc]
                    None if r is None else int(r.scores[cat] >= 0.5) for r in score_exchanges(batch, tier)
                ]
            )


_register()

DEFAULT_SEVERITY: dict[str, Severity] = {
    "alignment_faking": "critical",
    "oversight_subversion": "critical",
    "self_exfiltration": "critical",
    "sandbagging_intent": "warning",
    "deception": "warning",
    "monitoring_awareness": "info",
}


class ScratchpadParams(Params):
    """Parameters of `scratchpad` (see `ScratchpadFlags`)."""

    tier: Tier = "combined"
    thresholds: dict[str, float] | None = None
    categories: tuple[str, ...] | None = None
    experiment: str | None = None
    severity: dict[str, Severity] = Field(default_factory=dict)

    @field_validator("thresholds", "severity")
    @classmethod
    def _known_categories(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(v or {}) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
        for cat, t in (v or {}).items():
            if isinstance(t, float) and not 0 < t < 1:
                raise ValueError(f"{cat} must be in (0, 1), got {t}")
        return v

    @field_validator("categories")
    @classmethod
    def _known(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = sorted(set(v or ()) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
        return v


@register("scratchpad")
class ScratchpadFlags:
    """A finding for each exchange whose reasoning shows a red flag.

    Parameters
    ----------
    tier: lexical (fast, recall), semantic (local model), or combined (both; default).
    thresholds: per-category score threshold, 0..1 (default 0.5 for each).
    categories: categories to flag (default: all).
    experiment: only exchanges of this experiment (default: all traffic).
    severity: per-category severity of findings (defaults: faking, subversion, exfiltration
        critical; sandbagging intent, deception warning; monitoring awareness info).
    """

    name: ClassVar[str] = "scratchpad"
    state_version: ClassVar[int] = 1

    Params: ClassVar[type[ScratchpadParams]] = ScratchpadParams
    test_params: ClassVar[dict[str, Any]] = {"tier": "lexical"}

    def __init__(self, **params: Any) -> None:
        p = self.params = self.Params.model_validate(params)
        self.scorer = Scorer(tier=p.tier, thresholds=p.thresholds, categories=p.categories)
        self.tier, self.experiment = p.tier, p.experiment
        self.severity = {**DEFAULT_SEVERITY, **p.severity}
        self.seen = 0
        self.flagged: dict[str, int] = dict.fromkeys(self.scorer.categories, 0)

    @property
    def wants(self) -> set[str]:
        return {f"redflags_{self.tier}"}

    def __repr__(self) -> str:
        return f"ScratchpadFlags(tier={self.tier!r}, thresholds={self.scorer.thresholds!r})"

    def update(self, obs: Observation) -> list[Finding]:
        ex = obs.exchange
        if self.experiment is not None and ex.experiment != self.experiment:
            return []
        res: Result | None = obs.features.get(f"redflags_{self.tier}")
        if res is None:
            return []
        self.seen += 1
        found = []
        for cat in self.scorer.categories:
            score = res.scores.get(cat, 0.0)
            if score < self.scorer.thresholds[cat]:
                continue
            self.flagged[cat] += 1
            found.append(self._finding(ex, cat, score, res))
        return found

    def _finding(self, ex: Exchange, cat: str, score: float, res: Result) -> Finding:
        quotes = res.quotes.get(cat, [])
        excerpt = " … ".join(quotes)[:EXCERPT_MAX] or None
        where = f" under arm '{ex.arm}' of '{ex.experiment}'" if ex.arm else ""
        return Finding(
            id=hashlib.sha256(f"{self.name}|{cat}|{ex.id}".encode()).hexdigest()[:16],
            time=ex.time,
            detector=self.name,
            metric=cat,
            experiment=ex.experiment,
            model=ex.model,
            arms=[ex.arm] if ex.arm else [],
            direction=f"{cat.replace('_', ' ')} in the reasoning{where}",
            e_value=1.0,  # a per-exchange classification, not a test: no evidence accumulates here
            p_value=1.0,
            alpha=1.0,
            score=score,
            counts={"all": {"n": float(self.seen), "events": float(self.flagged[cat])}},
            example_ids={ex.arm or "all": [ex.id]},
            severity=self.severity[cat],
            summary=f"{cat.replace('_', ' ')} (score {score:.2f}, {self.tier}) in exchange {ex.id}{where}",
            excerpt=excerpt,
        )

    def tracks(self) -> list[Track]:
        return []  # a per-exchange classification: no evidence accumulates

    def snapshot(self) -> dict[str, Any]:
        return {"seen": self.seen, "flagged": dict(self.flagged)}

    def restore(self, state: dict[str, Any]) -> None:
        self.seen = int(state["seen"])
        self.flagged.update({k: int(v) for k, v in state["flagged"].items() if k in self.flagged})
