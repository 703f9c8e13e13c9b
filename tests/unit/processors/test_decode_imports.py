"""Imported records (`skype-maindb`, `skype-export`) -> the observations the agent's events
give, and a DecodeError naming the place in the file for every bad one."""

from __future__ import annotations

import base64
import calendar
import copy
import datetime as dt
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.chatnames import (
    ChatNameError,
    bare_handle,
    export_chat_name,
    legacy_chat_name,
    p2p_thread_id,
)
from chatchannels.processors.decode import DecodeError, decode_event
from chatchannels.processors.decode_export import iso_seconds
from chatchannels.processors.observations import MessageObservation, ObjectObservation
from chatchannels.processors.rows import chat_row
from chatchannels.rawevents import validate_raw_event
from tests.support.paths import DATA
from tests.support.processor_events import Host
from tests.support.skype_files import export_document

SKYPE_FILES = DATA / "skype"
PLASO = SKYPE_FILES / "plaso-skype-6.6-main.db"
MAC = SKYPE_FILES / "skypeexportswift-mac-6.19-main.db"
SHA = "ab" * 32
T0 = 1_600_000_000
CLOCK = T0 + 86_400.25
P2P_CHAT = "#travis.r.cory/$c29c59762134e3ef"
P2P_ID = "19:I3RyYXZpcy5yLmNvcnkvJGMyOWM1OTc2MjEzNGUzZWY=@p2p.thread.skype"
THREAD = "19:617707e9e67449d3a497f58da54c5e8c@thread.skype"


# --- building events -------------------------------------------------------------------


def _event(source: str, payload: dict[str, Any], seq: int = 1) -> dict[str, Any]:
    event = {
        "schema": "chatchannels.raw.v1",
        "host": "file-0123456789abcdef",
        "session": "0" * 31 + "2",
        "seq": seq,
        "clock": {"utc": CLOCK, "tz_offset_s": 7200},
        "source": source,
        "payload": payload,
    }
    validate_raw_event(event)
    return event


def maindb_event(conversation: Any = "absent", **row: Any) -> dict[str, Any]:
    """A Messages row with defaults for what a said message has; `row` overrides. The
    conversation key is there only when given (the importer sends it where it is needed)."""
    full: dict[str, Any] = {
        "id": 293,
        "convo_id": 7,
        "chatname": "#alice/$bob;ea753190f0a3e49b",
        "author": "bob",
        "from_dispname": "Bob",
        "timestamp": T0,
        "type": 61,
        "chatmsg_type": 3,
        "chatmsg_status": 4,
        "body_xml": "hi &amp; bye",
        "identities": None,
        "edited_by": None,
        "edited_timestamp": None,
        "remote_id": 1346389915,
        "param_key": None,
        "leavereason": None,
        "guid": {"hex": "00ff"},
    }
    full.update(row)
    file = {"sha256": SHA, "name": "main.db", "account": "alice", "client": "0/6.6"}
    payload = {
        "file": file,
        "place": {"table": "Messages", "rowid": full["id"]},
        "row": full,
    }
    if conversation != "absent":
        payload["conversation"] = conversation
    return _event("skype-maindb", payload)


