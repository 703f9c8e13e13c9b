"""The export reader: each conversation's record, then its messages verbatim with its id, in
file order, with bounded memory; media archived by content; a cut file keeps what was whole."""

from __future__ import annotations

import hashlib
import json
import tarfile

from chatchannels.ingest.importers.detect import EXPORT_JSON, EXPORT_TAR
from chatchannels.ingest.importers.events import FileInfo, export_event
from chatchannels.ingest.importers.export import ExportReader
from chatchannels.rawevents import EventClock, encode_raw_event, validate_raw_event
from tests.support.skype_files import (
    CLOUD_ID,
    DOCID,
    MISSING_DOCID,
    P2P_ID,
    export_document,
    media_files,
    message_count,
    write_export_tar,
)


def _read(path, kind, media):
    reader = ExportReader(path, kind, media)
    return reader, list(reader.items())


def test_every_message_comes_verbatim_after_its_record_and_every_event_is_valid(tmp_path):
    doc = export_document()
    path = write_export_tar(tmp_path / "export.tar", doc)
    reader, items = _read(path, EXPORT_TAR, tmp_path / "media")
    assert reader.errors == []
    assert (reader.account, reader.client) == ("8:alice", "2020-07-06T20:55")
    messages = [i for i in items if i.kind == "message"]
    assert len(messages) == message_count(doc) == 45
    for item in messages:
        conv = doc["conversations"][item.place["conversation"]]
        original = conv["MessageList"][item.place["message"]]
        assert json.dumps(item.message) == json.dumps(original)
        assert item.conversation == {"id": conv["id"]}
    # Each record, whole but for its MessageList, just before its messages.
    records = [(n, i) for n, i in enumerate(items) if i.kind == "conversation"]
    assert [i.place for _, i in records] == [{"conversation": c} for c in range(3)]
    for n, item in records:
        conv = doc["conversations"][item.place["conversation"]]
        assert item.conversation == {k: v for k, v in conv.items() if k != "MessageList"}
        assert items[n + 1].place == {"conversation": item.place["conversation"], "message": 0}
    # Newest first, as the export has it: the reader keeps the file's order.
    assert messages[0].message is not None and messages[0].place == {
        "conversation": 0,
        "message": 0,
    }
    assert messages[0].message["content"].startswith("a type nobody")
    # Float versions stay floats, as written.
    assert b'"version":1594056032575.0' in encode_raw_event(
        {"v": next(r for _, r in records if r.conversation["id"] == "8:bob").conversation}
    ).replace(b" ", b"")
    # The record whose MessageList came first still arrives whole, before its messages.
    assert records[1][1].conversation["threadProperties"]["topic"] == "old p2p"
    p2p = [m for m in messages if m.place["conversation"] == 1]
    assert len(p2p) == 3 and all(m.conversation == {"id": P2P_ID} for m in p2p)
    info = FileInfo("00" * 32, "export.tar", reader.account, reader.client)
    clock = EventClock(utc=1.5, tz_offset_s=0)
    for seq, item in enumerate(items, 1):
        event = export_event(
            item, file=info, host="file-00", session="a" * 32, seq=seq, clock=clock
        )
        validate_raw_event(event)
    types = {m.message["messagetype"] for m in messages}
    assert {
        "RichText",
        "Text",
        "Event/Call",
        "ThreadActivity/AddMember",
        "Notice",
        "PopCard",
        "RichText/Media_GenericFile",
        "RichText/Location",
    } <= types
    assert any(m.conversation["id"] == CLOUD_ID for m in messages)


def test_media_are_archived_by_content_once_and_a_missing_file_says_so(tmp_path):
    path = write_export_tar(tmp_path / "export.tar")
    media_root = tmp_path / "media"
    _, items = _read(path, EXPORT_TAR, media_root)
    media = {i.media["docid"]: i for i in items if i.kind == "media"}
    assert list(media) == [DOCID, MISSING_DOCID]
    content = media_files()[f"media/{DOCID}.1.png"]
    sha = hashlib.sha256(content).hexdigest()
    shared = media[DOCID]
    assert shared.place == {"member": f"media/{DOCID}.json"}
    assert shared.media == {
        "docid": DOCID,
        "meta": json.loads(media_files()[f"media/{DOCID}.json"]),
        "sha256": sha,
        "size": len(content),
        "name": f"{DOCID}.1.png",
    }
    assert (media_root / sha[:2] / sha).read_bytes() == content
    assert media[MISSING_DOCID].media["sha256"] is None
    assert media[MISSING_DOCID].media["name"] is None
    _read(path, EXPORT_TAR, media_root)
    assert [p for p in media_root.rglob("*") if p.is_file()] == [media_root / sha[:2] / sha]


def test_a_bare_messages_json_with_media_beside_it(tmp_path):
    (tmp_path / "media").mkdir()
    for name, data in media_files().items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(export_document()))
    reader, items = _read(path, EXPORT_JSON, tmp_path / "archive")
    assert reader.errors == []
    assert sum(i.kind == "media" for i in items) == 2
    assert reader.bytes_read == path.stat().st_size


