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


@dataclass(frozen=True)
class Node:
    """A route compiled once per policy: regexes compiled, options inherited and parsed."""

    matchers: tuple[tuple[str, str | re.Pattern[str]], ...]
    continue_: bool
    children: tuple[Node, ...]
    resolved: Resolved  # where an alert goes when no child takes it

    def matches(self, labels: dict[str, str]) -> bool:
        for key, want in self.matchers:
            got = labels.get(key, "")
            if not (want.fullmatch(got) if isinstance(want, re.Pattern) else got == want):
                return False
        return True


def compile_routes(root: Route) -> Node:
    """The route tree of a policy, ready for `route()` (build it once per load)."""
    opts: dict[str, object] = {
        "receiver": root.receiver or "",
        "group_by": tuple(root.group_by or ("alertname", "experiment")),
        **{k: getattr(root, k) or v for k, v in DEFAULTS.items()},
    }
    return _compile(root, opts, "root", top=True)


def _compile(node: Route, opts: dict[str, object], path: str, top: bool = False) -> Node:
    if not top:
        opts = dict(opts)
        if node.receiver:
            opts["receiver"] = node.receiver
        if node.group_by is not None:
            opts["group_by"] = tuple(node.group_by)
        for k in DEFAULTS:
            if getattr(node, k):
                opts[k] = getattr(node, k)
    matchers = tuple(
        (key, re.compile(want[1:]) if want.startswith("~") else want) for key, want in node.matchers.items()
    )
    return Node(
        matchers=() if top else matchers,
        continue_=node.continue_,
        children=tuple(_compile(child, opts, f"{path}.{i}") for i, child in enumerate(node.routes)),
        resolved=Resolved(
            path=path,
            receiver=str(opts["receiver"]),
            group_by=tuple(opts["group_by"]),  # type: ignore[arg-type]
            group_wait=seconds(str(opts["group_wait"])),
            group_interval=seconds(str(opts["group_interval"])),
            repeat_interval=seconds(str(opts["repeat_interval"])),
        ),
    )


def route(root: Node | Route, labels: dict[str, str]) -> list[Resolved]:
    """The routes an alert with these labels goes to (at least the root)."""
    return _walk(root if isinstance(root, Node) else compile_routes(root), labels)


def _walk(node: Node, labels: dict[str, str]) -> list[Resolved]:
    out: list[Resolved] = []
    for child in node.children:
        if not child.matches(labels):
            continue
        out.extend(_walk(child, labels))
        if not child.continue_:
            break
    return out or [node.resolved]
