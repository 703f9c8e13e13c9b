"""`chatchannels import` on the real stack: a generated export and the real main.db files go
into a fresh topic exactly once, a rerun adds nothing, and a kill -9 mid-import loses and
duplicates nothing once the import is run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from chatchannels.ingest.agent.spool import SpoolError, read_summary
from chatchannels.ingest.importers.events import default_host, file_sha256
from chatchannels.ingest.importers.job import spool_path
from tests.support.agent_runs import TopicReader, wait_for
from tests.support.skype_files import (
    MAC,
    PLASO,
    export_document,
    message_count,
    write_export_tar,
    write_maindb,
)

pytestmark = pytest.mark.integration


def _env(stack, topic, tmp_path):
    return dict(
        os.environ,
        CHATCHANNELS_STACK_DIR=str(stack.stack_dir),
        CHATCHANNELS_KAFKA=stack.kafka_bootstrap,
        CHATCHANNELS_TOPIC=topic,
        CHATCHANNELS_IMPORT_SPOOL_DIR=str(tmp_path / "spools"),
        CHATCHANNELS_MEDIA_DIR=str(tmp_path / "media"),
    )


def _command(*paths):
    return [sys.executable, "-m", "chatchannels.cli", "import", "--json", *map(str, paths)]


def _run(env, *paths):
    done = subprocess.run(_command(*paths), env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _read_all(reader, expected):
    def distinct():
        return len({(e["host"], e["seq"]) for e in reader.poll()})

    wait_for(f"{expected} events", lambda: distinct() >= expected, distinct, timeout=120)
    return reader.events


def test_an_export_and_two_main_dbs_arrive_once_and_a_rerun_adds_nothing(
    stack, kafka_topic, tmp_path
):
    doc = export_document()
    export = write_export_tar(tmp_path / "export.tar", doc)
    env = _env(stack, kafka_topic, tmp_path)
    summary = _run(env, export, PLASO, MAC)
    files = {os.path.basename(f["path"]): f for f in summary["files"]}
    # Every message and media file of the export and each conversation's record; every
    # Conversations, Chats and Messages row of the two files (2 + 5 + 15 and 3 + 1 + 7).
    conversations = len(doc["conversations"])
    expected = {"export.tar": message_count(doc) + conversations + 2, PLASO.name: 22, MAC.name: 11}
    assert {name: f["spooled"] for name, f in files.items()} == expected
    assert all(f["errors"] == [] and f["undelivered"] == 0 for f in files.values())

    reader = TopicReader(stack, kafka_topic)
    try:
        events = _read_all(reader, sum(expected.values()))
        per_host = Counter(e["host"] for e in events)
        assert sorted(per_host.values()) == sorted(expected.values())
        for name, f in files.items():
            mine = [e for e in events if e["host"] == f["host"]]
            assert sorted(e["seq"] for e in mine) == list(range(1, expected[name] + 1))
            assert {e["payload"]["file"]["name"] for e in mine} == {name}
        assert {e["source"] for e in events} == {"skype-export", "skype-maindb"}
        # Each host's events are keyed by the host, so they share one partition, in order.
        assert all(key == e["host"].encode() for key, e in zip(reader.keys, events, strict=True))

        again = _run(env, export, PLASO, MAC)
        assert all(f["already_imported"] and f["spooled"] == 0 for f in again["files"])
        time.sleep(2)
        assert len(reader.poll()) == sum(expected.values())
    finally:
        reader.close()


def test_an_import_killed_mid_way_resumes_and_every_row_arrives_once(stack, kafka_topic, tmp_path):
    maindb = write_maindb(tmp_path / "main.db", messages=40_000, chats=12)
    # Each chat has a Conversations and a Chats row, read before the messages.
    rows = 40_000 + 2 * 12
    host = default_host(file_sha256(maindb))
    spool = spool_path(tmp_path / "spools", host)
    env = _env(stack, kafka_topic, tmp_path)
    process = subprocess.Popen(
        _command(maindb), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def spooled():
        try:
            return read_summary(spool).next_seq - 1
        except SpoolError:
            return 0

    try:
        wait_for("some events spooled", lambda: spooled() >= 5000, spooled, timeout=120)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = spooled()
    assert 0 < killed_at < rows, "the import finished before it was killed"

    summary = _run(env, maindb)
    (report,) = summary["files"]
    assert report["skipped_already_imported"] == killed_at
    assert report["spooled"] == rows - killed_at
    assert report["undelivered"] == 0

    reader = TopicReader(stack, kafka_topic)
    try:
        events = _read_all(reader, rows)
    finally:
        reader.close()
    by_seq = {}
    for event in events:
        place = event["payload"]["place"]
        rowid = (place["table"], place["rowid"])
        # A record sent again after the kill is the same bytes: same seq, same row.
        assert by_seq.setdefault(event["seq"], rowid) == rowid
    assert sorted(by_seq) == list(range(1, rows + 1))
    assert len(set(by_seq.values())) == rows
    assert {e["host"] for e in events} == {host}
