"""Skype history files of one chat, as a participant's Skype would have written them, made
from an emulator scenario's ground truth (emulator/truth.py).

- `write_maindb`: the participant's Skype classic main.db (the real plaso file's schema):
  one Messages row per message the participant's desktop holds, in its final state (edits
  in place with edited_by/edited_timestamp, deletions as an empty body_xml with an edit
  time), bodies as Skype stores them (`&`, `<`, `>` escaped), system events as their types
  (topic: type 2 param_key 3644; added: type 10 with identities; left: type 13).
- `export_document`: the participant's official export (messages.json): the chat under its
  `19:<base64>@p2p.thread.skype` id, newest first, server times in ms, edits with
  `edittime` and the `<e_m>` marker (plus the server-generated copy an edit leaves),
  deletions with `deletetime`, members and topic as ThreadActivity entries. Content is
  escaped as the export writes it, apostrophes and quotes as entities too.

Only the messages the participant held are in its files (`TruthMessage.hosts`). Emotes are
not in exports (spec skype-history-formats.md 3: no export form of EMOTED was ever seen).
"""

from __future__ import annotations

import datetime
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chatchannels.emulator.scenario import Scenario
from chatchannels.emulator.truth import TruthMessage
from chatchannels.processors.chatnames import p2p_thread_id
from chatchannels.processors.richtext import escape_xml
from tests.support.skype_files import PLASO

# Messages.type of a Desktop API TYPE (spec skype-history-formats.md 3).
MAINDB_TYPES = {"": 61, "SAID": 61, "EMOTED": 60, "SETTOPIC": 2, "ADDEDMEMBERS": 10, "LEFT": 13}
TOPIC_KEY = 3644


def held_by(truth: Iterable[TruthMessage], host: str, chat: str) -> list[TruthMessage]:
    return [m for m in truth if m.chat == chat and host in m.hosts]


def _fullnames(scenario: Scenario) -> dict[str, str]:
    return {u.handle.lower(): u.fullname for u in scenario.users}


def write_maindb(
    path: Path,
    scenario: Scenario,
    messages: list[TruthMessage],
    owner: str,
    skews: Mapping[str, int] | None = None,
) -> Path:
    """`owner`'s main.db holding `messages` (one chat); `skews` moves a message's timestamp
    by whole seconds (real copies differ by 1-2 s)."""
    skews = skews or {}
    names = _fullnames(scenario)
    src = sqlite3.connect(f"file:{PLASO}?mode=ro", uri=True)
    try:
        tables = [
            sql
            for (sql,) in src.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"
                " AND name NOT LIKE 'sqlite_%'"
            )
        ]
        version = src.execute("SELECT * FROM AppSchemaVersion").fetchall()
    finally:
        src.close()
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        for sql in tables:
            db.execute(sql)
        for row in version:
            db.execute(f"INSERT INTO AppSchemaVersion VALUES ({', '.join('?' * len(row))})", row)
        _insert(db, "Accounts", id=1, is_permanent=1, skypename=owner, fullname=names[owner])
        chat = messages[0].chat
        members = sorted({m.author for m in messages} | {owner})
        topics = [m.final_body for m in messages if m.type == "SETTOPIC"]
        convo = _insert(
            db,
            "Conversations",
            is_permanent=1,
            identity=chat,
            type=2,
            displayname=topics[-1] if topics else chat,
            meta_topic=topics[-1] if topics else None,
            creator=chat[1:].split("/", 1)[0],
        )
        _insert(
            db,
            "Chats",
            is_permanent=1,
            name=chat,
            friendlyname=topics[-1] if topics else chat,
            type=4,
            posters=" ".join(members),
            participants=" ".join(members),
            activemembers=" ".join(members),
            conv_dbid=convo,
        )
        remote_ids: dict[str, int] = {}
        for k, m in enumerate(messages):
            kind = MAINDB_TYPES[m.type]
            remote_ids[m.author] = remote_ids.get(m.author, 100 * (len(remote_ids) + 1)) + 1
            text = m.type in ("", "SAID", "EMOTED")
            body: str | None = escape_xml(m.final_body) if text else None
            row: dict[str, Any] = {
                "id": 1000 + k,
                "is_permanent": 1,
                "convo_id": convo,
                "chatname": chat,
                "author": m.author,
                "from_dispname": names[m.author.lower()],
                "guid": uuid.uuid5(uuid.NAMESPACE_URL, m.msg).bytes * 2,
                "timestamp": int(m.posted_at) + skews.get(m.msg, 0),
                "type": kind,
                "chatmsg_type": {61: 3, 60: 7, 2: 5, 10: 1, 13: 4}[kind],
                "chatmsg_status": 2 if m.author == owner else 4,
                "body_xml": body,
                "remote_id": remote_ids[m.author],
                "pk_id": remote_ids[m.author],
            }
            if m.type == "SETTOPIC":
                row.update(param_key=TOPIC_KEY, param_value=0, body_xml=escape_xml(m.final_body))
            elif m.type == "ADDEDMEMBERS":
                row["identities"] = " ".join(_added(scenario, m))
            elif m.type == "LEFT":
                row.update(identities=m.author, leavereason=6)
            if m.revisions:
                last = m.revisions[-1]
                row.update(edited_by=last.editor, edited_timestamp=int(last.at))
                if m.deleted:
                    row["body_xml"] = ""
            _insert(db, "Messages", **row)
        db.commit()
    finally:
        db.close()
    return path


