"""wait_for_service: one log line per failed try, the deadline, the stop event."""

from __future__ import annotations

import logging
import threading

import pytest

from chatchannels.retry import Backoff, Stopped, wait_for_service

QUICK = Backoff(initial=0.001, factor=2.0, maximum=0.004, jitter=0.0)
log = logging.getLogger("test.retry")


def failing(times: int):
    calls = []

    def attempt() -> str:
        calls.append(None)
        if len(calls) <= times:
            raise ConnectionError(f"refused\nsecond line {len(calls)}")
        return "up"

    return attempt, calls


def test_each_failed_try_is_one_line_with_its_number_and_next_delay(caplog) -> None:
    attempt, calls = failing(4)
    with caplog.at_level(logging.WARNING, "test.retry"):
        found = wait_for_service(
            "the thing", attempt, transient=(ConnectionError,), log=log, backoff=QUICK
        )
    assert found == "up" and len(calls) == 5
    assert [r.getMessage() for r in caplog.records] == [
        f"waiting for the thing: refused; attempt {n}, next try in 0.0 s" for n in range(1, 5)
    ]
    assert [r.next_try_s for r in caplog.records] == [0.0] * 4
    assert [r.attempt for r in caplog.records] == [1, 2, 3, 4]


def test_other_errors_are_not_retried() -> None:
    def attempt() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        wait_for_service("the thing", attempt, transient=(ConnectionError,), log=log, backoff=QUICK)


def test_gives_up_at_the_deadline_with_the_last_error(caplog) -> None:
    attempt, calls = failing(10**6)
    slow = Backoff(initial=0.05, maximum=0.05, jitter=0.0)
    with pytest.raises(ConnectionError), caplog.at_level(logging.WARNING, "test.retry"):
        wait_for_service(
            "the thing",
            attempt,
            transient=(ConnectionError,),
            log=log,
            backoff=slow,
            deadline_s=0.3,
        )
    assert 3 <= len(calls) <= 8
    assert caplog.records[-1].getMessage().startswith("gave up waiting for the thing after")


def test_a_stop_while_waiting_ends_the_wait() -> None:
    attempt, calls = failing(10**6)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    slow = Backoff(initial=0.05, maximum=0.05, jitter=0.0)
    with pytest.raises(Stopped):
        wait_for_service(
            "the thing", attempt, transient=(ConnectionError,), log=log, backoff=slow, stop=stop
        )
    assert len(calls) >= 2
