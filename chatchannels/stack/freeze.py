"""Freezing a process (SIGSTOP) with a deadline that holds even if the freezer dies.

    with frozen(kafka_pid, 5.0):
        ...                          # the broker is stopped in here, and only in here

A frozen process stays frozen until someone sends SIGCONT. The `finally` of `frozen` does,
but a process killed (SIGKILL), or interrupted before its `try`, never runs it, and a broker
left stopped hangs every later client. So a guard process is armed before the SIGSTOP: it
sends SIGCONT at the deadline, or as soon as the process that froze it is gone or lets it go
(the guard's stdin closes), or when it is itself told to stop. It runs in a session of its
own, so the Ctrl-C that interrupts the freezer does not reach it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

from chatchannels.stack.processes import StackError

# The guard thaws this long after the freeze's own end: the freezer thaws first when it can.
GRACE_S = 1.0
# Python and this module start in a fraction of that; more means the machine is stuck.
ARM_TIMEOUT_S = 30.0
_ARMED = "armed"


@contextlib.contextmanager
def frozen(pid: int, seconds: float) -> Iterator[None]:
    """Stop `pid` for the body of the `with`; it is continued at its end however the body
    ends, and by the guard `seconds` + GRACE_S after the guard is armed at the latest."""
    guard = _arm_guard(pid, seconds + GRACE_S)
    try:
        os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        finally:
            _release(guard)


def _arm_guard(pid: int, deadline_s: float) -> subprocess.Popen:
    guard = subprocess.Popen(
        [sys.executable, "-m", __name__, str(pid), repr(deadline_s), str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        ready, _, _ = select.select([guard.stdout], [], [], ARM_TIMEOUT_S)
        line = guard.stdout.readline().decode().strip() if ready else "(nothing)"
        if line != _ARMED:
            raise StackError(
                f"the freeze guard of pid {pid} did not arm within {ARM_TIMEOUT_S:g} s: "
                f"it said {line!r}, exit status {guard.poll()}"
            )
    except BaseException:
        guard.kill()
        guard.wait()
        raise
    return guard


def _release(guard: subprocess.Popen) -> None:
    """Close the guard's stdin, which it takes as "thaw and exit", and reap it."""
    guard.stdin.close()
    try:
        guard.wait(ARM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()
    guard.stdout.close()


def _guard(pid: int, deadline_s: float, parent: int) -> None:
    def thaw() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    # Told to stop (SIGTERM, a stray Ctrl-C, a hang-up): thaw on the way out.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    end = time.monotonic() + deadline_s
    try:
        poller = select.poll()
        try:
            # The freezer's exit wakes the guard even if its stdin is held open elsewhere.
            poller.register(os.pidfd_open(parent), select.POLLIN)
        except ProcessLookupError:
            return
        poller.register(sys.stdin.fileno(), select.POLLIN | select.POLLHUP)
        print(_ARMED, flush=True)
        # Any event is an end: the freezer exited, or let go (EOF on stdin).
        while not poller.poll(max(0.0, end - time.monotonic()) * 1000):
            if time.monotonic() >= end:
                return
    finally:
        thaw()


if __name__ == "__main__":
    _guard(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]))
