"""The one exception hierarchy of cuewatch.

CuewatchError
├── ConfigError          bad settings, policy or profile file (names file, line, field)
├── LogFormatError       a traffic-log line that cannot be read back
└── UpstreamError        the model API could not be reached or answered badly
    ├── UpstreamUnreachable   connection refused / DNS / reset before a response
    └── UpstreamTimeout       no response (or no next chunk) within the configured time
"""

from __future__ import annotations


class CuewatchError(Exception):
    """Base class of every error cuewatch raises on purpose."""


class ConfigError(CuewatchError):
    """A settings, policy or profile file is invalid; the message says where and why."""


class LogFormatError(CuewatchError):
    """A traffic-log line cannot be parsed into a record."""


class UpstreamError(CuewatchError):
    """The upstream model API failed before a usable response arrived."""


class UpstreamUnreachable(UpstreamError):
    """The upstream could not be connected to."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""
