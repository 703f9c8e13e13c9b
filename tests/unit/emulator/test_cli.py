"""`chatchannels emulate` without a bus: ground truth, generation, and its error messages."""

from __future__ import annotations

import json

from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.emulator.scenario import bundled_scenario, load_scenario
from chatchannels.emulator.truth import ground_truth


def emulate(*args: str):
    return CliRunner().invoke(main, ["emulate", *args])


def test_truth_to_stdout_and_file(tmp_path):
    small = str(bundled_scenario("small.json"))
    result = emulate("--scenario", small, "--truth", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["start"] == 1357987875
    assert [m["msg"] for m in doc["messages"]] == [
        t.msg for t in ground_truth(load_scenario(small))
    ]
    twice = next(m for m in doc["messages"] if m["msg"] == "twice-1")
    assert twice["deleted"] and twice["revisions"][0] == {
        "body": "",
        "editor": "bob",
        "at": 1357987935.0,
    }
    out = tmp_path / "truth.json"
    assert emulate("--scenario", small, "--truth", str(out)).exit_code == 0
    assert json.loads(out.read_text()) == doc


def test_generate_to_file_then_truth(tmp_path):
    out = tmp_path / "big.jsonl"
    result = emulate("--generate", "500", "--seed", "5", "--out", str(out))
    assert result.exit_code == 0, result.output
    truth = emulate("--scenario", str(out), "--truth", "-")
    assert len(json.loads(truth.output)["messages"]) == 500


def test_errors_say_what_and_where(tmp_path):
    assert "give --scenario" in emulate().output
    small = str(bundled_scenario("small.json"))
    assert "at least one --bus" in emulate("--scenario", small).output
    assert "HOST=ADDRESS" in emulate("--scenario", small, "--bus", "nohost").output
    assert (
        "exclude" in emulate("--scenario", small, "--bus", "a=b", "--step", "--speed", "2").output
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "chatchannels.scenario.v1"}')
    result = emulate("--scenario", str(bad), "--truth", "-")
    assert result.exit_code == 2
    assert "Error: " in result.output and "bad.json" in result.output
    wrong_host = emulate("--scenario", small, "--bus", "zed-pc=unix:path=/nonexistent")
    assert "zed-pc" in wrong_host.output and wrong_host.exit_code == 2
