"""Alertmanager-style routing: a tree of routes with matchers; children inherit options.

An alert walks the tree from the root: at each level the first matching child takes it (and
its own children are tried in turn) unless that child says `continue: true`, in which case the
next matching siblings take it too. If no child matches, the parent itself does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.policy import Route, seconds

DEFAULTS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


@dataclass(frozen=True)
class Resolved:
    """A route an alert was routed to, with its inherited options."""

    path: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float


def _matches(route: Route, labels: dict[str, str]) -> bool:
    for key, want in route.matchers.items():
        got = labels.get(key, "")
        if want.startswith("~"):
            if not re.fullmatch(want[1:], got):
                return False
        elif got != want:
            return False
    return True


def route(root: Route, labels: dict[str, str]) -> list[Resolved]:
    """The routes an alert with these labels goes to (at least the root)."""
    opts = {
        "receiver": root.receiver or "",
        "group_by": tuple(root.group_by or ("alertname", "experiment")),
        **{k: getattr(root, k) or v for k, v in DEFAULTS.items()},
    }
    return _walk(root, labels, opts, "root")


def _walk(node: Route, labels: dict[str, str], opts: dict[str, object], path: str) -> list[Resolved]:
    out: list[Resolved] = []
    for i, child in enumerate(node.routes):
        if not _matches(child, labels):
            continue
        inherited = dict(opts)
        if child.receiver:
            inherited["receiver"] = child.receiver
        if child.group_by is not None:
            inherited["group_by"] = tuple(child.group_by)
        for k in DEFAULTS:
            if getattr(child, k):
                inherited[k] = getattr(child, k)
        out.extend(_walk(child, labels, inherited, f"{path}.{i}"))
        if not child.continue_:
            break
    if out:
        return out
    return [
        Resolved(
            path=path,
            receiver=str(opts["receiver"]),
            group_by=tuple(opts["group_by"]),  # type: ignore[arg-type]
            group_wait=seconds(str(opts["group_wait"])),
            group_interval=seconds(str(opts["group_interval"])),
            repeat_interval=seconds(str(opts["repeat_interval"])),
        )
    ]
