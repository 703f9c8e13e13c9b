"""`chatchannels demo`: the whole system, scored against the scenario's ground truth."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from chatchannels.demo.run import DemoOptions
from chatchannels.demo.scenario import ARCHIVED_CHATS, demo_scenario
from chatchannels.emulator.scenario import scenario_from_dict
from chatchannels.emulator.truth import ground_truth
from chatchannels.stack.freeze import GRACE_S
from chatchannels.stack.kafka import kafka_answer_problem, kafka_pid
from chatchannels.stack.processes import (
    descendants,
    die_with_parent,
    process_state,
    wait_for,
    wait_gone,
)
from tests.support.stack import free_port

MESSAGES = 60
# The scripted part of MESSAGES at speed 8 is about 14 s after a set-up of a few seconds, and
# a run takes 30-70 s on a quiet machine; on a busy one (2 cores, a load of 6) several times
# that. The test's own deadlines come first, so that a failure shows what the demo said.
SAID_TIMEOUT_S = 240
FINISH_TIMEOUT_S = 360
pytestmark = [pytest.mark.integration, pytest.mark.timeout(SAID_TIMEOUT_S + FINISH_TIMEOUT_S + 120)]


def test_demo_once_matches_ground_truth(stack):
    result = subprocess.run(
        [sys.executable, "-m", "chatchannels.cli", "demo", "--once"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert "matches the ground truth" in result.stdout
    assert "dead letters           0" in result.stdout
    for host in ("alice-pc", "bob-laptop", "cecil-pc"):
        assert host in result.stdout
    # No password or key of the run reached a log or the demo's output.
    secrets = _secrets(stack)
    assert len(secrets) >= 8, "the demo's secrets: master key, Kafka, PostgreSQL, agents, reader"
    for log in _logs(stack):
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s in text], f"a secret in {log}"
    assert not [s for s in secrets if s in result.stdout + result.stderr]


def _secrets(stack) -> set[str]:
    """Every password and key the stack and the demo hold: the one-line secret files (the
    password file `pgpass` repeats them; certificates are not secret)."""
    files = [*stack.secrets_root.rglob("*"), *(stack.stack_dir / "demo").rglob("*.password")]
    values = (p.read_text().strip() for p in files if p.is_file())
    return {v for v in values if v and "\n" not in v and len(v) >= 16}


def _logs(stack) -> list:
    return [p for p in (stack.stack_dir / "logs").rglob("*") if p.is_file()] + [
        p for p in (stack.stack_dir / "demo" / "logs").rglob("*") if p.is_file()
    ]


# Where Ctrl-C comes: during the scripted part, while Kafka is frozen and Bob's Skype has
# quit (with 60 messages and the lead-in, the scripted part is about 110 scenario seconds,
# Kafka freezes at 66 and Bob is away from 56 to 76); or in the live part, at its second
# report (10 s of live messages).
STOPS = {
    "scripted": lambda said: any("freezing Kafka" in line for line in said),
    "live": lambda said: sum("merged across hosts" in line for line in said) >= 2,
}


class DemoRun:
    """`chatchannels demo` in a session of its own, its stderr read line by line as it comes
    (a thread, so that every wait on it has a deadline); `close()` kills what is left."""

    def __init__(self, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatchannels.cli", "demo", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # If pytest dies (its timeout, a kill), the demo and so everything it started go.
            preexec_fn=die_with_parent,
        )
        self.said: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def _next_line(self, deadline: float, what: str) -> str | None:
        try:
            return self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(
                f"timed out waiting for {what}; the demo (exit {self.proc.poll()}) said:\n"
                + "".join(self.said[-40:])
            ) from None

    def wait_said(self, what: str, said: Callable[[list[str]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not said(self.said):
            line = self._next_line(deadline, what)
            if line is None:
                raise AssertionError(
                    f"the demo exited with {self.proc.wait(10)} before {what}; it said:\n"
                    + "".join(self.said[-40:])
                )
            self.said.append(line)

    def finish(self, timeout: float) -> str:
        """Wait for the demo to exit; its stdout (stderr goes on into `said`)."""
        deadline = time.monotonic() + timeout
        while (line := self._next_line(deadline, "the demo to finish")) is not None:
            self.said.append(line)
        self.proc.wait(max(1.0, deadline - time.monotonic()))
        return self.proc.stdout.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.proc.stdout.close()


# Agents flush their spools on SIGTERM; the rest stop at once.
GONE_TIMEOUT_S = 60


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_live_demo_stopped_with_ctrl_c_matches_what_was_played(stack, stop):
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group): what was played is
    delivered, processed, published and matches its ground truth, and every process the
    demo started is gone."""
    scripted = scenario_from_dict(demo_scenario(start=0, messages=MESSAGES), "scripted")
    scripted_truth = sum(1 for m in ground_truth(scripted) if m.chat in ARCHIVED_CHATS)
    demo = DemoRun("--messages", str(MESSAGES), "--speed", "8", "--port", str(free_port()))
    try:
        demo.wait_said(f"the {stop} stop", STOPS[stop], SAID_TIMEOUT_S)
        started = descendants(demo.proc.pid)
        os.killpg(demo.proc.pid, signal.SIGINT)
        out = demo.finish(FINISH_TIMEOUT_S)
    finally:
        demo.close()
    assert demo.proc.returncode == 0, out + "".join(demo.said[-60:])
    assert "matches the ground truth" in out
    archived = re.search(r"canonical messages +(\d+) \(ground truth: (\d+)\)", out)
    assert archived[1] == archived[2]
    played = int(archived[2])
    assert (played > scripted_truth) if stop == "live" else (0 < played < scripted_truth)
    wait_gone(started, "every process the demo started to end", GONE_TIMEOUT_S)


def test_demo_killed_while_kafka_is_frozen_leaves_the_broker_answering(stack):
    """SIGKILL runs no `finally`: the freeze guard thaws the broker within the freeze's
    deadline, and every process the demo started ends with it."""
    demo = DemoRun("--messages", str(MESSAGES), "--speed", "8", "--port", str(free_port()))
    try:
        demo.wait_said("the freeze", STOPS["scripted"], SAID_TIMEOUT_S)
        broker = kafka_pid(stack)
        wait_for("the broker stopped", lambda: process_state(broker) == "T", 5, 0.02)
        started = descendants(demo.proc.pid)
        killed_at = time.monotonic()
        os.killpg(demo.proc.pid, signal.SIGKILL)
        demo.proc.wait(10)
        deadline = DemoOptions().kafka_pause_s + GRACE_S
        wait_for(
            "the broker to answer again",
            lambda: kafka_answer_problem(stack, timeout=0.5) is None,
            deadline,
            0.05,
        )
        assert time.monotonic() - killed_at < deadline
    finally:
        demo.close()
    wait_gone(started, "every process the killed demo started to end", GONE_TIMEOUT_S)
