"""Children started with die_with_parent do not outlive a parent that is SIGKILLed; the
process tree is found and waited on with a deadline that names what is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from chatchannels.stack.processes import StackError, descendants, pid_alive, wait_gone

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


def test_descendants_finds_the_children_of_children() -> None:
    shell = subprocess.Popen(["sh", "-c", "sleep 600 & echo $!; wait"], stdout=subprocess.PIPE)
    try:
        grandchild = int(shell.stdout.readline())
        assert grandchild in descendants(os.getpid())
        assert descendants(shell.pid) == [grandchild]
    finally:
        for pid in (grandchild, shell.pid):
            os.kill(pid, signal.SIGKILL)
        shell.wait(10)


def test_wait_gone_names_the_processes_left() -> None:
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        with pytest.raises(StackError, match=rf"still running: {sleeper.pid} sleep 600"):
            wait_gone([sleeper.pid], "the sleeper to end", 0.2)
    finally:
        sleeper.kill()
        sleeper.wait(10)
    wait_gone([sleeper.pid], "the killed sleeper to end", 10)
