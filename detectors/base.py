"""The detector contract: observations in, findings out, state that survives a restart.

A detector is a small class registered by name (`@register("cue_gap")`), river-style:
parameters validated in `__init__` (ValueError naming the parameter), `update(obs)` returning a
list of findings (usually empty), `snapshot()` / `restore(state)` with JSON-able state.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from monitor.records import Effect, Exchange, Finding, Severity

__all__ = ["Detector", "Effect", "Finding", "Observation", "Severity"]


class Observation:
    """An exchange plus its features, computed once and shared by every detector."""

    __slots__ = ("exchange", "features")

    def __init__(self, exchange: Exchange, features: dict[str, Any]) -> None:
        self.exchange = exchange
        self.features = features


@runtime_checkable
class Detector(Protocol):
    name: ClassVar[str]

    def update(self, obs: Observation) -> list[Finding]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...
