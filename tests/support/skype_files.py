"""Skype history files for tests: export archives and small main.db files.

No real messages.json is public (tests/data/skype/README.md), so `export_document()` builds
one from docs/spec/skype-history-formats.md section 1: every messagetype and property
the spec lists, in the shapes it gives (newest-first MessageList, float versions, members as
a JSON string with objects and null inside, p2p and cloud thread ids, edits, deletions,
server-generated copies). main.db files reuse gen_maindb.py, which copies the real plaso
file's schema.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import random
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

from tests.support.paths import DATA

SKYPE_FILES = DATA / "skype"
PLASO = SKYPE_FILES / "plaso-skype-6.6-main.db"
MAC = SKYPE_FILES / "skypeexportswift-mac-6.19-main.db"
CHATSYNC = SKYPE_FILES / "skypeexportswift-mac-6.19-chatsync-8e6dc27e63436757.dat"

P2P_NAME = "#alice/$bob;72abdaf9cf5da36"
P2P_ID = "19:" + base64.b64encode(P2P_NAME.encode()).decode() + "@p2p.thread.skype"
CLOUD_ID = "19:0f3c9e1d2b7a4c55a1e2b3c4d5e6f708@thread.skype"
DOCID = "0-weu-d3-" + "ab" * 16
MISSING_DOCID = "0-weu-d3-" + "cd" * 16
T0 = 1594056032374  # ms; messages are T0 + k * 1000


def _iso(ms: int) -> str:
    import datetime

    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _message(
    conversation: str, k: int, mtype: str, content: str, sender: str = "8:alice", **props: Any
) -> dict[str, Any]:
    ms = T0 + k * 1000
    message: dict[str, Any] = {
        "id": str(ms),
        "displayName": None,
        "originalarrivaltime": _iso(ms),
        "messagetype": mtype,
        "version": float(ms + 3),
        "content": content,
        "conversationid": conversation,
        "from": sender,
        "properties": dict(props) or None,
        "amsreferences": None,
    }
    return message


def _uri(kind: str, docid: str, name: str) -> str:
    return (
        f'<URIObject uri="https://api.asm.skype.com/v1/objects/{docid}" '
        f'url_thumbnail="https://api.asm.skype.com/v1/objects/{docid}/views/imgt1_anim" '
        f'type="{kind}" doc_id="{docid}" width="640" height="480">Para exibir esta foto, '
        f'acesse <a href="https://login.skype.com/login/sso?go=webclient.xmm&amp;docid={docid}">'
        f"https://login.skype.com/login/sso?go=webclient.xmm&amp;docid={docid}</a>"
        f'<OriginalName v="{name}"/><FileSize v="108188"/>'
        f'<meta type="photo" originalName="{name}"/></URIObject>'
    )


def _partlist(kind: str) -> str:
    return (
        f'<partlist type="{kind}" alt="" callId="a1b2c3d4-0000-1111-2222-333344445555">'
        '<part identity="8:alice"><name>Alice</name><duration>84.82</duration></part>'
        '<part identity="8:bob"><name>Bob</name><duration>84.82</duration></part></partlist>'
    )


def _activity(tag: str, initiator: str, target: str | None = None, value: str | None = None):
    inner = f"<eventtime>{T0}</eventtime><initiator>{initiator}</initiator>"
    if target is not None:
        inner += f"<target>{target}</target>"
    if value is not None:
        inner += f"<value>{value}</value>"
    return f"<{tag}>{inner}</{tag}>"


def group_messages(conversation: str) -> list[dict[str, Any]]:
    """One of each messagetype and property of spec 1.4-1.9, oldest first."""
    c = conversation
    edited_original = T0 + 30 * 1000
    edit_marker = (
        f'<e_m ts="{edited_original // 1000}" ts_ms="{edited_original}" a="alice" t="61"/>'
    )
    card = json.dumps([{"cardType": "notice", "title": "Skype is retiring", "id": 7}])
    out = [
        _message(
            c,
            1,
            "RichText",
            'Hello <b>bold</b> &amp; <ss type="smile">:)</ss> '
            '<a href="https://example.com/">link</a> <at id="8:bob">Bob</at>',
        ),
        _message(c, 2, "Text", "if (a<b && c>d) { return; }"),
        _message(c, 3, "RichText/UriObject", _uri("Picture.1", DOCID, "f.png"), sender="8:bob"),
        _message(c, 4, "RichText/Media_GenericFile", _uri("File.1", MISSING_DOCID, "report.pdf")),
        _message(c, 5, "RichText/Media_Video", _uri("Video.1/Message.1", DOCID, "v.mp4")),
        _message(c, 6, "RichText/Media_AudioMsg", _uri("Audio.1/Message.1", DOCID, "a.m4a")),
        _message(
            c,
            7,
            "RichText/Media_Album",
            _uri("Picture.1", DOCID, "p1.jpg"),
            albumId="5a7e3f0c-1111-2222-3333-444455556666",
        ),
        _message(c, 8, "RichText/Media_Card", '<URIObject type="SWIFT.1">card</URIObject>'),
        _message(c, 9, "RichText/Media_CallRecording", _uri("Video.1/CallRecording.1", DOCID, "r")),
        _message(
            c, 10, "RichText/Media_FlikMsg", '<URIObject type="Video.1/Flik.1">moji</URIObject>'
        ),
        _message(
            c,
            11,
            "RichText/Files",
            '<files alt="sent files"><file size="1024" index="0" tid="1">a.txt</file></files>',
        ),
        _message(
            c, 12, "RichText/Contacts", '<contacts><c t="s" s="carol" f="Carol Smith"/></contacts>'
        ),
        _message(
            c,
            13,
            "RichText/Location",
            '<location isUserLocation="0" latitude="59437000" longitude="24745000" '
            'address="Tallinn"><a href="https://www.bing.com/maps">Tallinn</a></location>',
        ),
        _message(
            c, 14, "RichText/ScheduledCallInvite", '<URIObject type="Meeting.1" subject="Sync"/>'
        ),
        _message(c, 15, "Event/Call", _partlist("started")),
        _message(c, 16, "Event/Call", _partlist("ended")),
        _message(c, 17, "Event/Call", _partlist("missed")),
        _message(c, 18, "Event/BingBot", "<bingbot/>"),
        _message(c, 19, "Poll", '{"question": "Lunch?"}'),
        _message(c, 20, "Notice", card, sender="28:concierge"),
        _message(c, 21, "PopCard", card, sender="28:concierge"),
        _message(c, 22, "InviteFreeRelationshipChanged/Initialized", "<initialized/>"),
        _message(c, 23, "ThreadActivity/AddMember", _activity("addmember", "8:alice", "8:carol")),
        _message(
            c, 24, "ThreadActivity/DeleteMember", _activity("deletemember", "8:carol", "8:carol")
        ),
        _message(
            c, 25, "ThreadActivity/DeleteMember", _activity("deletemember", "8:alice", "8:dave")
        ),
        _message(
            c,
            26,
            "ThreadActivity/TopicUpdate",
            _activity("topicupdate", "8:alice", value="New &amp; topic"),
        ),
        _message(
            c,
            27,
            "ThreadActivity/PictureUpdate",
            _activity(
                "pictureupdate",
                "8:alice",
                value="URL@https://api.asm.skype.com/v1/objects/0-weu-d1-x/views/avatar",
            ),
            sender=c,
        ),
        _message(
            c,
            28,
            "ThreadActivity/RoleUpdate",
            "<roleupdate><target><id>8:bob</id><role>admin</role></target></roleupdate>",
        ),
        _message(
            c,
            29,
            "ThreadActivity/HistoryDisclosedUpdate",
            _activity("historydisclosedupdate", "8:alice", value="true"),
        ),
    ]
    out += [
        # The edited message: final content, edittime, and the marker holding the original ms.
        _message(c, 31, "RichText", "fixed typo" + edit_marker, edittime=str(T0 + 31_500)),
        # Its server-made copy.
        _message(c, 32, "RichText", "fixed typo" + edit_marker, isserversidegenerated="True"),
        # Deleted.
        _message(c, 33, "RichText", "", deletetime=str(T0 + 40_000)),
        # Blank server-generated row.
        _message(c, 34, "RichText", "", isserversidegenerated=True),
        _message(
            c,
            35,
            "ThreadActivity/JoiningEnabledUpdate",
            _activity("joiningenabledupdate", "8:alice", value="false"),
        ),
        _message(c, 36, "ThreadActivity/E2EEHandshakeInvite", "<handshake/>"),
        _message(c, 37, "EndToEndEncryption/EncryptedText", "AAAAbase64=="),
        _message(c, 38, "TranslationSettings", "{}"),
        _message(
            c,
            39,
            "RichText",
            '<quote author="bob" authorname="Bob" timestamp="1594056035" '
            f'conversation="{c}" messageid="{T0 + 3000}"><legacyquote>[1594056035] Bob: '
            "</legacyquote>the picture<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>"
            "nice",
            urlpreviews=json.dumps([{"url": "https://example.com/"}]),
            emotions=[{"key": "like", "users": [{"mri": "8:bob", "time": T0, "value": "1"}]}],
        ),
        _message(c, 40, "RichText/Unheard", "a type nobody has seen"),
    ]
    out[2]["amsreferences"] = [DOCID]
    out[3]["amsreferences"] = [MISSING_DOCID]
    return out


def export_document(user: str = "8:alice", extra_messages: int = 0) -> dict[str, Any]:
    cloud = group_messages(CLOUD_ID)
    p2p = [_message(P2P_ID, 50 + k, "RichText", f"p2p message {k}") for k in range(3)]
    direct = [
        _message(
            "8:bob", 60 + k, "RichText", f"hi bob {k}", sender="live:bob" if k == 1 else "8:alice"
        )
        for k in range(3 + extra_messages)
    ]
    members = json.dumps(["8:alice", {"id": "8:bob", "role": "User"}, "8:carol"])
    conversations = [
        {
            "id": CLOUD_ID,
            "displayName": "Project Falcon",
            "version": float(T0 + 99_000),
            "properties": {
                "conversationblocked": False,
                "lastimreceivedtime": "2020-07-06T17:20:32.374Z",
                "consumptionhorizon": f"{T0};{T0 + 5};18446744072099653693",
                "conversationstatus": "Accepted",
            },
            "threadProperties": {
                "membercount": 3,
                "members": members,
                "topic": "Project Falcon",
                "picture": "URL@https://api.asm.skype.com/v1/objects/0-weu-d1-x/views/avatar",
            },
            "MessageList": list(reversed(cloud)),
        },
        {
            # MessageList before the record's other keys: the reader must wait for them.
            "MessageList": list(reversed(p2p)),
            "id": P2P_ID,
            "displayName": None,
            "version": float(T0),
            "properties": {"conversationblocked": False},
            "threadProperties": {"membercount": 2, "members": None, "topic": "old p2p"},
        },
        {
            "id": "8:bob",
            "displayName": "Bob",
            "version": 1594056032575.0,
            "properties": {"conversationblocked": False, "conversationstatus": None},
            "threadProperties": None,
            "MessageList": list(reversed(direct)),
        },
    ]
    return {"userId": user, "exportDate": "2020-07-06T20:55", "conversations": conversations}


def message_count(document: dict[str, Any]) -> int:
    return sum(len(c["MessageList"]) for c in document["conversations"])


def media_files() -> dict[str, bytes]:
    """media/ of an export: one shared file with content and one whose content is missing."""
    meta = {"filename": "f.png", "contents": {"1": {"type": "image/png"}}, "expiry_date": None}
    return {
        f"media/{DOCID}.json": json.dumps(meta).encode(),
        f"media/{DOCID}.1.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        f"media/{DOCID}.2.jpg": b"\xff\xd8preview",
        f"media/{MISSING_DOCID}.json": json.dumps({"filename": "report.pdf"}).encode(),
    }


def write_export_tar(
    path: Path,
    document: dict[str, Any] | None = None,
    media: bool = True,
    json_text: bytes | None = None,
) -> Path:
    document = document if document is not None else export_document()
    data = json_text if json_text is not None else json.dumps(document, indent=1).encode()
    members = {"messages.json": data, "endpoints.json": b"{}"}
    if media:
        members.update(media_files())
    with tarfile.open(path, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1594056032
            tar.addfile(info, io.BytesIO(content))
    return path


def write_big_messages_json(path: Path, target_bytes: int, per_conversation: int = 50_000) -> int:
    """A messages.json of about `target_bytes`, written as it goes; returns its message count."""
    rng = random.Random(7)
    words = [
        "the",
        "be",
        "to",
        "of",
        "and",
        "a",
        "in",
        "that",
        "have",
        "it",
        "for",
        "not",
        "on",
        "with",
        "as",
        "you",
        "do",
        "at",
        "this",
    ]
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('{"userId": "8:live:big", "exportDate": "2024-01-02T03:04", "conversations": [')
        conv = 0
        while out.tell() < target_bytes:
            cid = f"19:{conv:032x}@thread.skype"
            if conv:
                out.write(",")
            out.write(
                json.dumps(
                    {
                        "id": cid,
                        "displayName": f"chat {conv}",
                        "version": float(T0),
                        "properties": {},
                        "threadProperties": {"members": "[]"},
                    }
                )[:-1]
            )
            out.write(', "MessageList": [')
            for k in range(per_conversation):
                text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
                if k:
                    out.write(",")
                out.write(json.dumps(_message(cid, k, "RichText", text)))
                count += 1
                if out.tell() >= target_bytes:
                    break
            out.write("]}")
            conv += 1
        out.write("]}")
    return count


def _gen_maindb():
    spec = importlib.util.spec_from_file_location("gen_maindb", SKYPE_FILES / "gen_maindb.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def write_maindb(path: Path, messages: int = 200, chats: int = 6, seed: int = 1) -> Path:
    """A main.db with the real plaso file's schema and `messages` synthetic rows."""
    import argparse
    import contextlib

    gen = _gen_maindb()
    args = argparse.Namespace(
        out=str(path), template=str(PLASO), messages=messages, chats=chats, authors=8, seed=seed
    )
    with contextlib.redirect_stdout(io.StringIO()):
        gen.make(args)
    return path


def messages_count(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM Messages").fetchone()[0]
    finally:
        db.close()
