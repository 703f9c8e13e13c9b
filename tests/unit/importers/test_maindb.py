"""main.db: every Conversations, Chats and Messages row once, verbatim, in that order and in
rowid order; a message carries its conversation only where its chat name needs it; a corrupt
page costs only its rows, reported by table and rowid range; the original file is never
written."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

from chatchannels.ingest.importers.events import FileInfo, maindb_event
from chatchannels.ingest.importers.maindb import TABLES, MainDb
from chatchannels.rawevents import EventClock, validate_raw_event
from tests.support.skype_files import MAC, PLASO, write_maindb


def _read(path, table="Messages"):
    """The table's rows (all rows if table is None), errors, account and client."""
    with MainDb(path) as db:
        rows = [r for r in db.rows() if table is None or r.table == table]
        return rows, db.errors, db.account, db.client


def _columns(path, table="Messages"):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def test_the_plaso_file_gives_its_15_rows_with_every_column_and_the_bad_rows_verbatim():
    before = hashlib.sha256(PLASO.read_bytes()).hexdigest()
    every, errors, account, client = _read(PLASO, None)
    assert errors == []
    assert (account, client) == ("gen.beringer", "0/6.6.0.106//_checksum_3768521794")
    # Conversations, then Chats, then Messages, each in rowid order.
    assert [r.table for r in every] == ["Conversations"] * 2 + ["Chats"] * 5 + ["Messages"] * 15
    for table in TABLES:
        mine = [r for r in every if r.table == table]
        assert [r.rowid for r in mine] == sorted(r.rowid for r in mine)
        assert all(list(r.row) == _columns(PLASO, table) for r in mine)
    rows = [r for r in every if r.table == "Messages"]
    by_id = {r.row["id"]: r for r in rows}
    # The hand-edited rows: the year-2404 timestamp and the NULL guid go through as they are.
    assert by_id[61].row["timestamp"] == 13727168620
    assert by_id[61].row["guid"] is None and by_id[61].row["type"] == 64
    assert by_id[39].row["guid"]["hex"] and len(by_id[39].row["guid"]["hex"]) == 64
    # Every row names its chat: none carries its conversation.
    assert not any(r.needs_conversation or r.conversation for r in every)
    chats = {r.row["name"] for r in every if r.table == "Chats"}
    assert chats == {r.row["chatname"] for r in rows}
    assert hashlib.sha256(PLASO.read_bytes()).hexdigest() == before


def test_the_mac_file_gives_its_7_rows():
    every, errors, account, client = _read(MAC, None)
    assert errors == []
    assert account == "renesto.testing"
    assert client.startswith("3/6.19.0.452")
    assert [r.table for r in every] == ["Conversations"] * 3 + ["Chats"] + ["Messages"] * 7
    rows = [r for r in every if r.table == "Messages"]
    assert sorted(r.row["type"] for r in rows) == [50] + [61] * 6


def test_every_row_of_both_files_makes_a_valid_event():
    clock = EventClock(utc=1_700_000_000.25, tz_offset_s=7200)
    for path in (PLASO, MAC):
        rows, _, account, client = _read(path, None)
        info = FileInfo("ab" * 32, path.name, account, client)
        for seq, row in enumerate(rows, 1):
            event = maindb_event(
                row, file=info, host="file-abab", session="c" * 32, seq=seq, clock=clock
            )
            validate_raw_event(event)
            assert event["payload"]["place"] == {"table": row.table, "rowid": row.rowid}
            assert event["payload"]["row"] == row.row
            assert "conversation" not in event["payload"] and "chat" not in event["payload"]


def test_a_message_carries_its_conversation_only_where_its_chat_name_needs_it(tmp_path):
    path = tmp_path / "main.db"
    shutil.copyfile(PLASO, path)
    db = sqlite3.connect(path)
    # Skyperious leaves chatname NULL; a cloud group's creator names it by a placeholder.
    db.execute("UPDATE Messages SET chatname = NULL WHERE id = 39")
    db.execute("UPDATE Messages SET chatname = '#gen.beringer/$*T;33' WHERE id = 43")
    db.execute("UPDATE Messages SET chatname = '', convo_id = 999 WHERE id = 47")
    db.execute("UPDATE Chats SET name = '#gen.beringer/$*T;33', conv_dbid = 33 WHERE id = 36")
    db.commit()
    db.close()
    every, errors, account, client = _read(path, None)
    assert errors == []
    needing = {(r.table, r.row["id"]): r for r in every if r.needs_conversation}
    assert set(needing) == {("Messages", 39), ("Messages", 43), ("Messages", 47), ("Chats", 36)}
    assert needing["Messages", 39].conversation["identity"] == "european.bbq.competitor"
    assert needing["Messages", 43].conversation is needing["Messages", 39].conversation
    assert needing["Messages", 47].conversation is None
    assert needing["Chats", 36].conversation["id"] == 33
    info = FileInfo("ab" * 32, path.name, account, client)
    clock = EventClock(utc=1.5, tz_offset_s=0)
    for seq, row in enumerate(every, 1):
        event = maindb_event(row, file=info, host="file-ab", session="c" * 32, seq=seq, clock=clock)
        validate_raw_event(event)
        assert ("conversation" in event["payload"]) == row.needs_conversation
        if row.needs_conversation:
            assert event["payload"]["conversation"] == row.conversation


