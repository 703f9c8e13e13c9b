"""Failed sign-ins, limited per client address and per user name (either alone is not
enough: one address trying many names, many addresses trying one name).

Each key may fail `max_failures` times within `window_s`; then it waits until its oldest
failure in the window leaves it. A success clears the name's failures, not the address's
(one right password must not reset a guessing address). Kept in memory, per `serve`
process: a restart forgets, which costs an attacker a restart they cannot cause.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

# Every this many failures, keys with none left in their window are dropped: the table
# stays as small as the recent failures.
_SWEEP_EVERY = 1000


class FailureLimiter:
    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def retry_after(self, keys: Iterable[tuple[str, str]]) -> float:
        """Seconds until every key may try again (0: now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    wait = max(wait, times[0] + self.window_s - now)
        return wait

    def failed(self, keys: Iterable[tuple[str, str]]) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            self._since_sweep += 1
            if self._since_sweep >= _SWEEP_EVERY:
                self._since_sweep = 0
                for key in list(self._failures):
                    if not self._recent(key, now):
                        del self._failures[key]

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times