def record_event(table: str, row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Chats or Conversations row of alice's main.db as its own event."""
    file = {"sha256": SHA, "name": "main.db", "account": "alice", "client": "0/6.6"}
    payload = {"file": file, "place": {"table": table, "rowid": 4}, "row": row, **extra}
    return _event("skype-maindb", payload)


def export_event(
    content: str = "hi &amp; bye",
    *,
    messagetype: str = "RichText",
    conversation_id: str = "8:live:bob",
    place: tuple[int, int] = (3, 17),
    **message: Any,
) -> dict[str, Any]:
    """A MessageList entry with defaults for a said message; `message` overrides. The event
    carries the conversation's id only, as the importer sends it."""
    msg: dict[str, Any] = {
        "id": "1600000000374",
        "displayName": "Bob",
        "originalarrivaltime": "2020-09-13T12:26:40.374Z",
        "messagetype": messagetype,
        "version": 1600000000374.0,
        "content": content,
        "conversationid": conversation_id,
        "from": "8:live:bob",
        "properties": None,
        "amsreferences": None,
    }
    msg.update(message)
    payload = {
        "file": {"sha256": SHA, "name": "export.tar", "account": "8:live:alice", "client": None},
        "place": {"conversation": place[0], "message": place[1]},
        "kind": "message",
        "conversation": {"id": conversation_id},
        "message": msg,
    }
    return _event("skype-export", payload)


def conversation_event(record: dict[str, Any], index: int = 3) -> dict[str, Any]:
    """An export conversation object (without MessageList) as its own event."""
    payload = {
        "file": {"sha256": SHA, "name": "export.tar", "account": "8:live:alice", "client": None},
        "place": {"conversation": index},
        "kind": "conversation",
        "conversation": record,
    }
    return _event("skype-export", payload)


def _obs(event: dict[str, Any]) -> MessageObservation:
    result = decode_event(event)
    assert isinstance(result, MessageObservation), result
    return result


def _live(local_id: str, msg_type: str, body: str, users: str = "") -> MessageObservation:
    """What the agent reads of a message on a desktop (USERS too, as the agent GETs it)."""
    event, _ = Host("alice-pc", tz_offset_s=0).read(
        local_id, posted=T0, body=body, msg_type=msg_type
    )
    event["payload"]["lines"].insert(-1, f"CHATMESSAGE {local_id} USERS {users}")
    return _obs(event)


def _error(event: dict[str, Any]) -> DecodeError:
    result = decode_event(event)
    assert isinstance(result, DecodeError), result
    return result


# --- the real main.db files -------------------------------------------------------------


def _plain(value: Any) -> Any:
    return {"hex": value.hex()} if isinstance(value, bytes) else value


def real_events(path: Path) -> list[dict[str, Any]]:
    """One event per Conversations, Chats and Messages row of a real file, built as the
    schema says (read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    db.row_factory = sqlite3.Row
    try:
        account = db.execute("SELECT skypename FROM Accounts").fetchone()[0]
        client = db.execute("SELECT ClientVersion FROM AppSchemaVersion").fetchone()[0]

        def one(sql: str, arg: Any) -> dict[str, Any] | None:
            found = db.execute(sql, (arg,)).fetchone()
            return None if found is None else {k: _plain(v) for k, v in dict(found).items()}

        events = []
        for table, name, convo in (
            ("Conversations", None, None),
            ("Chats", "name", "conv_dbid"),
            ("Messages", "chatname", "convo_id"),
        ):
            rows = db.execute(f"SELECT rowid AS _rowid, * FROM {table} ORDER BY rowid")
            for found in rows.fetchall():
                row = {k: _plain(v) for k, v in dict(found).items() if k != "_rowid"}
                payload = {
                    "file": {
                        "sha256": SHA,
                        "name": path.name,
                        "account": account,
                        "client": client,
                    },
                    "place": {"table": table, "rowid": found["_rowid"]},
                    "row": row,
                }
                if name is not None and (not row[name] or "/$*T;" in row[name]):
                    payload["conversation"] = one(
                        "SELECT * FROM Conversations WHERE id = ?", row[convo]
                    )
                events.append(_event("skype-maindb", payload, len(events) + 1))
        return events
    finally:
        db.close()


def _messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["payload"]["place"]["table"] == "Messages"]


def test_plaso_file_every_row_accounted_for() -> None:
    events = _messages(real_events(PLASO))
    results = {e["payload"]["place"]["rowid"]: decode_event(e) for e in events}
    assert len(results) == 15
    raw_types = Counter(e["payload"]["row"]["type"] for e in events)
    assert raw_types == {61: 12, 50: 1, 51: 1, 64: 1}
    errors = {rowid: r for rowid, r in results.items() if isinstance(r, DecodeError)}
    # Row 61 (an SMS) was hand-edited to 13727168620, the year 2404.
    assert {rowid: (e.kind, e.where, e.reason) for rowid, e in errors.items()} == {
        61: ("value", "Messages rowid 61: timestamp", "impossible timestamp 13727168620")
    }
    decoded = {rowid: r for rowid, r in results.items() if isinstance(r, MessageObservation)}
    assert Counter(o.type for o in decoded.values()) == {
        "SAID": 12,
        "CONTACTREQUEST": 1,
        "CONTACTACCEPTED": 1,
    }
    # Row 62, the other hand-edited row (guid NULL, invented pk_id, a chat of its own
    # with no Conversations row), holds nothing this decoder reads wrongly: it decodes.
    row62 = decoded[62]
    assert (row62.chat, row62.author, row62.timestamp, row62.body) == (
        "#european.bbq.competitor/$gen.beringer;b1a38279a3452341",
        "european.bbq.competitor",
        1382887759,
        "He is our new employee",
    )
    request = decoded[47]
    assert (request.type, request.users, request.status) == (
        "CONTACTREQUEST",
        ("european.bbq.competitor",),
        "SENT",
    )
    assert request.body.startswith("Hi European Competitor, I&apos;d like")
    assert decoded[51].users == ("gen.beringer",) and decoded[51].body == ""
    first = decoded[39]
    assert first == MessageObservation(
        host="file-0123456789abcdef",
        seq=8,
        local_id="39",
        reason="import",
        captured_utc=CLOCK,
        tz_offset_s=0,
        chat="#gen.beringer/$european.bbq.competitor;72abdaf9cf5da36",
        author="gen.beringer",
        author_name="Gen Beringer",
        type="SAID",
        status="SENDING",
        timestamp=1375219588,
        body="yt?",
        edited_timestamp=0,
        edited_by=None,
        users=(),
        body_format="skype-xml",
        xid="#gen.beringer/$european.bbq.competitor;72abdaf9cf5da36|gen.beringer|304407098|61",
    )
    assert len({o.xid for o in decoded.values()}) == 14


def test_mac_file_every_row_accounted_for() -> None:
    events = _messages(real_events(MAC))
    results = [decode_event(e) for e in events]
    assert all(isinstance(r, MessageObservation) for r in results), results
    assert Counter(r.type for r in results) == {"SAID": 6, "CONTACTREQUEST": 1}
    assert Counter(e["payload"]["row"]["type"] for e in events) == {61: 6, 50: 1}
    # The README's "3 conversations" are the file's Conversations rows; every message is in
    # one of them (gohanuskas), under three chat names.
    assert {e["payload"]["row"]["convo_id"] for e in events} == {35}
    assert len({r.chat for r in results}) == 3
    smileys = next(r for r in results if r.local_id == "53")
    assert smileys.body == '<ss type="poolparty">(poolparty)</ss>'
    assert {r.author for r in results} == {"renesto.testing", "gohanuskas"}
    assert {r.status for r in results} == {"SENT", "READ"}


# --- main.db mapping --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_type", "param_key", "expected"),
    [
        (61, None, "SAID"),
        (60, None, "EMOTED"),
        (2, 3644, "SETTOPIC"),
        (2, 3658, "SETPICTURE"),
        (2, 3652, "SETGUIDELINES"),
        (2, 3640, "OTHER:maindb-2/3640"),
        (2, None, "OTHER:maindb-2/None"),
        (4, None, "CREATEDCHATWITH"),
        (10, None, "ADDEDMEMBERS"),
        (11, None, "JOINEDASAPPLICANT"),
        (12, None, "KICKED"),
        (13, None, "LEFT"),
        (21, None, "SETROLE"),
        (30, None, "CALL"),
        (39, None, "CALL"),
        (50, None, "CONTACTREQUEST"),
        (51, None, "CONTACTACCEPTED"),
        (53, None, "BLOCKED"),
        (63, None, "POSTEDCONTACTS"),
        (64, None, "SMS"),
        (68, None, "FILES"),
        (110, None, "BIRTHDAY"),
        (201, None, "MEDIA"),
        (253, None, "MEDIA"),
        (65, None, "OTHER:maindb-65"),
        (100, None, "OTHER:maindb-100"),
        (9999, None, "OTHER:maindb-9999"),
    ],
)
def test_maindb_types(raw_type: int, param_key: int | None, expected: str) -> None:
    obs = _obs(maindb_event(type=raw_type, param_key=param_key))
    assert obs.type == expected
    assert obs.xid == f"#alice/$bob;ea753190f0a3e49b|bob|1346389915|{raw_type}"


def test_maindb_emote_matches_the_live_emote() -> None:
    # The Desktop API (and the emulator) give TYPE EMOTED, BODY "waves" for `/me waves`;
    # main.db stores the same words in body_xml of a type 60 row.
    live_obs = _live("5", "EMOTED", "waves")
    obs = _obs(maindb_event(type=60, body_xml="waves"))
    assert (obs.type, obs.body, obs.users) == (live_obs.type, live_obs.body, live_obs.users)
    assert (obs.chat, obs.author, obs.timestamp) == (
        live_obs.chat,
        live_obs.author,
        live_obs.timestamp,
    )


def test_maindb_system_events_name_their_users() -> None:
    added = _obs(maindb_event(type=10, body_xml=None, identities="carol 8:dave"))
    assert (added.type, added.body, added.users) == ("ADDEDMEMBERS", "", ("carol", "dave"))
    left = _obs(maindb_event(type=13, author="carol", identities="carol", leavereason=6))
    assert (left.type, left.body, left.users) == ("LEFT", "", ())
    kicked = _obs(maindb_event(type=12, identities="carol", body_xml=""))
    assert (kicked.type, kicked.users) == ("KICKED", ("carol",))
    topic = _obs(maindb_event(type=2, param_key=3644, body_xml="plans &amp; dates"))
    assert (topic.type, topic.body, topic.users) == ("SETTOPIC", "plans &amp; dates", ())
    said = _obs(maindb_event(identities="stray"))
    assert said.users == ()
    call = _obs(maindb_event(type=30, body_xml='<partlist type="started"/>', identities="a b"))
    assert (call.type, call.body, call.users) == ("CALL", '<partlist type="started"/>', ("a", "b"))


def test_maindb_edit_and_deletion() -> None:
    edited = _obs(maindb_event(edited_by="bob", edited_timestamp=T0 + 60, body_xml="fixed"))
    assert (edited.body, edited.edited_timestamp, edited.edited_by) == ("fixed", T0 + 60, "bob")
    deleted = _obs(maindb_event(edited_by="bob", edited_timestamp=T0 + 90, body_xml=""))
    assert (deleted.body, deleted.edited_timestamp) == ("", T0 + 90)
    plain = _obs(maindb_event())
    assert (plain.edited_timestamp, plain.edited_by) == (0, None)


def test_maindb_status_and_no_remote_id() -> None:
    statuses = [_obs(maindb_event(chatmsg_status=s)).status for s in (1, 2, 3, 4, 7, None)]
    assert statuses == ["SENDING", "SENT", "RECEIVED", "READ", None, None]
    assert _obs(maindb_event(remote_id=None)).xid is None


def test_maindb_chat_from_the_conversation() -> None:
    conversation = {"id": 7, "identity": "#alice/$*T;7", "alt_identity": THREAD}
    # Skyperious leaves chatname NULL; a group's creator names it by a local placeholder.
    assert _obs(maindb_event(conversation, chatname=None)).chat == THREAD
    assert _obs(maindb_event(conversation, chatname="#alice/$*T;7")).chat == THREAD
    dialog = {"id": 7, "identity": "bob", "alt_identity": None}
    assert _obs(maindb_event(dialog, chatname="")).chat == "dialog:alice;bob"
    error = _error(maindb_event(None, chatname=None))
    assert (error.kind, error.where) == ("value", "Messages rowid 293: chatname")
    error = _error(maindb_event(chatname=None))
    assert (error.kind, error.where) == ("value", "Messages rowid 293: chatname")


def _chat(event: dict[str, Any]) -> tuple[str, dict[str, str]]:
    result = decode_event(event)
    assert isinstance(result, ObjectObservation), result
    assert (result.obj, result.reason, result.captured_utc) == ("CHAT", "import", CLOCK)
    assert all(at == CLOCK for _, _, at in result.properties)
    return result.obj_id, {name: value for name, value, _ in result.properties}


def test_real_chats_and_conversations_rows_are_chat_records() -> None:
    """Each Chats row names a chat its messages decode to (not every chat has a row), with
    the Desktop API's CHAT properties; a dialog's Conversations row names the pair's chat."""
    records = {}
    for path, counts in (
        (PLASO, {"Conversations": 2, "Chats": 5}),
        (MAC, {"Conversations": 3, "Chats": 1}),
    ):
        events = real_events(path)
        tables = Counter(e["payload"]["place"]["table"] for e in events)
        assert tables == {**counts, "Messages": 15 if path == PLASO else 7}
        decoded = [decode_event(e) for e in _messages(events)]
        message_chats = {o.chat for o in decoded if isinstance(o, MessageObservation)}
        chats = [_chat(e) for e in events if e["payload"]["place"]["table"] == "Chats"]
        assert {chat for chat, _ in chats} <= message_chats
        records[path] = dict(
            _chat(e) for e in events if e["payload"]["place"]["table"] != "Messages"
        )
    assert records[MAC] == {
        "dialog:echo123;renesto.testing": {
            "FRIENDLYNAME": "Echo / Sound Test Service",
            "TIMESTAMP": "1425314391",
        },
        "dialog:gohanuskas;renesto.testing": {
            "FRIENDLYNAME": "Aleksandar Kovacevic",
            "TIMESTAMP": "1425314422",
        },
        "dialog:+93123432123;renesto.testing": {
            "FRIENDLYNAME": "test phone",
            "TIMESTAMP": "1425314473",
        },
        "#renesto.testing/$gohanuskas;2ec4c10a325fb41": {
            "MEMBERS": "gohanuskas renesto.testing",
            "FRIENDLYNAME": "Aleksandar Kovacevic",
            "TIMESTAMP": "1425314481",
        },
    }
    plaso = records[PLASO]
    assert len(plaso) == 7
    assert plaso["#european.bbq.competitor/$gen.beringer;b1a38279a3452341"] == {
        "MEMBERS": "european.bbq.competitor gen.beringer echo123",
        "FRIENDLYNAME": "European Competitor, Echo123",
        "TIMESTAMP": "1382887759",
    }


def test_the_store_reads_topic_members_and_creation_from_the_records() -> None:
    """rows.chat_row, which makes the store's chats rows, on a real file's records."""
    objects = [decode_event(e) for e in real_events(PLASO)]
    chat = "#european.bbq.competitor/$gen.beringer;b1a38279a3452341"
    mine = [o for o in objects if isinstance(o, ObjectObservation) and o.obj_id == chat]
    row = chat_row(mine, {})
    assert row.members == ("echo123", "european.bbq.competitor", "gen.beringer")
    assert row.created_utc == dt.datetime(2013, 10, 27, 15, 29, 19, tzinfo=dt.UTC)
    group = conversation_event({"id": THREAD, "threadProperties": {"topic": "Falcon"}})
    assert chat_row([decode_event(group)], {}).topic == "Falcon"


def test_maindb_chats_row_is_the_chat_record() -> None:
    row = {
        "id": 4,
        "name": "#alice/$bob;ea753190f0a3e49b",
        "topic": "Lunch  plans",
        "participants": "alice  bob carol",
        "activemembers": "alice bob",
        "friendlyname": "Lunch plans",
        "timestamp": T0,
        "conv_dbid": 7,
    }
    assert _chat(record_event("Chats", row)) == (
        "#alice/$bob;ea753190f0a3e49b",
        {
            "TOPIC": "Lunch  plans",
            "MEMBERS": "alice bob carol",
            "FRIENDLYNAME": "Lunch plans",
            "TIMESTAMP": str(T0),
        },
    )
    # A client that left participants empty: the active members are who is known.
    _, props = _chat(record_event("Chats", {**row, "participants": "", "timestamp": 0}))
    assert props["MEMBERS"] == "alice bob" and "TIMESTAMP" not in props
    # A creator's placeholder: the conversation, sent with the row, names the thread.
    conversation = {"id": 7, "identity": "#alice/$*T;7", "alt_identity": THREAD}
    placeholder = {**row, "name": "#alice/$*T;7"}
    assert _chat(record_event("Chats", placeholder, conversation=conversation))[0] == THREAD
    error = _error(record_event("Chats", {**row, "timestamp": 13727168620}))
    assert (error.where, error.reason) == (
        "Chats rowid 4: timestamp",
        "impossible timestamp 13727168620",
    )


def test_maindb_conversations_row_is_the_chat_record() -> None:
    dialog = {
        "id": 7,
        "type": 1,
        "identity": "bob",
        "alt_identity": None,
        "displayname": "Bob Smith",
        "meta_topic": None,
        "creation_timestamp": T0,
    }
    assert _chat(record_event("Conversations", dialog)) == (
        "dialog:alice;bob",
        {"FRIENDLYNAME": "Bob Smith", "TIMESTAMP": str(T0)},
    )
    group = {**dialog, "type": 2, "identity": "#alice/$*T;7", "alt_identity": THREAD}
    assert _chat(record_event("Conversations", {**group, "meta_topic": "Falcon"})) == (
        THREAD,
        {"TOPIC": "Falcon", "FRIENDLYNAME": "Bob Smith", "TIMESTAMP": str(T0)},
    )
    legacy = {**group, "identity": P2P_CHAT, "alt_identity": None, "displayname": "Old group"}
    assert _chat(record_event("Conversations", legacy)) == (
        P2P_CHAT,
        {"TOPIC": "Old group", "FRIENDLYNAME": "Old group", "TIMESTAMP": str(T0)},
    )
    error = _error(record_event("Conversations", {**dialog, "identity": None}))
    assert (error.where, error.reason) == ("Conversations rowid 4: identity", "no identity")


def test_export_conversation_is_the_chat_record() -> None:
    members = json.dumps(["8:live:alice", {"id": "8:bob", "role": "User"}, "28:concierge"])
    group = {
        "id": THREAD,
        "displayName": "Falcon (old name)",
        "version": 1600000000375.0,
        "properties": {"conversationblocked": False},
        "threadProperties": {"membercount": 3, "members": members, "topic": "Falcon"},
    }
    assert _chat(conversation_event(group)) == (
        THREAD,
        {
            "TOPIC": "Falcon",
            "MEMBERS": "live:alice bob 28:concierge",
            "FRIENDLYNAME": "Falcon (old name)",
        },
    )
    untitled = {**group, "threadProperties": {"members": None, "topic": ""}}
    assert _chat(conversation_event(untitled))[1] == {
        "TOPIC": "Falcon (old name)",
        "FRIENDLYNAME": "Falcon (old name)",
    }
    dialog = {**group, "id": "8:live:bob", "displayName": "Bob", "threadProperties": None}
    assert _chat(conversation_event(dialog)) == (
        "dialog:live:alice;live:bob",
        {"FRIENDLYNAME": "Bob"},
    )
    assert _chat(conversation_event({**group, "id": P2P_ID}))[0] == P2P_CHAT
    for bad, where, reason in (
        ({"id": None}, "conversations[3]: id", "no conversation id"),
        ({"id": "19:not*base64@p2p.thread.skype"}, "conversations[3]: id", None),
        (
            {"threadProperties": {"members": "[8:x"}},
            "conversations[3]: threadProperties.members",
            None,
        ),
        (
            {"threadProperties": {"members": "[{}]"}},
            "conversations[3]: threadProperties.members",
            None,
        ),
        ({"threadProperties": "x"}, "conversations[3]: threadProperties", "not an object"),
    ):
        error = _error(conversation_event({**group, **bad}))
        assert (error.kind, error.where) == ("value", where), error
        assert reason is None or error.reason == reason


@pytest.mark.parametrize(
    ("row", "where", "reason"),
    [
        ({"timestamp": 13727168620}, "timestamp", "impossible timestamp 13727168620"),
        ({"timestamp": None}, "timestamp", "no timestamp"),
        ({"timestamp": "1600000000"}, "timestamp", "not an integer: '1600000000'"),
        ({"timestamp": 1.6e9 + 0.5}, "timestamp", "not an integer: '1600000000.5'"),
        ({"edited_timestamp": 12}, "edited_timestamp", "impossible timestamp 12"),
        ({"author": ""}, "author", "empty author"),
        ({"author": None}, "author", "empty author"),
        ({"author": 5}, "author", "not text: '5'"),
        ({"type": None}, "type", "no type"),
        ({"body_xml": {"hex": "00"}}, "body_xml", "not text: \"{'hex': '00'}\""),
    ],
)
def test_maindb_bad_values_name_row_and_column(row: dict, where: str, reason: str) -> None:
    error = _error(maindb_event(**row))
    assert (error.kind, error.where, error.reason) == (
        "value",
        f"Messages rowid 293: {where}",
        reason,
    )
    assert error.host == "file-0123456789abcdef"


# --- export mapping ---------------------------------------------------------------------


def test_export_message_is_the_said_message() -> None:
    obs = _obs(export_event())
    assert obs == MessageObservation(
        host="file-0123456789abcdef",
        seq=1,
        local_id="8:live:bob|1600000000374",
        reason="import",
        captured_utc=CLOCK,
        tz_offset_s=0,
        chat="dialog:live:alice;live:bob",
        author="live:bob",
        author_name="Bob",
        type="SAID",
        status=None,
        timestamp=T0,
        body="hi &amp; bye",
        edited_timestamp=0,
        edited_by=None,
        users=(),
        body_format="skype-xml",
        xid=None,
    )


def test_export_chats_are_named_as_maindb_names_them() -> None:
    assert _obs(export_event(conversation_id=P2P_ID)).chat == P2P_CHAT
    assert _obs(export_event(conversation_id=THREAD)).chat == THREAD
    assert (
        _obs(export_event(conversation_id="28:concierge")).chat == "dialog:28:concierge;live:alice"
    )
    assert _obs(export_event(conversation_id="48:calllogs")).chat == "48:calllogs"
    assert _obs(export_event(**{"from": "bob"})).author == "bob"


def test_both_sides_of_a_cloud_one_to_one_chat_are_one_chat() -> None:
    # Alice's main.db names the chat "Bob", Bob's names it "alice", his export "8:alice":
    # one chat, whichever file it comes from.
    dialog = {"id": 7, "identity": "Bob", "alt_identity": None}
    alices = maindb_event(dialog, chatname="Bob")
    bobs = maindb_event(dialog, chatname="alice")
    bobs["payload"]["file"]["account"] = "bob"
    export = export_event(conversation_id="8:alice")
    export["payload"]["file"]["account"] = "8:bob"
    assert {_obs(e).chat for e in (alices, bobs, export)} == {"dialog:alice;bob"}


@pytest.mark.parametrize(
    ("messagetype", "expected", "body_format"),
    [
        ("RichText", "SAID", "skype-xml"),
        ("Text", "SAID", "text"),
        ("RichText/UriObject", "MEDIA", "skype-xml"),
        ("RichText/Media_GenericFile", "MEDIA", "skype-xml"),
        ("RichText/Media_Video", "MEDIA", "skype-xml"),
        ("RichText/Media_AudioMsg", "MEDIA", "skype-xml"),
        ("RichText/Media_Album", "MEDIA", "skype-xml"),
        ("RichText/Media_CallRecording", "MEDIA", "skype-xml"),
        ("RichText/Media_FlikMsg", "MEDIA", "skype-xml"),
        ("RichText/Media_Card", "CARD", "skype-xml"),
        ("RichText/Files", "FILES", "skype-xml"),
        ("RichText/Contacts", "POSTEDCONTACTS", "skype-xml"),
        ("RichText/Location", "LOCATION", "skype-xml"),
        ("RichText/ScheduledCallInvite", "OTHER:export-RichText/ScheduledCallInvite", "skype-xml"),
        ("Event/Call", "CALL", "skype-xml"),
        ("Event/BingBot", "OTHER:export-Event/BingBot", "skype-xml"),
        ("Poll", "POLL", "skype-xml"),
        ("Notice", "CARD", "text"),
        ("PopCard", "CARD", "text"),
        ("InviteFreeRelationshipChanged/Initialized", "CONTACTACCEPTED", "skype-xml"),
        ("EndToEndEncryption/EncryptedText", "ENCRYPTED", "skype-xml"),
        ("EndToEndEncryption/EncryptedMedia", "ENCRYPTED", "skype-xml"),
        ("TranslationSettings", "OTHER:export-TranslationSettings", "skype-xml"),
        ("RichText/Html", "OTHER:export-RichText/Html", "skype-xml"),
    ],
)
def test_export_types(messagetype: str, expected: str, body_format: str) -> None:
    content = "[]" if messagetype in ("Notice", "PopCard") else "x &lt; y"
    obs = _obs(export_event(content, messagetype=messagetype))
    assert (obs.type, obs.body, obs.body_format) == (expected, content, body_format)


def _activity(tag: str, initiator: str, *inner: str) -> str:
    return f"<{tag}><eventtime>1600000000374</eventtime><initiator>{initiator}</initiator>" + (
        "".join(inner) + f"</{tag}>"
    )


def test_export_thread_activity() -> None:
    def activity(messagetype: str, content: str) -> MessageObservation:
        return _obs(
            export_event(
                content, messagetype=messagetype, conversation_id=THREAD, **{"from": THREAD}
            )
        )

    added = activity(
        "ThreadActivity/AddMember",
        _activity("addmember", "8:alice", "<target>8:carol</target><target>8:live:dave</target>"),
    )
    assert (added.type, added.author, added.body, added.users) == (
        "ADDEDMEMBERS",
        "alice",
        "",
        ("carol", "live:dave"),
    )
    left = activity(
        "ThreadActivity/DeleteMember",
        _activity("deletemember", "8:carol", "<target>8:carol</target>"),
    )
    assert (left.type, left.author, left.users) == ("LEFT", "carol", ())
    kicked = activity(
        "ThreadActivity/DeleteMember",
        _activity("deletemember", "8:alice", "<target>8:carol</target>"),
    )
    assert (kicked.type, kicked.author, kicked.users) == ("KICKED", "alice", ("carol",))
    topic = activity(
        "ThreadActivity/TopicUpdate",
        _activity("topicupdate", "8:alice", "<value>a &amp; b</value>"),
    )
    assert (topic.type, topic.author, topic.body, topic.users) == (
        "SETTOPIC",
        "alice",
        "a &amp; b",
        (),
    )
    picture = activity(
        "ThreadActivity/PictureUpdate",
        _activity("pictureupdate", "8:alice", "<value>URL@https://api.asm.skype.com/v1/x</value>"),
    )
    assert (picture.type, picture.author, picture.body) == (
        "SETPICTURE",
        "alice",
        "URL@https://api.asm.skype.com/v1/x",
    )
    role = activity(
        "ThreadActivity/RoleUpdate",
        _activity("roleupdate", "8:alice", "<target><id>8:carol</id><role>admin</role></target>"),
    )
    assert (role.type, role.users, role.body) == ("SETROLE", ("carol",), "")
    history = activity(
        "ThreadActivity/HistoryDisclosedUpdate",
        _activity("historydisclosedupdate", "8:alice", "<value>true</value>"),
    )
    assert (history.type, history.body) == ("SETOPTIONS", "true")
    handshake = activity(
        "ThreadActivity/E2EEHandshakeInvite", _activity("e2eehandshakeinvite", "8:alice")
    )
    assert handshake.type == "OTHER:export-ThreadActivity/E2EEHandshakeInvite"


def test_export_thread_activity_matches_live_added_members() -> None:
    live_obs = _live("9", "ADDEDMEMBERS", "", users="carol")
    content = _activity("addmember", "8:bob", "<target>8:carol</target>")
    obs = _obs(export_event(content, messagetype="ThreadActivity/AddMember", **{"from": THREAD}))
    assert (obs.type, obs.author, obs.body, obs.users) == (
        live_obs.type,
        live_obs.author,
        live_obs.body,
        live_obs.users,
    )


_EDITED = 'fixed<e_m ts="1600000000" ts_ms="1600000000374" a="live:bob" t="61"/>'


def test_export_edit_and_its_server_copy_are_one_host_message() -> None:
    edited = _obs(export_event(_EDITED, properties={"edittime": "1600000090123"}))
    copy_ = _obs(
        export_event(
            _EDITED,
            id="1600000090150",
            originalarrivaltime="2020-09-13T12:28:10.15Z",
            properties={"isserversidegenerated": "True"},
        )
    )
    assert edited.local_id == copy_.local_id == "8:live:bob|1600000000374"
    assert (edited.timestamp, copy_.timestamp) == (T0, T0)
    assert (edited.edited_timestamp, edited.edited_by) == (T0 + 90, "live:bob")
    assert (copy_.edited_timestamp, copy_.edited_by) == (T0 + 90, "live:bob")
    assert edited.body == copy_.body == _EDITED


def test_export_deletion_is_a_tombstone() -> None:
    marker = '<e_m ts="1600000000" ts_ms="1600000000374" a="live:carol" t="61"/>'
    deleted = _obs(export_event(marker, properties={"deletetime": 1600000120999}))
    assert (deleted.body, deleted.edited_timestamp, deleted.edited_by) == (
        "",
        T0 + 120,
        "live:carol",
    )
    bare = _obs(export_event("", properties={"deletetime": "1600000120999"}))
    assert (bare.local_id, bare.body, bare.edited_by) == (
        "8:live:bob|1600000000374",
        "",
        "live:bob",
    )


def test_blank_server_generated_entry_places_nothing() -> None:
    obs = _obs(export_event("", id="1600000500000", properties={"isserversidegenerated": True}))
    assert obs.local_id == "8:live:bob|1600000500000"
    assert (obs.chat, obs.author, obs.timestamp, obs.body, obs.type) == (None,) * 5


def test_export_times_of_any_precision() -> None:
    for text in ("2020-09-13T12:26:40Z", "2020-09-13T12:26:40.5Z", "2020-09-13T12:26:40.999999Z"):
        assert _obs(export_event(originalarrivaltime=text)).timestamp == T0


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        (
            {"originalarrivaltime": "2404-01-01T00:00:00Z"},
            "conversations[3].MessageList[17]: originalarrivaltime",
            "impossible timestamp 13695696000",
        ),
        (
            {"originalarrivaltime": "yesterday"},
            "conversations[3].MessageList[17]: originalarrivaltime",
            "not an ISO time: 'yesterday'",
        ),
        (
            {"originalarrivaltime": None},
            "conversations[3].MessageList[17]: originalarrivaltime",
            "missing",
        ),
        (
            {"properties": {"edittime": "soon"}},
            "conversations[3].MessageList[17]: properties.edittime",
            "not a ms time: 'soon'",
        ),
        (
            {"properties": {"deletetime": 12.5}},
            "conversations[3].MessageList[17]: properties.deletetime",
            "not a ms time: '12.5'",
        ),
        (
            {"properties": {"deletetime": "0"}},
            "conversations[3].MessageList[17]: properties.deletetime",
            "impossible timestamp 0",
        ),
        (
            {"properties": "edited"},
            "conversations[3].MessageList[17]: properties",
            "not an object",
        ),
        ({"from": ""}, "conversations[3].MessageList[17]: from", "empty author"),
        ({"messagetype": None}, "conversations[3].MessageList[17]: messagetype", "no messagetype"),
        ({"content": 5}, "conversations[3].MessageList[17]: content", "not text: '5'"),
    ],
)
def test_export_bad_values_name_their_place(change: dict, where: str, reason: str) -> None:
    event = export_event()
    event["payload"]["message"].update(change)
    error = _error(event)
    assert (error.kind, error.where, error.reason) == ("value", where, reason)


