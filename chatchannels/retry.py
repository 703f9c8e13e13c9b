"""Waiting for a service that is away: capped exponential backoff, one log line per try.

`Backoff` is the pure policy (the delays). `wait_for_service` calls an attempt until it
succeeds, sleeping the policy's delays between tries and saying on each failed one what it
waits for, which try that was and when the next comes, so an operator reading the log of a
processor or publisher that stands still sees why. A deadline is given only where the
caller needs to give up (a command a person waits on); a service waits for as long as it
takes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: initial * factor**n, capped at `maximum`, with ±jitter (so
    that several clients of one server do not all come back in step)."""

    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * (1 + random.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.maximum)


def log_retry(log: logging.Logger, what: str, reason: str, attempt: int, delay: float) -> None:
    """The one line a failed try logs (also for waits that cannot use wait_for_service,
    such as the agent's on its event loop)."""
    log.warning(
        "waiting for %s: %s; attempt %d, next try in %.1f s",
        what,
        reason,
        attempt,
        delay,
        extra={"waiting_for": what, "attempt": attempt, "next_try_s": round(delay, 1)},
    )


def first_line(exc: BaseException) -> str:
    """What an error says, in one line (psycopg's messages run over several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Stopped(Exception):
    """The caller's stop event was set while waiting; nothing was done."""


def wait_for_service(
    what: str,
    attempt: Callable[[], T],
    *,
    transient: tuple[type[BaseException], ...],
    log: logging.Logger,
    backoff: Backoff = Backoff(),
    deadline_s: float | None = None,
    stop: threading.Event | None = None,
) -> T:
    """`attempt()`'s result, once it stops raising one of `transient`.

    Raises the last transient error once `deadline_s` has passed (None: never gives up),
    and `Stopped` when `stop` is set while waiting.
    """
    started = time.monotonic()
    for number, delay in enumerate(backoff.delays(), start=1):
        try:
            return attempt()
        except transient as exc:
            reason = first_line(exc)
            if deadline_s is not None and time.monotonic() - started + delay > deadline_s:
                log.error("gave up waiting for %s after %d attempts: %s", what, number, reason)
                raise
            log_retry(log, what, reason, number, delay)
        if stop is None:
            time.sleep(delay)
        elif stop.wait(delay):
            raise Stopped(what)
    raise AssertionError("Backoff.delays() never ends")
