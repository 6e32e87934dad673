"""The running policy, swapped atomically on reload (SIGHUP, file change, admin API).

The proxy reads `holder.experiments` once per request, so a reload takes effect between
requests. A new file that fails validation is rejected with a logged error and the running
policy stays.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from monitor.budget import Budget
from monitor.errors import ConfigError
from monitor.experiments import Experiments
from monitor.policy import Policy, load_policy, unset_secrets

log = structlog.get_logger("cuewatch.policy")


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class PolicyHolder:
    """Holds the current policy and its experiments; budgets and the seed outlive reloads."""

    def __init__(self, path: Path | None = None, policy: Policy | None = None) -> None:
        self.path = path
        self.budgets: dict[str, Budget] = {}
        self.policy = policy or (load_policy(path) if path is not None else Policy())
        self.experiments = Experiments(self.policy, self.budgets)
        self.seed = self.experiments.seed
        self._stamp = _stamp(path)
        self.reloads = 0
        self.rejected = 0
        self.last_error: str | None = None
        log.info(
            "policy_loaded",
            file=str(path) if path else None,
            seed=self.seed,
            experiments=[e.name for e in self.policy.experiments],
        )
        _warn_unset_secrets(self.policy)

    def reload(self) -> tuple[bool, str]:
        """Load the policy file again; keep the running policy if the new one is invalid."""
        if self.path is None:
            return False, "no policy file is configured"
        self._stamp = _stamp(self.path)
        try:
            policy = load_policy(self.path)
            experiments = Experiments(policy, self.budgets, seed=policy.seed if policy.seed is not None else self.seed)
        except ConfigError as exc:
            self.rejected += 1
            self.last_error = str(exc)
            log.error("policy_reload_rejected", file=str(self.path), error=str(exc), kept="previous policy")
            return False, str(exc)
        self.policy, self.experiments = policy, experiments  # one reference swap: atomic
        self.seed = experiments.seed
        self.reloads += 1
        self.last_error = None
        log.info("policy_reloaded", file=str(self.path), experiments=[e.name for e in policy.experiments])
        _warn_unset_secrets(policy)
        return True, "reloaded"

    async def watch(self, interval_s: float) -> None:
        """Reload whenever the file's mtime or size changes (polling; works on any filesystem)."""
        while True:
            await asyncio.sleep(interval_s)
            stamp = _stamp(self.path)
            if stamp is not None and stamp != self._stamp:
                self.reload()


def _warn_unset_secrets(policy: Policy) -> None:
    """A receiver or probe whose secret cannot be read fails when used: say so at load."""
    for problem in unset_secrets(policy):
        log.warning("policy_secret_unset", problem=problem)