def test_export_id_that_does_not_decode() -> None:
    error = _error(export_event(conversation_id="19:not*base64@p2p.thread.skype"))
    assert (error.kind, error.where) == ("value", "conversations[3]: id")
    assert "not base64" in error.reason
    wrong = p2p_thread_id(P2P_CHAT).replace("I3", "QU", 1)
    error = _error(export_event(conversation_id=wrong))
    assert "not a chat name" in error.reason
    error = _error(export_event("<addmember><initiator>", messagetype="ThreadActivity/AddMember"))
    assert (error.where, error.reason[:7]) == (
        "conversations[3].MessageList[17]: content",
        "not XML",
    )


def test_export_media_is_an_object_observation() -> None:
    docid = "0-weu-d3-" + "0123456789abcdef" * 2
    payload = {
        "file": {"sha256": SHA, "name": "export.tar", "account": "8:live:alice", "client": None},
        "place": {"member": f"media/{docid}.json"},
        "kind": "media",
        "conversation": None,
        "media": {
            "docid": docid,
            "meta": {"filename": "f.png", "contents": {"1": {"type": "image/png"}}},
            "sha256": "cd" * 32,
            "size": 108188,
            "name": f"{docid}.1.png",
        },
    }
    result = decode_event(_event("skype-export", payload))
    assert isinstance(result, ObjectObservation)
    assert (result.obj, result.obj_id, result.reason) == ("MEDIA", docid, "import")
    assert [(n, v) for n, v, _ in result.properties] == [
        ("FILENAME", "f.png"),
        ("MEMBER", f"media/{docid}.json"),
        ("MIME", "image/png"),
        ("NAME", f"{docid}.1.png"),
        ("SHA256", "cd" * 32),
        ("SIZE", "108188"),
    ]


