"""Files are recognised by their content; anything else is refused in one line saying what."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tarfile

import pytest

from chatchannels.ingest.importers.detect import (
    EXPORT_JSON,
    EXPORT_TAR,
    MAINDB,
    Importable,
    Refusal,
    detect,
)
from tests.support.skype_files import CHATSYNC, MAC, PLASO, export_document, write_export_tar


def _one(path):
    found = detect(path)
    assert len(found) == 1
    return found[0]


def test_the_three_forms_are_recognised_whatever_their_names(tmp_path):
    renamed_db = tmp_path / "backup.sqlite"
    shutil.copyfile(PLASO, renamed_db)
    tar = write_export_tar(tmp_path / "export.bin")
    bare = tmp_path / "notes.txt"
    bare.write_text(json.dumps(export_document()))
    assert _one(renamed_db) == Importable(renamed_db, MAINDB)
    assert _one(tar) == Importable(tar, EXPORT_TAR)
    assert _one(bare) == Importable(bare, EXPORT_JSON)


def test_an_export_whose_conversations_come_before_user_id_is_still_an_export(tmp_path):
    doc = export_document()
    path = tmp_path / "messages.json"
    path.write_text(json.dumps({"conversations": doc["conversations"], "userId": "8:alice"}))
    assert _one(path) == Importable(path, EXPORT_JSON)


def test_a_profile_folder_gives_its_main_db_and_ignores_the_rest(tmp_path):
    profile = tmp_path / "renesto.testing"
    (profile / "chatsync" / "8e").mkdir(parents=True)
    shutil.copyfile(MAC, profile / "main.db")
    shutil.copyfile(CHATSYNC, profile / "chatsync" / "8e" / CHATSYNC.name)
    (profile / "config.xml").write_text("<config/>")
    sqlite3.connect(profile / "keyval.db").execute("CREATE TABLE kv (k, v)").connection.close()
    assert detect(profile) == [Importable(profile / "main.db", MAINDB)]


def _sqlite(path, *tables):
    db = sqlite3.connect(path)
    for table in tables:
        db.execute(f"CREATE TABLE {table} (nsp_pk TEXT, nsp_data TEXT)")
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: shutil.copyfile(CHATSYNC, p), "chatsync .dat"),
        (lambda p: _sqlite(p, "messagesv12", "conversationsv14"), "Skype 8 database"),
        (lambda p: p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "PDF document"),
        (lambda p: _sqlite(p, "cache"), "SQLite database without a Skype Messages table"),
        (lambda p: p.write_text('{"name": "x", "items": [1, 2]}'), "not a Skype export"),
        (lambda p: p.write_text("[1, 2, 3]"), "JSON array"),
        (lambda p: p.write_text('{"userId": "8:a", "conv'), "not valid JSON"),
        (lambda p: p.write_bytes(bytes(range(255, 0, -1)) * 4), "unknown binary data"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello\n"), "text file"),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00rest"), "gzip"),
    ],
)
def test_anything_else_is_refused_in_one_line_naming_the_file_and_what_it_is(tmp_path, make, says):
    path = tmp_path / "main.db"
    make(path)
    found = _one(path)
    assert isinstance(found, Refusal)
    line = str(found)
    assert line.startswith(f"{path}: not imported: ")
    assert says in line
    assert "\n" not in line


def test_a_tar_without_messages_json_and_an_empty_folder_are_refused(tmp_path):
    tar_path = tmp_path / "photos.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(CHATSYNC, arcname="a.dat")
    assert "tar archive without messages.json (members: a.dat)" in str(_one(tar_path))
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    assert "a folder with no Skype main.db or export in it" in str(_one(empty))
    assert "no such file" in str(_one(tmp_path / "absent.db"))
