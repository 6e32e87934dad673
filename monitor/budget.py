"""Paced budgets for extra traffic cuewatch itself sends (shadow copies, probes)."""

from __future__ import annotations

import time
from collections.abc import Callable

BURST_S = 10.0  # the request bucket holds this many seconds of budget (at least two sends)
TOKEN_BURST_S = 60.0  # the token bucket holds a minute of the hour's budget


class Budget:
    """At most `max_requests_per_minute` requests and `max_tokens_per_hour` tokens, paced.

    Requests come from a bucket refilled continuously at the per-minute rate and holding
    `BURST_S` seconds of it (never less than two sends), so the budget is spread over the minute
    instead of spent in its first seconds. Below top priority a send is admitted only while the
    bucket holds a spare send beyond it: when the budget runs short it goes to the requests
    sampled at the highest probability. Tokens are known only after a response, so they are
    charged afterwards to a second bucket (refilled at the hourly rate, holding a minute of it);
    while it is empty, nothing is sent.
    """

    def __init__(
        self, max_requests_per_minute: int, max_tokens_per_hour: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_requests_per_minute < 0 or max_tokens_per_hour < 0:
            raise ValueError("budget limits must be >= 0")
        self._clock = clock
        self._last = clock()
        self.max_requests_per_minute = max_requests_per_minute
        self.max_tokens_per_hour = max_tokens_per_hour
        self._requests = float("inf")  # both buckets start full (clamped on first use)
        self._tokens = float("inf")
        self.paused: str | None = None  # why the last send was refused
        self.refused = 0
        self.spent = 0  # requests admitted

    def _refill(self, size: int) -> tuple[float, float]:
        now = self._clock()
        elapsed, self._last = max(0.0, now - self._last), now
        rate = self.max_requests_per_minute / 60.0
        cap = max(2.0 * size, rate * BURST_S)
        self._requests = min(cap, self._requests + rate * elapsed)
        token_rate = self.max_tokens_per_hour / 3600.0
        self._tokens = min(token_rate * TOKEN_BURST_S, self._tokens + token_rate * elapsed)
        return cap, rate

    def try_take(self, requests: int, priority: float = 1.0) -> bool:
        """Admit a send of `requests` requests now if the budgets allow; else record why not.
        `priority` (0..1] is the send's sampling probability relative to the highest one."""
        cap, _ = self._refill(requests)
        need = requests if priority >= 1.0 else min(cap, 2.0 * requests)
        if self.max_requests_per_minute < requests or self._requests < need:
            self.paused = "requests_per_minute"
        elif self._tokens <= 0:
            self.paused = "tokens_per_hour"
        else:
            self.paused = None
            self._requests -= requests
            self.spent += requests
            return True
        self.refused += 1
        return False

    def charge_tokens(self, tokens: int) -> None:
        if tokens > 0:
            self._refill(1)
            self._tokens -= tokens

    def update_limits(self, max_requests_per_minute: int, max_tokens_per_hour: int) -> None:
        self._refill(1)
        self.max_requests_per_minute = max_requests_per_minute
        self.max_tokens_per_hour = max_tokens_per_hour