def test_generated_export_decodes_whole() -> None:
    # tests/support/skype_files.py (the importer's generator of exports with every messagetype and
    # property of the spec) is read as the importer would hand its entries on.
    document = export_document()
    results = []
    file = {"sha256": SHA, "name": "messages.json", "account": None, "client": None}
    chats = []
    for i, conversation in enumerate(document["conversations"]):
        record = {k: v for k, v in conversation.items() if k != "MessageList"}
        own = {"file": file, "place": {"conversation": i}, "kind": "conversation"}
        chats.append(decode_event(_event("skype-export", {**own, "conversation": record})))
        for j, message in enumerate(conversation["MessageList"]):
            payload = {
                "file": file,
                "place": {"conversation": i, "message": j},
                "kind": "message",
                "conversation": {"id": record["id"]},
                "message": message,
            }
            results.append((message["messagetype"], decode_event(_event("skype-export", payload))))
    assert [r for _, r in results if not isinstance(r, MessageObservation)] == []
    # Each conversation's record is the CHAT its messages are in.
    assert all(isinstance(c, ObjectObservation) and c.obj == "CHAT" for c in chats), chats
    message_chats = {r.chat for _, r in results if r.chat is not None}
    assert message_chats <= {c.obj_id for c in chats}
    # Kept as OTHER: kinds with no type of their own here (and one nobody has seen).
    others = {t for t, r in results if r.type is not None and r.type.startswith("OTHER:")}
    others = {t for t in others if not t.startswith("ThreadActivity/E2EEHandshake")}
    assert others <= {
        "RichText/ScheduledCallInvite",
        "Event/BingBot",
        "TranslationSettings",
        "RichText/Unheard",
    }
    assert {t for t, _ in results} - {t for t, r in results if r.type is not None} == set()


