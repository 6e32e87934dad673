"""Sliding-window budgets for extra traffic cuewatch itself sends (shadow copies, probes)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Budget:
    """At most `max_requests_per_minute` requests and `max_tokens_per_hour` tokens.

    Tokens are known only after a response, so they are charged afterwards; once the hour's
    tokens are spent, no new request is allowed until enough of them age out of the window.
    """

    def __init__(
        self, max_requests_per_minute: int, max_tokens_per_hour: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_requests_per_minute < 0 or max_tokens_per_hour < 0:
            raise ValueError("budget limits must be >= 0")
        self.max_requests_per_minute = max_requests_per_minute
        self.max_tokens_per_hour = max_tokens_per_hour
        self._clock = clock
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_sum = 0
        self.paused: str | None = None  # why the last request was refused
        self.refused = 0

    def try_take(self, requests: int) -> bool:
        """Reserve `requests` requests now if both budgets allow; else record why not."""
        now = self._clock()
        while self._requests and now - self._requests[0] >= 60.0:
            self._requests.popleft()
        while self._tokens and now - self._tokens[0][0] >= 3600.0:
            self._token_sum -= self._tokens.popleft()[1]
        if len(self._requests) + requests > self.max_requests_per_minute:
            self.paused = "requests_per_minute"
        elif self._token_sum >= self.max_tokens_per_hour:
            self.paused = "tokens_per_hour"
        else:
            self.paused = None
            self._requests.extend([now] * requests)
            return True
        self.refused += 1
        return False

    def charge_tokens(self, tokens: int) -> None:
        if tokens > 0:
            self._tokens.append((self._clock(), tokens))
            self._token_sum += tokens

    def update_limits(self, max_requests_per_minute: int, max_tokens_per_hour: int) -> None:
        self.max_requests_per_minute = max_requests_per_minute
        self.max_tokens_per_hour = max_tokens_per_hour
