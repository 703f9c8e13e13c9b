"""The processes a benchmark starts, and how they end with it.

A benchmark that ends, however it ends, leaves none of them running: each child gets SIGTERM
when the benchmark dies, even by SIGKILL (PR_SET_PDEATHSIG), and the benchmark's own SIGTERM
unwinds like an exception (`sigterm_unwinds`), so its `finally` blocks stop them in order.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

from chatchannels.stack.processes import die_with_parent

REPO = Path(__file__).resolve().parents[1]
# The emulator loads a scenario before it says it is ready: 100,000 messages take seconds.
EMULATOR_READY_S = 120.0
STOP_TIMEOUT_S = 30.0


def sigterm_unwinds() -> None:
    """SIGTERM (a CI timeout, `kill`) raises SystemExit where the benchmark is, as Ctrl-C
    raises KeyboardInterrupt, so every `finally` on the way out runs."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def start(args: list[str], **popen: object) -> subprocess.Popen:
    """`python -m ...` (args after the interpreter) as a child that dies with the benchmark."""
    return subprocess.Popen([sys.executable, *args], cwd=REPO, preexec_fn=die_with_parent, **popen)


def start_emulator(scenario: Path, host: str, address: str, *options: str) -> subprocess.Popen:
    """`chatchannels emulate` in step mode on one bus, once it said it is ready."""
    emulator = start(
        [
            *("-m", "chatchannels.cli", "emulate", "--scenario", str(scenario)),
            *("--bus", f"{host}={address}", "--step", *options),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([emulator.stdout], [], [], EMULATOR_READY_S)
        line = emulator.stdout.readline() if ready else ""
        if '"ready"' not in line:
            raise RuntimeError(
                f"the emulator did not say it was ready within {EMULATOR_READY_S:g} s: "
                f"it said {line!r}, exit status {emulator.poll()}"
            )
    except BaseException:
        stop(emulator)
        raise
    return emulator


def stop(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
    return proc.returncode