def test_invalid_payloads_are_schema_errors() -> None:
    event = maindb_event()
    del event["payload"]["row"]
    assert _error(event).kind == "schema"
    event = maindb_event()
    event["payload"]["chat"] = {"name": "#alice/$bob;ea753190f0a3e49b"}
    assert _error(event).kind == "schema"
    event = export_event()
    del event["payload"]["message"]
    assert _error(event).kind == "schema"
    # A message carries its conversation's id, not the record (that is an event of its own).
    event = export_event()
    event["payload"]["conversation"]["displayName"] = "Bob"
    assert _error(event).kind == "schema"
    event = conversation_event({"id": THREAD})
    event["payload"]["message"] = {"id": "1"}
    assert _error(event).kind == "schema"
    event = record_event("Conversations", {"id": 7, "identity": "bob"})
    event["payload"]["conversation"] = None
    assert _error(event).kind == "schema"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "from",
                "content",
                "messagetype",
                "originalarrivaltime",
                "properties",
                "displayName",
            ]
        ),
        _JSON,
    ),
    st.sampled_from(["8:bob", P2P_ID, THREAD, "19:%%@p2p.thread.skype", "", "48:calllogs"]),
)
def test_any_export_message_decodes_or_gives_an_error(changes, conversation_id) -> None:
    event = export_event(conversation_id=conversation_id or "8:x")
    event["payload"]["conversation"]["id"] = conversation_id
    event["payload"]["message"].update(changes)
    result = decode_event(copy.deepcopy(event))
    assert isinstance(result, MessageObservation | DecodeError)


