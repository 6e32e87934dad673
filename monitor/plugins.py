"""Every kind of plugin, each in one `Registry` (`detectors.registry`): a class registers itself
by name, declares its pydantic `Params` and `test_params`, and is built by `create(name,
params, **context)` after its parameters are validated.

| kind | registry | built from | context |
|---|---|---|---|
| detector | `DETECTORS` | a policy's `detectors:` | none |
| alert sink | `SINKS` | a policy receiver (`slack:`, `webhook:`, `log:`) | `receiver`, `client` |
| alert store | `STORES` | settings (`sqlite` in-process, `redis` with workers) | none |
| log format | `LOG_FORMATS` | each line `cuewatch replay` reads | none |

Features are plain functions registered by name and kind in `detectors.features`
(`features.names()`); the contract tests cover them beside these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectors.registry import DETECTORS, Registry

if TYPE_CHECKING:
    from monitor.alerts.outbox import AlertStore
    from monitor.alerts.sinks.base import Sink
    from monitor.replay.readers import LineFormat

SINKS: Registry[Sink] = Registry(
    "alert sink", ("monitor.alerts.sinks.slack", "monitor.alerts.sinks.webhook", "monitor.alerts.sinks.log")
)
STORES: Registry[AlertStore] = Registry("alert store", ("monitor.alerts.outbox", "monitor.alerts.redis_outbox"))
LOG_FORMATS: Registry[LineFormat] = Registry("log format", ("monitor.replay.readers",))

KINDS: dict[str, Registry[object]] = {
    "detector": DETECTORS,  # type: ignore[dict-item]
    "alert sink": SINKS,  # type: ignore[dict-item]
    "alert store": STORES,  # type: ignore[dict-item]
    "log format": LOG_FORMATS,  # type: ignore[dict-item]
}

__all__ = ["DETECTORS", "KINDS", "LOG_FORMATS", "SINKS", "STORES", "Registry"]