def test_user_id_after_the_conversations_is_found_by_a_first_pass(tmp_path):
    doc = export_document()
    path = tmp_path / "messages.json"
    path.write_text(
        json.dumps(
            {
                "conversations": doc["conversations"],
                "exportDate": "2021-01-02T03:04",
                "userId": "8:live:late",
            }
        )
    )
    reader, items = _read(path, EXPORT_JSON, tmp_path / "m")
    assert (reader.account, reader.client) == ("8:live:late", "2021-01-02T03:04")
    assert len(items) == message_count(doc) + len(doc["conversations"])


def test_a_long_message_list_waits_on_disk_not_in_memory_and_keeps_its_order(tmp_path):
    doc = export_document(extra_messages=4500)
    # The record after its messages: all 4503 must wait for it.
    direct = doc["conversations"][2]
    doc["conversations"][2] = {"MessageList": direct.pop("MessageList"), **direct}
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(doc))
    _reader, items = _read(path, EXPORT_JSON, tmp_path / "m")
    mine = [i for i in items if i.kind == "message" and i.place["conversation"] == 2]
    assert [i.place["message"] for i in mine] == list(range(4503))
    assert [i.message for i in mine] == doc["conversations"][2]["MessageList"]
    assert all(i.conversation["id"] == "8:bob" for i in mine)


def test_a_truncated_tar_keeps_what_was_whole_and_names_the_member_and_offset(tmp_path):
    doc = export_document(extra_messages=300)
    whole = write_export_tar(tmp_path / "whole.tar", doc)
    with tarfile.open(whole) as tar:
        member = tar.getmember("messages.json")
    data = whole.read_bytes()
    cut = tmp_path / "cut.tar"
    # Into the third conversation's messages: the first two are whole.
    text = data[member.offset_data : member.offset_data + member.size]
    at = text.index(b'"hi bob 200"')
    cut.write_bytes(data[: member.offset_data + at])
    reader, items = _read(cut, EXPORT_TAR, tmp_path / "m")
    first_two = len(doc["conversations"][0]["MessageList"]) + len(
        doc["conversations"][1]["MessageList"]
    )
    messages = [i for i in items if i.kind == "message"]
    assert first_two < len(messages) < message_count(doc)
    # Newest first: message 0 of the 1:1 chat is "hi bob 302", so 200 is at index 102. The
    # cut record is no item of its own; its messages keep its id.
    cut_off = [i for i in items if i.place["conversation"] == 2]
    assert len(cut_off) == 102 and {i.kind for i in cut_off} == {"message"}
    assert all(i.conversation == {"id": "8:bob"} for i in cut_off)
    assert [i.place for i in items if i.kind == "conversation"] == [
        {"conversation": 0},
        {"conversation": 1},
    ]
    places = [e.place for e in reader.errors]
    assert any(p.startswith("member messages.json, byte ") for p in places), places
    assert any("truncated" in e.problem or "ends early" in e.problem for e in reader.errors)


def test_a_tar_cut_in_its_media_keeps_every_message(tmp_path):
    whole = write_export_tar(tmp_path / "whole.tar")
    with tarfile.open(whole) as tar:
        png = tar.getmember(f"media/{DOCID}.1.png")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: png.offset_data + 100])
    reader, items = _read(cut, EXPORT_TAR, tmp_path / "m")
    assert sum(i.kind == "message" for i in items) == message_count(export_document())
    media = [i for i in items if i.kind == "media"]
    assert [m.media["sha256"] for m in media] == [None]
    assert any(f"media/{DOCID}.1.png" in e.place for e in reader.errors)


def test_json_that_is_not_an_export_inside_is_an_error_with_its_place(tmp_path):
    path = tmp_path / "messages.json"
    path.write_text(json.dumps({"userId": "8:a", "exportDate": "x", "conversations": {"a": 1}}))
    reader, items = _read(path, EXPORT_JSON, tmp_path / "m")
    assert items == []
    (error,) = reader.errors
    assert error.place.startswith("messages.json, byte ")
    assert "not a Skype export: conversations is a JSON map" in error.problem
    doc = export_document()
    doc["conversations"][0]["MessageList"].insert(1, "not a message")
    path.write_text(json.dumps(doc))
    reader, items = _read(path, EXPORT_JSON, tmp_path / "m")
    assert sum(i.kind == "message" for i in items) == message_count(export_document())
    assert [e.place for e in reader.errors] == ["conversations[0].MessageList[1]"]


def test_records_the_processor_will_refuse_are_still_sent_verbatim(tmp_path):
    # The importer judges files, not records: an id that does not decode and a time in the
    # year 2404 go on as written, for the processor to dead-letter with their place.
    doc = export_document()
    conversation = doc["conversations"][1]
    conversation["id"] = "19:!!not base64!!@p2p.thread.skype"
    conversation["MessageList"][0]["originalarrivaltime"] = "2404-12-30T00:00:00.000Z"
    conversation["MessageList"][1]["id"] = "not-a-number"
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(doc))
    reader, items = _read(path, EXPORT_JSON, tmp_path / "m")
    assert reader.errors == []
    mine = [i for i in items if i.place["conversation"] == 1]
    assert mine[0].kind == "conversation" and mine[0].conversation["id"] == conversation["id"]
    assert [i.message for i in mine[1:]] == conversation["MessageList"]
    assert all(i.conversation == {"id": conversation["id"]} for i in mine[1:])
