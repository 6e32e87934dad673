"""cuewatch core: records, settings, pipeline, traffic log, simulator and CLI."""

from __future__ import annotations

from monitor._version import __version__
from monitor.capture import Capture, to_exchange
from monitor.errors import (
    ConfigError,
    CuewatchError,
    LogFormatError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from monitor.pipeline import Pipeline
from monitor.records import Exchange, Message, Record, Timings, ToolCall, Usage
from monitor.settings import Settings
from monitor.store import LogReader, TrafficLog

__all__ = [
    "Capture",
    "ConfigError",
    "CuewatchError",
    "Exchange",
    "LogFormatError",
    "LogReader",
    "Message",
    "Pipeline",
    "Record",
    "Settings",
    "Timings",
    "ToolCall",
    "TrafficLog",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "Usage",
    "__version__",
    "to_exchange",
]
