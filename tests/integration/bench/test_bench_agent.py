"""The agent's backfill as bench_agent runs it: pipelined, with no disconnect, and a bench
killed mid-run leaves none of its processes behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bench import bench_agent
from chatchannels.stack.processes import (
    command_line,
    descendants,
    die_with_parent,
    wait_for,
    wait_gone,
)
from tests.support.paths import REPO

pytestmark = pytest.mark.integration


def test_pipelined_backfills_of_10000_messages_three_times_without_a_disconnect(stack, tmp_path):
    """A backfill pipelines hundreds of GETs and the emulator answers each with a reply and
    notifications: bursts that once filled a socket buffer and cost the connection (issue
    20). Each run has a fresh emulator and agent."""
    for n in range(3):
        result = bench_agent.backfill(stack, 10_000, tmp_path / f"run{n}", measure_gets=False)
        assert result.disconnects == (), f"run {n + 1}: {result.disconnects}"


def test_a_bench_killed_with_sigterm_mid_run_leaves_no_process_behind(stack):
    env = {**os.environ, "CHATCHANNELS_STACK_DIR": str(stack.stack_dir)}
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_agent", "--messages", "20000"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        # Mid-run: the agent backfilling from the emulator, each on its own dbus-daemon.
        wait_for(
            "bench_agent to start its agent",
            lambda: [p for p in descendants(bench.pid) if " agent run " in command_line(p)],
            300,
            0.1,
        )
        started = descendants(bench.pid)
        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(30)
    assert bench.returncode == 128 + signal.SIGTERM, err[-3000:]
    wait_gone(started, "every process of the killed bench to end", 60)