def _added(scenario: Scenario, m: TruthMessage) -> list[str]:
    """Who a join message added (the truth message names only the adder)."""
    return [
        a.user
        for a in scenario.actions()
        if a.op == "join" and a.message_id == m.msg and a.user is not None
    ]


def _insert(db: sqlite3.Connection, table: str, **values: Any) -> int:
    names = ", ".join(values)
    cur = db.execute(
        f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _iso(ms: int) -> str:
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def export_content(text: str) -> str:
    """Typed text as the export's content holds it: `&<>` and the quotes as entities."""
    return escape_xml(text).replace("'", "&apos;").replace('"', "&quot;")


def _activity(tag: str, ms: int, initiator: str, targets: Iterable[str] = (), value=None) -> str:
    inner = f"<eventtime>{ms}</eventtime><initiator>8:{initiator}</initiator>"
    inner += "".join(f"<target>8:{t}</target>" for t in targets)
    if value is not None:
        inner += f"<value>{export_content(value)}</value>"
    return f"<{tag}>{inner}</{tag}>"


def export_document(scenario: Scenario, messages: list[TruthMessage], owner: str) -> dict[str, Any]:
    """`owner`'s export holding `messages` (one legacy chat); emotes left out (no export form)."""
    names = _fullnames(scenario)
    chat = messages[0].chat
    conversation = p2p_thread_id(chat)
    entries: list[dict[str, Any]] = []
    for k, m in enumerate(messages):
        if m.type == "EMOTED":
            continue
        # Server arrival in ms: some milliseconds into the second it was posted in.
        ms = int(m.posted_at) * 1000 + (137 * (k + 1)) % 1000
        entry: dict[str, Any] = {
            "id": str(ms),
            "displayName": names[m.author.lower()],
            "originalarrivaltime": _iso(ms),
            "messagetype": "RichText",
            "version": float(ms),
            "content": export_content(m.body),
            "conversationid": conversation,
            "from": f"8:{m.author}",
            "properties": None,
            "amsreferences": None,
        }
        if m.type == "SETTOPIC":
            entry["messagetype"] = "ThreadActivity/TopicUpdate"
            entry["content"] = _activity("topicupdate", ms, m.author, value=m.final_body)
        elif m.type == "ADDEDMEMBERS":
            entry["messagetype"] = "ThreadActivity/AddMember"
            entry["content"] = _activity("addmember", ms, m.author, _added(scenario, m))
        elif m.type == "LEFT":
            entry["messagetype"] = "ThreadActivity/DeleteMember"
            entry["content"] = _activity("deletemember", ms, m.author, [m.author])
        entries.append(entry)
        if not m.revisions:
            continue
        last = m.revisions[-1]
        last_ms = int(last.at * 1000) + 250
        if m.deleted:
            entry.update(content="", properties={"deletetime": str(last_ms)})
            continue
        marker = f'<e_m ts="{ms // 1000}" ts_ms="{ms}" a="{last.editor}" t="61"/>'
        entry.update(
            content=export_content(last.body) + marker,
            properties={"edittime": str(last_ms)},
            version=float(last_ms),
        )
        # The copy the server made at the edit: same content, an id of its own.
        copy = dict(entry, id=str(last_ms), originalarrivaltime=_iso(last_ms))
        copy["properties"] = {"isserversidegenerated": "True"}
        entries.append(copy)
    entries.sort(key=lambda e: int(e["id"]), reverse=True)
    members = sorted({m.author for m in messages} | {owner})
    topics = [m.final_body for m in messages if m.type == "SETTOPIC"]
    return {
        "userId": f"8:{owner}",
        "exportDate": "2025-05-04T12:00",
        "conversations": [
            {
                "id": conversation,
                "displayName": topics[-1] if topics else None,
                "version": float(entries[0]["id"]),
                "properties": {"conversationblocked": False},
                "threadProperties": {
                    "membercount": len(members),
                    "members": None,
                    "topic": topics[-1] if topics else None,
                },
                "MessageList": entries,
            }
        ],
    }
