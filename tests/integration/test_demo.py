"""`chatchannels demo`: the whole system, scored against the scenario's ground truth."""

import os
import re
import signal
import subprocess
import sys

import pytest

from chatchannels.demo.scenario import ARCHIVED_CHATS, demo_scenario
from chatchannels.emulator.scenario import scenario_from_dict
from chatchannels.emulator.truth import ground_truth
from tests.conftest import free_port

pytestmark = pytest.mark.integration


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


# Where Ctrl-C comes: during the scripted part, while Kafka is frozen and Bob's Skype has
# quit (with 60 messages and the lead-in, the scripted part is about 110 scenario seconds,
# Kafka freezes at 66 and Bob is away from 56 to 76); or in the live part, at its second
# report (10 s of live messages).
STOPS = {
    "scripted": lambda said: any("freezing Kafka" in line for line in said),
    "live": lambda said: sum("merged across hosts" in line for line in said) >= 2,
}


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_live_demo_stopped_with_ctrl_c_matches_what_was_played(stack, stop):
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group): what was played is
    delivered, processed, published and matches its ground truth."""
    messages = 60
    scripted = scenario_from_dict(demo_scenario(start=0, messages=messages), "scripted")
    scripted_truth = sum(1 for m in ground_truth(scripted) if m.chat in ARCHIVED_CHATS)
    options = ["--messages", str(messages), "--speed", "8", "--port", str(free_port())]
    demo = subprocess.Popen(
        [sys.executable, "-m", "chatchannels.cli", "demo", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        said: list[str] = []
        while not STOPS[stop](said):
            line = demo.stderr.readline()
            assert line, "".join(said)
            said.append(line)
        os.killpg(demo.pid, signal.SIGINT)
        out, err = demo.communicate(timeout=300)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 0, out + "".join(said) + err[-5000:]
    assert "matches the ground truth" in out
    archived = re.search(r"canonical messages +(\d+) \(ground truth: (\d+)\)", out)
    assert archived[1] == archived[2]
    played = int(archived[2])
    assert (played > scripted_truth) if stop == "live" else (0 < played < scripted_truth)
