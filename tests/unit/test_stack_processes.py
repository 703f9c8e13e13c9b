"""Children started with die_with_parent do not outlive a parent that is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from chatchannels.stack.processes import pid_alive

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from chatchannels.stack.processes import die_with_parent
    preexec = die_with_parent if sys.argv[1] == "tied" else None
    child = subprocess.Popen(["sleep", "600"], preexec_fn=preexec)
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def orphan_survives(mode: str) -> bool:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    # SIGTERM reaches a tied child at once; an untied one is given a second to (not) die.
    deadline = time.monotonic() + (5 if mode == "tied" else 1)
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = pid_alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    return alive


def test_a_tied_child_dies_with_its_killed_parent() -> None:
    assert not orphan_survives("tied")


def test_an_untied_child_outlives_it() -> None:
    # The control: without the tie the same child is orphaned, so the test above can fail.
    assert orphan_survives("untied")