def _corrupt_page(path, pageno):
    page_size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as fh:
        fh.seek((pageno - 1) * page_size)
        fh.write(b"\xff" * page_size)


def _leaf_pages(path, table="Messages"):
    db = sqlite3.connect(path)
    try:
        return [
            (p, c)
            for p, c in db.execute(
                "SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' "
                "ORDER BY path",
                (table,),
            )
        ]
    finally:
        db.close()


def test_a_corrupt_page_of_a_copy_of_the_real_file_is_reported_and_the_rest_is_read(tmp_path):
    copy = tmp_path / "main.db"
    shutil.copyfile(PLASO, copy)
    ((page, cells),) = _leaf_pages(copy)
    assert cells == 15
    _corrupt_page(copy, page)
    rows, errors, account, _ = _read(copy, None)
    # Its one Messages page held every row: all are lost, said so, and nothing crashes; the
    # chats' records are read.
    assert [r.table for r in rows] == ["Conversations"] * 2 + ["Chats"] * 5
    assert account == "gen.beringer"
    assert errors and all("Messages" in e.place for e in errors)
    assert any("malformed" in e.problem for e in errors)


def test_a_corrupt_page_of_chats_is_reported_like_one_of_messages(tmp_path):
    copy = tmp_path / "main.db"
    shutil.copyfile(PLASO, copy)
    ((page, cells),) = _leaf_pages(copy, "Chats")
    assert cells == 5
    _corrupt_page(copy, page)
    with MainDb(copy) as db:
        rows, errors = list(db.rows()), db.errors
    assert [r.table for r in rows] == ["Conversations"] * 2 + ["Messages"] * 15
    assert errors and all(e.place.startswith("table Chats") for e in errors)
    assert any("malformed" in e.problem for e in errors)


def test_a_corrupt_page_in_the_middle_costs_exactly_its_rows(tmp_path):
    path = write_maindb(tmp_path / "main.db", messages=3000)
    with MainDb(path) as db:
        every = [r.rowid for r in db.rows() if r.table == "Messages"]
    leaves = _leaf_pages(path)
    assert len(leaves) > 10
    page, cells = leaves[len(leaves) // 2]
    _corrupt_page(path, page)
    rows, errors, _, _ = _read(path)
    read = [r.rowid for r in rows]
    missing = sorted(set(every) - set(read))
    assert read == sorted(read) and set(read) <= set(every)
    assert len(missing) == cells
    assert len(errors) == 1
    (error,) = errors
    assert error.place.startswith("table Messages, rowids ")
    low, high = (int(x) for x in error.place.rsplit(" ", 1)[1].split("-"))
    assert low <= missing[0] and missing[-1] <= high
    assert not [r for r in read if low <= r <= high]
    assert "malformed" in error.problem


def test_columns_a_version_lacks_are_simply_absent(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE Messages (id INTEGER PRIMARY KEY, author TEXT, body_xml TEXT, "
        "data BLOB, price REAL)"
    )
    db.execute("INSERT INTO Messages VALUES (5, 'bob', 'hi &amp; bye', x'00ff', 1.5)")
    db.execute("INSERT INTO Messages VALUES (6, 'bob', CAST(x'ff61' AS TEXT), NULL, NULL)")
    db.commit()
    db.close()
    rows, errors, account, client = _read(path)
    assert errors == [] and account is None and client is None
    row, latin = rows
    assert row.row == {
        "id": 5,
        "author": "bob",
        "body_xml": "hi &amp; bye",
        "data": {"hex": "00ff"},
        "price": 1.5,
    }
    # No chatname column: the chat is the conversation's to name, and there is none.
    assert row.needs_conversation and row.conversation is None
    assert latin.row["body_xml"] == {"hex": "ff61"}
