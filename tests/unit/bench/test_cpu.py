"""bench/cpu.py: the processor benchmark charges its decode worker's CPU time through
`descendants` (the worker is the forkserver's child, not the processor's)."""

from __future__ import annotations

import os
import subprocess
import time

from bench.cpu import cpu_seconds, descendants


def test_descendants_are_children_and_their_children() -> None:
    child = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; wait"], stdout=subprocess.PIPE)
    try:
        grandchild = int(child.stdout.readline())
        found = descendants(os.getpid())
        assert child.pid in found and grandchild in found
        assert descendants(grandchild) == []
    finally:
        os.kill(grandchild, 15)
        child.wait(timeout=10)
        child.stdout.close()
    assert child.pid not in descendants(os.getpid())


def test_cpu_seconds_counts_this_process_working() -> None:
    before, start = cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - start < 0.3:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.25