_SQL_VALUE = st.none() | st.integers() | st.floats() | st.text(max_size=12) | st.just({"hex": "00"})


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "chatname",
                "author",
                "timestamp",
                "type",
                "body_xml",
                "edited_timestamp",
                "identities",
                "remote_id",
                "param_key",
                "chatmsg_status",
                "from_dispname",
            ]
        ),
        _SQL_VALUE,
    )
)
def test_any_maindb_row_decodes_or_gives_an_error(changes) -> None:
    event = maindb_event()
    event["payload"]["row"].update(changes)
    result = decode_event(event)
    assert isinstance(result, MessageObservation | DecodeError)


# --- chat names and times ---------------------------------------------------------------


def test_real_p2p_ids_decode() -> None:
    assert legacy_chat_name(P2P_ID) == P2P_CHAT
    group = "19:I3NreXNreXN3ZDEvJDEzNmY1NDUzN2UxY2EyNA==@p2p.thread.skype"
    assert export_chat_name(group) == "#skyskyswd1/$136f54537e1ca24"
    with pytest.raises(ChatNameError):
        export_chat_name("19:" + base64.b64encode(b"\xff\xfe").decode() + "@p2p.thread.skype")
    with pytest.raises(ChatNameError):
        export_chat_name("8:")


def test_handles() -> None:
    assert [bare_handle(h) for h in ("8:bob", "8:live:bob", "2:x@example.com", "bob")] == [
        "bob",
        "live:bob",
        "x@example.com",
        "bob",
    ]
    assert [bare_handle(h) for h in ("28:concierge", THREAD, "48:calllogs", "4:+1555")] == [
        "28:concierge",
        THREAD,
        "48:calllogs",
        "+1555",
    ]


