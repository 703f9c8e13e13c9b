"""`chatchannels demo --once`: the whole system, scored against the scenario's ground truth."""

import subprocess
import sys

import pytest

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
