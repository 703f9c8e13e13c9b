"""`chatchannels import` as a user sees it, with Kafka away: refusals, the summary, and the
events kept in the spool for the next run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.event_signing import IMPORTER
from chatchannels.ingest.agent.spool import read_summary
from chatchannels.signing_secrets import provision_password
from tests.support.skype_files import CHATSYNC, MAC


def _invoke(tmp_path, *args):
    provision_password(tmp_path / "secrets", IMPORTER)
    env = {
        "CHATCHANNELS_SECRETS_DIR": str(tmp_path / "secrets"),
        "CHATCHANNELS_KAFKA": "127.0.0.1:1",
        "CHATCHANNELS_IMPORT_SPOOL_DIR": str(tmp_path / "spools"),
        "CHATCHANNELS_MEDIA_DIR": str(tmp_path / "media"),
    }
    return CliRunner().invoke(main, ["import", "--wait", "0.5", *map(str, args)], env=env)


def test_with_kafka_away_the_events_stay_spooled_and_the_user_is_told(tmp_path):
    result = _invoke(tmp_path, MAC, "--host", "file-old-laptop")
    assert result.exit_code == 3, result.output
    assert (
        "Skype classic main.db, host file-old-laptop: 11 objects, 11 events spooled"
        in result.output
    )
    assert "11 events are not in Kafka yet" in result.output
    assert "run the same import again to deliver them" in result.output
    spool = tmp_path / "spools" / "import-file-old-laptop.db"
    assert read_summary(spool).depth == 11
    again = _invoke(tmp_path, MAC, "--host", "file-old-laptop")
    assert "already imported (11 objects); nothing added" in again.output
    assert read_summary(spool).depth == 11


def test_json_summary_and_refusals(tmp_path):
    result = _invoke(tmp_path, "--json", MAC, CHATSYNC)
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert any(
        line.startswith(f"{CHATSYNC}: not imported: a Skype chatsync .dat") for line in lines
    )
    summary = json.loads(lines[-1])
    (report,) = summary["files"]
    assert report["what"] == "Skype classic main.db"
    assert report["host"].startswith("file-") and len(report["host"]) == 21
    assert (report["objects"], report["spooled"], report["undelivered"]) == (11, 11, 11)
    assert report["errors"] == []
    assert summary["refused"][0]["path"] == str(CHATSYNC)
    only_refused = _invoke(tmp_path, CHATSYNC)
    assert only_refused.exit_code == 2
