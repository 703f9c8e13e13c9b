"""A bad row is kept, and the same file imported again after a fix adds only what was
missing: the real plaso main.db through `chatchannels import`, Kafka and the processor."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import psycopg
import pytest

from chatchannels.processors.pg.migrate import migrate
from tests.support.processor_harness import process_once, stored_messages
from tests.support.skype_files import PLASO

pytestmark = pytest.mark.integration

# The row whose timestamp its publishers gave an extra digit (the year 2404).
BAD_ROW, BAD_TIMESTAMP, FIXED_TIMESTAMP = 61, 13727168620, 1372716862


def _import(stack, topic, tmp_path, path) -> dict:
    env = dict(
        os.environ,
        CHATCHANNELS_STACK_DIR=str(stack.stack_dir),
        CHATCHANNELS_KAFKA=stack.kafka_bootstrap,
        CHATCHANNELS_TOPIC=topic,
        CHATCHANNELS_IMPORT_SPOOL_DIR=str(tmp_path / "spools"),
        CHATCHANNELS_MEDIA_DIR=str(tmp_path / "media"),
    )
    command = [sys.executable, "-m", "chatchannels.cli", "import", "--json", str(path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)["files"]
    assert report["undelivered"] == 0 and not report["errors"], report
    return report


def test_a_bad_row_is_kept_and_a_fixed_file_adds_only_it(stack, kafka_topic, pg_dsn, tmp_path):
    original = tmp_path / "main.db"
    shutil.copy(PLASO, original)
    migrate(pg_dsn)
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)

    first = _import(stack, kafka_topic, tmp_path, original)
    process_once(settings, kafka_topic)
    before = stored_messages(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        dead = conn.execute("SELECT host, reason FROM dead_letters").fetchall()
    # Kept with the file (its host) and the place in it.
    place = f"Messages rowid {BAD_ROW}: timestamp: impossible timestamp {BAD_TIMESTAMP}"
    assert [(host, reason.split(": ", 1)[1]) for host, reason in dead] == [
        (first["host"], place)
    ], dead

    fixed = tmp_path / "fixed" / "main.db"
    fixed.parent.mkdir()
    shutil.copy(original, fixed)
    with sqlite3.connect(fixed) as db:
        db.execute("UPDATE Messages SET timestamp = ? WHERE id = ?", (FIXED_TIMESTAMP, BAD_ROW))
    second = _import(stack, kafka_topic, tmp_path, fixed)
    assert second["host"] != first["host"]
    process_once(settings, kafka_topic)
    after = stored_messages(pg_dsn)

    # Exactly one message more: the fixed row, held by the fixed file only.
    added = {m.id for m in after} - {m.id for m in before}
    assert len(after) == len(before) + 1 and len(added) == 1, (len(before), len(after))
    (new,) = [m for m in after if m.id in added]
    assert [(o.host, o.local_id) for o in new.observations] == [(second["host"], str(BAD_ROW))]
    assert new.utc == FIXED_TIMESTAMP
    # Every message of the first import now has one copy from each file, and is unchanged
    # but for that.
    for message in after:
        if message.id in added:
            continue
        assert sorted(o.host for o in message.observations) == sorted(
            [first["host"], second["host"]]
        ), message
    assert [m.id for m in after if m.id not in added] == [m.id for m in before]
    # The bad row's dead letter is still there to inspect.
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 1
