"""Plugins are created by name from policy files and settings. Every kind (detectors here; alert
sinks, alert stores and log formats in `monitor.plugins`) uses one `Registry`: a class registers
itself with `@REGISTRY.register("name")`, declares a pydantic `Params` model and `test_params`
(parameters its contract test builds it with), and `create(name, params, **context)` validates
the parameters through `Params` before building it.

Example
-------
>>> from pydantic import BaseModel
>>> class P(BaseModel):
...     n: int = 1
>>> things = Registry("thing")
>>> @things.register("double")
... class Double:
...     Params = P
...     test_params = {"n": 2}
...     def __init__(self, n: int = 1) -> None:
...         self.n = 2 * n
>>> things.create("double", {"n": 3}).n, things.names()
(6, ['double'])
>>> things.create("triple", {})
Traceback (most recent call last):
KeyError: "unknown thing 'triple'; registered: double"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from detectors.base import Detector

P = TypeVar("P")
T = TypeVar("T", bound=type)


class Registry(Generic[P]):
    """Plugins of one kind by name; `builtins` are modules imported on first use (they register
    their classes), so importing the registry loads nothing."""

    def __init__(self, kind: str, builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.builtins = builtins
        self._classes: dict[str, type[P]] = {}
        self._loaded = not builtins

    def register(self, name: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            if name in self._classes:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if not hasattr(cls, "Params") or not hasattr(cls, "test_params"):
                raise TypeError(f"{self.kind} {name!r}: a plugin declares `Params` and `test_params`")
            self._classes[name] = cls
            return cls

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.builtins:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def get(self, name: str) -> type[P]:
        self._load()
        if name not in self._classes:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or '(none)'}")
        return self._classes[name]

    def parameters(self, name: str) -> list[str]:
        """The parameters a plugin takes (the fields of its `Params` model)."""
        return list(self.get(name).Params.model_fields)  # type: ignore[attr-defined]

    def create(self, name: str, params: dict[str, Any], **context: Any) -> P:
        """Validate `params` through the plugin's `Params` (a `ValidationError` names the field),
        then build it with `context` (a receiver's name, an HTTP client, ...)."""
        cls = self.get(name)
        cls.Params.model_validate(params)  # type: ignore[attr-defined]
        return cls(**params, **context)


DETECTORS: Registry[Detector] = Registry(
    "detector",
    (
        "detectors.cue_gap",
        "detectors.drift",
        "detectors.scratchpad.live",
        "detectors.sandbagging",
        "detectors.embedding_shift",
    ),
)

# The detector registry's functions, as the policy loader and the engine use them.
register = DETECTORS.register
names = DETECTORS.names
get = DETECTORS.get
parameters = DETECTORS.parameters


def create(name: str, params: dict[str, Any]) -> Detector:
    return DETECTORS.create(name, params)
