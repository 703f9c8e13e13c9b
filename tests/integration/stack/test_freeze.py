"""A frozen process always thaws: at the end of `frozen`, at the guard's deadline, and as soon
as the process that froze it dies, even by SIGKILL. The frozen process here is a `sleep`."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from chatchannels.stack.freeze import GRACE_S, frozen
from chatchannels.stack.processes import process_state, wait_for
from tests.support.paths import REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "600"])
    # Signals act once the process runs again: states below are awaited, never sampled once.
    _state(proc.pid, "S", "the sleeper asleep")
    yield proc.pid
    proc.kill()
    proc.wait(10)


def _state(pid: int, state: str, what: str) -> None:
    wait_for(what, lambda: process_state(pid) == state, 10, 0.01)


def _thawed_within(pid: int, seconds: float, what: str) -> float:
    """Seconds until `pid` is no longer stopped; fails after `seconds`, saying its state."""
    started = time.monotonic()
    wait_for(what, lambda: process_state(pid) not in ("T", None), seconds, 0.02)
    return time.monotonic() - started


def test_frozen_for_its_body_and_thawed_after_it(sleeper):
    with frozen(sleeper, 30):
        _state(sleeper, "T", "the sleeper stopped")
    _state(sleeper, "S", "the sleeper thawed")


def test_an_interrupt_inside_the_freeze_thaws(sleeper):
    with pytest.raises(KeyboardInterrupt), frozen(sleeper, 30):
        raise KeyboardInterrupt
    _state(sleeper, "S", "the sleeper thawed")


def _freezer(pid: int, seconds: float) -> subprocess.Popen:
    """Another process that freezes `pid` and then hangs inside the freeze."""
    code = (
        "import sys, time\n"
        "from chatchannels.stack.freeze import frozen\n"
        f"with frozen({pid}, {seconds}):\n"
        "    print('frozen', flush=True)\n"
        "    time.sleep(3600)\n"
    )
    freezer = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    said, _, _ = select.select([freezer.stdout], [], [], 30)
    line = freezer.stdout.readline() if said else "(nothing within 30 s)"
    if line != "frozen\n":
        freezer.kill()
        freezer.wait(10)
        raise AssertionError(f"the freezer said {line!r}, exit status {freezer.poll()}")
    return freezer


def test_a_freezer_killed_mid_freeze_leaves_nothing_frozen(sleeper):
    freezer = _freezer(sleeper, 300)
    try:
        _state(sleeper, "T", "the sleeper stopped")
        freezer.send_signal(signal.SIGKILL)
        freezer.wait(10)
        # Thawed on the freezer's death, not at the deadline 300 s away.
        took = _thawed_within(sleeper, 10, "the guard to thaw after the freezer's death")
        assert took < 10
    finally:
        freezer.kill()
        freezer.wait(10)


def test_a_freezer_stuck_mid_freeze_is_overruled_at_the_deadline(sleeper):
    freezer = _freezer(sleeper, 0.5)
    try:
        _state(sleeper, "T", "the sleeper stopped")
        took = _thawed_within(sleeper, 10, "the guard's deadline")
        assert took < 0.5 + GRACE_S + 1
        assert freezer.poll() is None  # still stuck: the guard thawed, not the freezer
    finally:
        freezer.kill()
        freezer.wait(10)
