"""Shipped policy files (YAML data). `path(name)` finds one inside an installed package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """Path of a shipped policy, e.g. `path("default")`."""
    return Path(str(resources.files("policies") / f"{name.removesuffix('.yaml')}.yaml"))


def names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files("policies").iterdir() if p.name.endswith(".yaml")
    )


__all__ = ["names", "path"]
