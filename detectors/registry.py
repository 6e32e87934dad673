"""Detectors are created by name from policy files: a class registers itself with
`@register("name")`, and `create(name, params)` builds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"detector {name!r} is already registered")
        _REGISTRY[name] = cls  # type: ignore[assignment]
        return cls

    return deco


def names() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, params: dict[str, Any]) -> Any:
    if name not in _REGISTRY:
        raise KeyError(f"unknown detector {name!r}; registered: {', '.join(names()) or '(none)'}")
    return _REGISTRY[name](**params)
