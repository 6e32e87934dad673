"""Offline replay of logged traffic through the live pipeline's detectors and alert rules."""

from __future__ import annotations

from monitor.replay.readers import Inputs
from monitor.replay.report import rebuild, write_report
from monitor.replay.run import replay

__all__ = ["Inputs", "rebuild", "replay", "write_report"]
