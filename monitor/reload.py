"""The running policy, swapped atomically on reload (SIGHUP, file change, admin API).

The proxy reads `holder.experiments` once per request, so a reload takes effect between
requests. A new file that fails validation is rejected with a logged error and the running
policy stays.

In a running server the file is parsed off the event loop (`areload`: a worker thread, under
RELOAD_TIMEOUT_S) so a slow or hostile file never stalls requests or health checks. A thread
cannot be killed: what bounds it are the limits of monitor.yamlfile (size, nesting, aliases,
nodes), under which the worst file still parses in a few seconds; past the time limit the
result is thrown away when it comes. The file watcher outlives every error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import structlog

from monitor.budget import Budget
from monitor.errors import ConfigError
from monitor.experiments import Experiments
from monitor.policy import Policy, load_policy, unset_secrets

log = structlog.get_logger("cuewatch.policy")

RELOAD_TIMEOUT_S = 5.0  # the longest a reload may parse before the running policy is kept


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

    def __init__(
        self, path: Path | None = None, policy: Policy | None = None, reload_timeout_s: float = RELOAD_TIMEOUT_S
    ) -> None:
        self.path = path
        self.reload_timeout_s = reload_timeout_s
        self.budgets: dict[str, Budget] = {}
        self.policy = policy or (load_policy(path) if path is not None else Policy())
        self.experiments = Experiments(self.policy, self.budgets)
        self.seed = self.experiments.seed
        self._stamp = _stamp(path)
        self.reloads = 0
        self.rejected = 0  # every reload that kept the running policy: invalid file, time limit, error
        self.last_error: str | None = None
        self._lock = asyncio.Lock()  # one areload at a time (watcher, admin API, SIGHUP)
        self._tasks: set[asyncio.Task[tuple[bool, str]]] = set()
        self._straggler: asyncio.Future[Policy] | None = None  # a load that ran past the time limit
        self._subscribers: list[Callable[[Policy], None]] = []
        log.info(
            "policy_loaded",
            file=str(path) if path else None,
            seed=self.seed,
            experiments=[e.name for e in self.policy.experiments],
        )
        _warn_unset_secrets(self.policy)

    def subscribe(self, on_reload: Callable[[Policy], None]) -> None:
        """Call `on_reload(policy)` after every reload that applied a new policy (on the thread
        that reloaded; it must be quick and must not raise)."""
        self._subscribers.append(on_reload)

    def reload(self) -> tuple[bool, str]:
        """Load the policy file again, in this thread; keep the running policy if the new one is
        invalid. For the CLI and tests: a server uses `areload`."""
        if self.path is None:
            return False, "no policy file is configured"
        self._stamp = _stamp(self.path)
        try:
            policy = load_policy(self.path)
        except Exception as exc:
            return self._reject(exc)
        return self._apply(policy)

    async def areload(self) -> tuple[bool, str]:
        """`reload`, with the file parsed in a worker thread for at most `reload_timeout_s`."""
        if self.path is None:
            return False, "no policy file is configured"
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._straggler is not None and not self._straggler.done():
                # A load past its time limit still runs: wait for it (bounded) rather than add a thread.
                await asyncio.wait({self._straggler}, timeout=self.reload_timeout_s)
                if not self._straggler.done():
                    self._stamp = None  # the watcher tries again at its next poll
                    return self._reject(ConfigError(f"{self.path}: the previous reload is still parsing; try later"))
            self._stamp = _stamp(self.path)
            path = self.path
            future = loop.run_in_executor(None, load_policy, path)
            future.add_done_callback(_retrieve)
            try:
                policy = await asyncio.wait_for(asyncio.shield(future), self.reload_timeout_s)
            except TimeoutError:
                self._straggler = future  # its result is dropped when it comes
                return self._reject(ConfigError(f"{path}: took over {self.reload_timeout_s:g} s to load; not applied"))
            except Exception as exc:
                return self._reject(exc)
            return self._apply(policy)  # on the loop: Experiments updates the shared budgets

    def schedule_reload(self) -> None:
        """Start `areload` as a task (a SIGHUP handler, which must not block the loop)."""
        task = asyncio.get_running_loop().create_task(self.areload(), name="cuewatch-policy-reload")
        self._tasks.add(task)  # a reference, until it is done
        task.add_done_callback(self._tasks.discard)

    def _apply(self, policy: Policy) -> tuple[bool, str]:
        try:
            seed = policy.seed if policy.seed is not None else self.seed
            experiments = Experiments(policy, self.budgets, seed=seed)
        except Exception as exc:
            return self._reject(exc)
        self.policy, self.experiments = policy, experiments  # one reference swap: atomic
        self.seed = experiments.seed
        self.reloads += 1
        self.last_error = None
        log.info("policy_reloaded", file=str(self.path), experiments=[e.name for e in policy.experiments])
        _warn_unset_secrets(policy)
        for on_reload in self._subscribers:
            try:
                on_reload(policy)
            except Exception:
                log.exception("policy_subscriber_failed")
        return True, "reloaded"

    def _reject(self, exc: Exception) -> tuple[bool, str]:
        """Count and log a reload that keeps the running policy; the message for the caller."""
        message = str(exc) if isinstance(exc, ConfigError) else f"{self.path}: cannot load: {type(exc).__name__}: {exc}"
        self.rejected += 1
        self.last_error = message
        log.error("policy_reload_rejected", file=str(self.path), error=message, kept="previous policy")
        return False, message

    async def watch(self, interval_s: float) -> None:
        """Reload whenever the file's mtime or size changes (polling; works on any filesystem).
        No error ends it: each is logged and the next change is picked up."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                stamp = _stamp(self.path)
                if stamp is not None and stamp != self._stamp:
                    await self.areload()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    self.rejected += 1
                    self.last_error = f"{self.path}: {type(exc).__name__}: {exc}"
                    log.error("policy_reload_failed", file=str(self.path), error=self.last_error)


def _retrieve(future: asyncio.Future[Policy]) -> None:
    """Mark the outcome of a load nobody may await any more (past its time limit) as seen."""
    if not future.cancelled():
        future.exception()


def _warn_unset_secrets(policy: Policy) -> None:
    """A receiver or probe whose secret cannot be read fails when used: say so at load."""
    for problem in unset_secrets(policy):
        log.warning("policy_secret_unset", problem=problem)
