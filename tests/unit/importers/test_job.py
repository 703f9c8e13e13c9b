"""Spooling an import: every object once, as a valid event; a killed import resumes with
exactly the rest; a finished file adds nothing when imported again."""

from __future__ import annotations

import sqlite3

import pytest

from chatchannels.ingest.agent.spool import Spool
from chatchannels.ingest.importers.detect import EXPORT_TAR, MAINDB, Importable
from chatchannels.ingest.importers.events import default_host, file_sha256
from chatchannels.ingest.importers.job import FileReport, spool_file, spool_path
from chatchannels.rawevents import decode_raw_event, encode_raw_event, validate_raw_event
from tests.support.skype_files import (
    PLASO,
    export_document,
    message_count,
    write_export_tar,
    write_maindb,
)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def generated_maindb(tmp_path_factory):
    return write_maindb(tmp_path_factory.mktemp("maindb") / "main.db", messages=3000)


def _records(path):
    """How many Conversations and Chats rows the file has (read before its messages)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sum(
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("Conversations", "Chats")
        )
    finally:
        db.close()


def _spool(tmp_path, importable, *, kill_after=None, session="1" * 32):
    sha = file_sha256(importable.path)
    host = default_host(sha)
    report = FileReport(
        str(importable.path), importable.kind, importable.description, sha256=sha, host=host
    )

    def on_object(n):
        if kill_after is not None and n > kill_after:
            raise Killed

    with Spool(spool_path(tmp_path / "spools", host), host) as spool:
        spool_file(
            importable,
            spool,
            report,
            session=session,
            media_root=tmp_path / "media",
            on_object=on_object,
        )
    return report


def _events(tmp_path, host):
    with Spool(spool_path(tmp_path / "spools", host), host) as spool:
        return [decode_raw_event(e.data) for e in spool.peek(0, 1_000_000)]


def _place(event):
    place = event["payload"]["place"]
    return tuple(sorted(place.items()))


def test_the_real_file_spools_one_valid_event_per_row_and_a_rerun_adds_nothing(tmp_path):
    item = Importable(PLASO, MAINDB)
    report = _spool(tmp_path, item)
    # 2 Conversations rows, 5 Chats rows, 15 Messages rows.
    assert (report.objects, report.spooled, report.errors) == (22, 22, [])
    events = _events(tmp_path, report.host)
    assert [e["seq"] for e in events] == list(range(1, 23))
    assert [e["payload"]["place"]["table"] for e in events] == (
        ["Conversations"] * 2 + ["Chats"] * 5 + ["Messages"] * 15
    )
    for event in events:
        validate_raw_event(event)
    assert {e["source"] for e in events} == {"skype-maindb"}
    assert all(e["host"] == f"file-{report.sha256[:16]}" for e in events)
    assert events[0]["payload"]["file"] == {
        "sha256": report.sha256,
        "name": PLASO.name,
        "account": "gen.beringer",
        "client": "0/6.6.0.106//_checksum_3768521794",
    }
    again = _spool(tmp_path, item, session="2" * 32)
    assert again.already_imported and again.spooled == 0 and again.skipped == 22
    assert len(_events(tmp_path, report.host)) == 22


@pytest.mark.parametrize("kill_after", [1, 5, 499, 500, 1234, 3000])
def test_a_killed_main_db_import_resumes_with_exactly_the_rest(
    tmp_path, kill_after, generated_maindb
):
    records = _records(generated_maindb)
    total = records + 3000
    item = Importable(generated_maindb, MAINDB)
    with pytest.raises(Killed):
        _spool(tmp_path, item, kill_after=kill_after)
    report = _spool(tmp_path, item, session="2" * 32)
    # Whole batches were committed before the kill; the rest come now.
    assert report.skipped == kill_after // 500 * 500
    assert (report.objects, report.spooled) == (total, total - report.skipped)
    events = _events(tmp_path, report.host)
    places = [(e["payload"]["place"]["table"], e["payload"]["place"]["rowid"]) for e in events]
    assert len(places) == len(set(places)) == total
    # The chats' records first, then the messages in rowid order, across the kill.
    assert {table for table, _ in places[:records]} == {"Conversations", "Chats"}
    rowids = [rowid for table, rowid in places[records:]]
    assert rowids == sorted(rowids) and {table for table, _ in places[records:]} == {"Messages"}
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    assert {e["session"] for e in events} == (
        {"2" * 32} if report.skipped == 0 else {"1" * 32, "2" * 32}
    )


def test_a_killed_export_import_resumes_with_exactly_the_rest(tmp_path):
    doc = export_document(extra_messages=1500)
    path = write_export_tar(tmp_path / "export.tar", doc)
    item = Importable(path, EXPORT_TAR)
    with pytest.raises(Killed):
        _spool(tmp_path, item, kill_after=1100)
    report = _spool(tmp_path, item, session="2" * 32)
    # Every message, each conversation's record and the two media files.
    total = message_count(doc) + len(doc["conversations"]) + 2
    assert (report.skipped, report.objects) == (1000, total)
    events = _events(tmp_path, report.host)
    places = [(e["payload"]["kind"], _place(e)) for e in events]
    assert len(places) == len(set(places)) == total
    assert sum(e["payload"]["kind"] == "media" for e in events) == 2
    assert sum(e["payload"]["kind"] == "conversation" for e in events) == 3
    for event in events:
        validate_raw_event(event)
    assert _spool(tmp_path, item).already_imported


def test_spooled_bytes_are_exactly_what_encode_raw_event_makes(tmp_path):
    for item in (
        Importable(PLASO, MAINDB),
        Importable(write_export_tar(tmp_path / "e.tar"), EXPORT_TAR),
    ):
        report = _spool(tmp_path, item)
        with Spool(spool_path(tmp_path / "spools", report.host), report.host) as spool:
            for event in spool.peek(0, 10_000):
                assert event.data == encode_raw_event(decode_raw_event(event.data))