_NAME_PART = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp", "Cf", "Co", "Cn")).filter(
        lambda c: c != "/" and not c.isspace()
    ),
    min_size=1,
    max_size=20,
)


@given(_NAME_PART, _NAME_PART, st.none() | st.text("0123456789abcdef", min_size=15, max_size=16))
def test_legacy_chat_names_round_trip(creator, other, hexpart) -> None:
    name = f"#{creator}/${other}" + (f";{hexpart}" if hexpart is not None else "")
    if not name.isprintable():
        return
    thread = p2p_thread_id(name)
    assert thread.startswith("19:") and thread.endswith("@p2p.thread.skype")
    assert legacy_chat_name(thread) == name
    assert export_chat_name(thread) == name
    assert p2p_thread_id(export_chat_name(thread)) == thread


@given(st.from_regex(r"[a-z][a-z0-9.:_-]{0,20}", fullmatch=True), st.sampled_from(["8", "2", "4"]))
def test_bare_handles_strip_one_prefix(handle, prefix) -> None:
    assert bare_handle(f"{prefix}:{handle}") == handle
    assert bare_handle(handle) == handle
    assert export_chat_name(f"{prefix}:{handle}") == handle


@given(
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 12, 31)),
    st.integers(min_value=0, max_value=9),
    st.sampled_from(["Z", "", "+00:00", "+02:00", "-0530"]),
)
def test_iso_times_floor_to_seconds(when, digits, zone) -> None:
    fraction = f"{when.microsecond:06d}{'7' * 3}"[:digits]
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + zone
    offset = {"Z": 0, "": 0, "+00:00": 0, "+02:00": 7200, "-0530": -19800}[zone]
    expected = calendar.timegm(when.timetuple()) - offset
    assert iso_seconds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2020-13-01T00:00:00Z",
        "2020-02-30T00:00:00Z",
        "2020-01-01T24:00:00Z",
        "2020-01-01",
        "2020-01-01T00:00:00.Z",
        "2020-01-01T00:00:00+25:00",
        "١٢٣٤-01-01T00:00:00Z",
    ],
)
def test_iso_times_refused(text: str) -> None:
    with pytest.raises(ValueError):
        iso_seconds(text)


def test_events_built_here_are_json() -> None:
    for event in (maindb_event(), export_event(), *real_events(MAC)):
        assert json.loads(json.dumps(event)) == event
