"""The detector contract: observations in, findings out, state that survives a restart.

A detector is a small class registered by name (`@register("cue_gap")`), river-style:
parameters validated in `__init__` (ValueError naming the parameter), `wants` (the features it
reads), `update(obs)` returning a list of findings (usually empty), `tracks()` (its running
tests, for reports; empty for detectors that run no test) and `snapshot()` / `restore(state)`
with JSON-able state.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, model_validator

from monitor.records import Effect, Exchange, Finding, Severity, Track

__all__ = ["Detector", "Effect", "Finding", "Observation", "Params", "Severity", "Snapshot", "Track"]


class Observation:
    """An exchange plus its features, computed once and shared by every detector."""

    __slots__ = ("exchange", "features")

    def __init__(self, exchange: Exchange, features: dict[str, Any]) -> None:
        self.exchange = exchange
        self.features = features


class Params(BaseModel):
    """A detector's parameters: each detector declares a subclass (`Detector.Params`), which the
    policy loader validates (unknown names, ranges, feature names) before the detector is made."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def feature_name(name: str | None) -> str | None:
    """A field validator: the name must be a registered feature (None passes)."""
    if name is None:
        return None
    from detectors import features

    try:
        features.kind(name)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from exc
    return name


def measurable(name: str) -> str:
    """A field validator: a registered feature that is binary or continuous (not a category)."""
    from detectors import features

    feature_name(name)
    if features.kind(name) == "category":
        raise ValueError(f"{name!r} is categorical; compare binary or continuous features")
    return name


@runtime_checkable
class Detector(Protocol):
    name: ClassVar[str]
    #: Its parameters (a pydantic model); `__init__(**params)` validates through it.
    Params: ClassVar[type[Params]]
    #: Parameters the contract tests create it with (with a seeded stream, it must fire).
    test_params: ClassVar[dict[str, Any]]
    #: The layout of `snapshot()`; bumped when it changes (older snapshots are then refused).
    state_version: ClassVar[int]

    @property
    def wants(self) -> set[str]: ...

    def update(self, obs: Observation) -> list[Finding]: ...

    def tracks(self) -> list[Track]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class Snapshot(BaseModel):
    """A detector's saved state, as JSON: which detector and configuration it belongs to and the
    layout version of `state`. Restoring checks all three, so state never reaches a detector
    of another kind, configuration or version (pickle is never used: state is data)."""

    model_config = ConfigDict(extra="forbid")

    detector: str
    config: str
    version: int
    state: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _not_pickle(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pickle" in data:
            raise ValueError("the state was saved as pickle by an earlier cuewatch; it is not read (state is JSON now)")
        return data

    @classmethod
    def of(cls, det: Detector, config: str) -> Snapshot:
        return cls(detector=det.name, config=config, version=det.state_version, state=det.snapshot())

    def restore_into(self, det: Detector, config: str) -> None:
        if self.detector != det.name:
            raise ValueError(f"the snapshot is of detector {self.detector!r}, not {det.name!r}")
        if self.config != config:
            raise ValueError(f"the snapshot was taken under another configuration ({self.config})")
        if self.version != det.state_version:
            raise ValueError(
                f"the snapshot has state version {self.version}; this {det.name} reads version {det.state_version}"
            )
        det.restore(self.state)
