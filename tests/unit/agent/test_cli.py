"""`chatchannels agent`: refusal without an allow-list, status output, example config."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.ingest.agent.config import load_agent_config
from chatchannels.ingest.agent.spool import Spool
from chatchannels.settings import Settings
from tests.support.paths import REPO

STATUS_KEYS = {
    "host",
    "spool",
    "running",
    "attach_state",
    "session",
    "spool_depth",
    "next_seq",
    "dead_letters",
    "oldest_unsent_seq",
    "oldest_unsent_age_s",
    "last_kafka_ack_at",
    "kafka_connected",
    "events_per_s",
    "captured_this_session",
    "last_error",
    "metrics",
    "capture_paused",
}


def _config(tmp_path, extra: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'host_id = "alice-pc"\nspool = "{tmp_path / "spool.db"}"\n{extra}')
    return path


def test_run_without_allow_list_refuses_and_says_why(tmp_path):
    result = CliRunner().invoke(main, ["agent", "run", "--config", str(_config(tmp_path))])
    assert result.exit_code == 2
    assert "no chats to archive" in result.output
    assert "--all-chats" in result.output


def test_status_json_has_stable_keys_and_counts_the_spool(tmp_path):
    config = _config(tmp_path, 'chats = ["#a/$b;1"]\n')
    with Spool(tmp_path / "spool.db", "alice-pc") as spool:
        spool.append([lambda seq: b"x"] * 3, 1700000000.0)
    # A status file from a process that is gone: reported as not running.
    (tmp_path / "spool.db.status.json").write_text(
        json.dumps({"pid": 2**22 + 12345, "updated_at": 1e12, "attach_state": "attached"})
    )
    result = CliRunner().invoke(main, ["agent", "status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == STATUS_KEYS
    assert (report["spool_depth"], report["oldest_unsent_seq"], report["next_seq"]) == (3, 1, 4)
    assert report["running"] is False
    assert report["metrics"]["chatchannels_agent_spool_depth_events"] == 3
    assert report["metrics"]["chatchannels_agent_next_seq"] == 4
    text = CliRunner().invoke(main, ["agent", "status", "--config", str(config)])
    assert "spool depth" in text.output and "3 events" in text.output


def test_status_of_a_live_agent_uses_its_status_file(tmp_path):
    config = _config(tmp_path, 'chats = ["#a/$b;1"]\n')
    Spool(tmp_path / "spool.db", "alice-pc").close()
    (tmp_path / "spool.db.status.json").write_text(
        json.dumps({"pid": os.getpid(), "updated_at": 1e12, "attach_state": "attached", "acked": 5})
    )
    result = CliRunner().invoke(main, ["agent", "status", "--config", str(config), "--json"])
    report = json.loads(result.output)
    assert report["running"] is True
    assert report["attach_state"] == "attached"
    assert report["metrics"]["chatchannels_agent_events_delivered_total"] == 5


def test_example_config_loads():
    config = load_agent_config(REPO / "deploy" / "agent.example.toml", Settings())
    assert config.host_id == "alice-pc"
    assert config.chats and config.chat_patterns
