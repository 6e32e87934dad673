"""Detectors are created by name from policy files: a class registers itself with
`@register("name")`, and `create(name, params)` builds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from detectors.base import Detector

T = TypeVar("T", bound=type)
_REGISTRY: dict[str, type[Detector]] = {}


def register(name: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"detector {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return deco


_BUILTINS = (
    "detectors.cue_gap",
    "detectors.drift",
    "detectors.scratchpad.live",
    "detectors.sandbagging",
    "detectors.embedding_shift",
)


def _load_builtins() -> None:
    """Import the built-in detector modules (they register themselves) on first use."""
    import importlib

    for module in _BUILTINS:
        importlib.import_module(module)


def names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def parameters(name: str) -> list[str]:
    """The parameters a detector takes (the fields of its `Params` model)."""
    _load_builtins()
    return list(_REGISTRY[name].Params.model_fields)


def get(name: str) -> type[Detector]:
    """The detector class registered as `name`."""
    _load_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown detector {name!r}; registered: {', '.join(names()) or '(none)'}")
    return _REGISTRY[name]


def create(name: str, params: dict[str, Any]) -> Detector:
    return get(name)(**params)
