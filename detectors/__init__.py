"""Features and detectors over exchange records, created by name from policy files."""

from __future__ import annotations

from detectors.registry import create, names, register

__all__ = ["create", "names", "register"]
