"""A `skype-maindb` raw event (one Messages row of a Skype classic main.db) -> observation.

The row becomes what the Desktop API would have said about the same message, so that a copy
in a main.db and a copy captured live match: CHATNAME is `chatname`, FROM_HANDLE `author`,
TYPE the Desktop API name of `type` (kinds the API has no CHATMESSAGE for get names of their
own, unknown ones `OTHER:maindb-<type>`), BODY `body_xml` (Skype's markup: body_format
"skype-xml") and USERS `identities` where the API gives USERS. Timestamps are Unix seconds
in the file's machine's clock; the file is a host, so its clock offset is estimated like any
host's and tz_offset_s is 0 (spec skype-history-formats.md 2.3-2.7, 3).

A Conversations or Chats row is a chat's own record: it becomes an object observation of
CHAT `<the chat name its messages decode to>` with the Desktop API CHAT properties that mean
the same (TOPIC, MEMBERS, FRIENDLYNAME, TIMESTAMP), as the agent's reads of a CHAT give them.

Bad values are refused (decode.Refused, kind "value") naming the row and column:
`Messages rowid 61: timestamp`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatchannels.processors.chatnames import bare_handle, dialog_chat_name, is_partner_name
from chatchannels.processors.decode import Refused, checked_timestamp
from chatchannels.processors.observations import MessageObservation, ObjectObservation

# Messages.type -> Desktop API TYPE (or the name this archive gives a kind the API has no
# CHATMESSAGE TYPE for). Type 2 is decided by param_key (_METADATA).
TYPES: dict[int, str] = {
    4: "CREATEDCHATWITH",
    10: "ADDEDMEMBERS",
    11: "JOINEDASAPPLICANT",
    12: "KICKED",
    13: "LEFT",
    21: "SETROLE",
    30: "CALL",
    39: "CALL",
    50: "CONTACTREQUEST",
    51: "CONTACTACCEPTED",
    53: "BLOCKED",
    60: "EMOTED",
    61: "SAID",
    63: "POSTEDCONTACTS",
    64: "SMS",
    68: "FILES",
    110: "BIRTHDAY",
    201: "MEDIA",
    253: "MEDIA",
}
# SkypeKit's conversation property ids in param_key of a type 2 row. META_NAME (3640) has
# no Desktop API TYPE: it stays an OTHER kind, named by its key.
_METADATA: dict[int, str] = {3644: "SETTOPIC", 3658: "SETPICTURE", 3652: "SETGUIDELINES"}
# System events: BODY empty, USERS the members they are about, as the Desktop API gives
# them (spec skype-desktop-api.md 6.3).
SYSTEM_TYPES = frozenset({"ADDEDMEMBERS", "LEFT", "KICKED", "SETROLE", "CREATEDCHATWITH"})
# Kinds whose Desktop API USERS is empty whatever identities holds: a live copy of them
# has USERS "", and USERS is part of what makes two copies one message.
_NO_USERS = frozenset(
    {"SAID", "EMOTED", "SETTOPIC", "SETPICTURE", "SETGUIDELINES", "POSTEDCONTACTS"}
)
STATUSES = {1: "SENDING", 2: "SENT", 3: "RECEIVED", 4: "READ"}
# A cloud group's creator's main.db names the group by a local placeholder
# (`#creator/$*T;<convo_id>`); the thread id every other copy uses is the conversation's
# alt_identity.
_PLACEHOLDER_MARK = "/$*T;"
# Conversations.type of a one-to-one dialog; every other type is a group of some kind.
_DIALOG = 1


def decode_maindb_event(event: Mapping[str, Any]) -> MessageObservation | ObjectObservation:
    """The observation of one schema-valid `skype-maindb` event; Refused if a value is bad."""
    payload = event["payload"]
    table = payload["place"]["table"]
    place = f"{table} rowid {payload['place']['rowid']}"
    if table == "Chats":
        return _chat_record(event, place)
    if table == "Conversations":
        return _conversation_record(event, place)
    row: Mapping[str, Any] = payload["row"]
    row_id = _integer(row, "id", place)
    raw_type = _integer(row, "type", place)
    if raw_type is None:
        raise Refused("value", f"{place}: type", "no type")
    msg_type = message_type(raw_type, _integer(row, "param_key", place))
    chat = _chat_name(row, "chatname", payload.get("conversation"), place, payload["file"])
    author = bare_handle(_text(row, "author", place) or "")
    if not author:
        raise Refused("value", f"{place}: author", "empty author")
    timestamp = _integer(row, "timestamp", place)
    if timestamp is None:
        raise Refused("value", f"{place}: timestamp", "no timestamp")
    timestamp = checked_timestamp(timestamp, f"{place}: timestamp", allow_zero=False)
    edited = _integer(row, "edited_timestamp", place) or 0
    edited = checked_timestamp(edited, f"{place}: edited_timestamp", allow_zero=True)
    body = "" if msg_type in SYSTEM_TYPES else (_text(row, "body_xml", place) or "")
    remote_id = _integer(row, "remote_id", place)
    status = _integer(row, "chatmsg_status", place)
    return MessageObservation(
        host=event["host"],
        seq=event["seq"],
        local_id=str(row_id if row_id is not None else payload["place"]["rowid"]),
        reason="import",
        captured_utc=float(event["clock"]["utc"]),
        tz_offset_s=0,
        chat=chat,
        author=author,
        author_name=_text(row, "from_dispname", place),
        type=msg_type,
        status=STATUSES.get(status) if status is not None else None,
        timestamp=timestamp,
        body=body,
        edited_timestamp=edited,
        edited_by=bare_handle(_text(row, "edited_by", place) or "") or None,
        users=_users(msg_type, _text(row, "identities", place), author),
        body_format="skype-xml",
        xid=None if remote_id is None else f"{chat}|{author.casefold()}|{remote_id}|{raw_type}",
    )


def message_type(raw_type: int, param_key: int | None) -> str:
    """The TYPE of a Messages row: a Desktop API name, an archive kind or OTHER:maindb-..."""
    if raw_type == 2:
        if param_key in _METADATA:
            return _METADATA[param_key]
        return f"OTHER:maindb-2/{param_key}"
    return TYPES.get(raw_type, f"OTHER:maindb-{raw_type}")


def _chat_name(
    row: Mapping[str, Any],
    column: str,
    conversation: Mapping[str, Any] | None,
    place: str,
    file: Mapping[str, Any],
) -> str:
    """The chat a Messages row (column chatname) or Chats row (name) is in, as every other
    copy names it."""
    chat = _chat(row, column, conversation, place)
    return dialog_chat_name(file["account"], chat) if is_partner_name(chat) else chat


def _chat(
    row: Mapping[str, Any], column: str, conversation: Mapping[str, Any] | None, place: str
) -> str:
    chatname = _text(row, column, place) or ""
    thread = None
    identity = None
    if conversation is not None:
        alt = conversation.get("alt_identity")
        thread = alt if isinstance(alt, str) and alt.startswith("19:") else None
        found = conversation.get("identity")
        identity = found if isinstance(found, str) and found else None
    if chatname and not (thread and _PLACEHOLDER_MARK in chatname):
        return chatname
    # Skyperious-written files leave chatname NULL: the conversation names the chat.
    chat = thread or identity
    if chat is None:
        raise Refused("value", f"{place}: {column}", "no chat name and no conversation identity")
    return chat


def _chat_record(event: Mapping[str, Any], place: str) -> ObjectObservation:
    """A Chats row: the chat's topic, members (everyone who took part, as the Desktop API's
    MEMBERS; activemembers when a client left participants empty), name and creation time."""
    payload = event["payload"]
    row: Mapping[str, Any] = payload["row"]
    chat = _chat_name(row, "name", payload.get("conversation"), place, payload["file"])
    members = _text(row, "participants", place) or _text(row, "activemembers", place)
    return chat_object(
        event,
        chat,
        {
            "TOPIC": _text(row, "topic", place),
            "MEMBERS": " ".join(members.split()) if members else None,
            "FRIENDLYNAME": _text(row, "friendlyname", place),
            "TIMESTAMP": _created(row, "timestamp", place),
        },
    )


def _conversation_record(event: Mapping[str, Any], place: str) -> ObjectObservation:
    """A Conversations row: a dialog is the chat of the file's account and the partner
    (`identity`); a group is its thread (`alt_identity`) or legacy name (`identity`). A
    dialog has no topic, only the partner's name; a group's topic is meta_topic, or the
    displayname Skype shows for it when it has none."""
    payload = event["payload"]
    row: Mapping[str, Any] = payload["row"]
    identity = _text(row, "identity", place)
    if not identity:
        raise Refused("value", f"{place}: identity", "no identity")
    displayname = _text(row, "displayname", place) or None
    properties = {
        "FRIENDLYNAME": displayname,
        "TIMESTAMP": _created(row, "creation_timestamp", place),
    }
    if _integer(row, "type", place) == _DIALOG:
        chat = identity
        if is_partner_name(chat):
            chat = dialog_chat_name(payload["file"]["account"], chat)
    else:
        alt = _text(row, "alt_identity", place)
        chat = alt if alt and alt.startswith("19:") else identity
        properties["TOPIC"] = _text(row, "meta_topic", place) or displayname
    return chat_object(event, chat, properties)


def _created(row: Mapping[str, Any], column: str, place: str) -> str | None:
    """A creation time as the Desktop API's CHAT TIMESTAMP (Unix seconds in digits); None
    when the file has none (NULL or 0)."""
    seconds = _integer(row, column, place)
    if not seconds:
        return None
    return str(checked_timestamp(seconds, f"{place}: {column}", allow_zero=False))


def chat_object(
    event: Mapping[str, Any], chat: str, properties: Mapping[str, str | None]
) -> ObjectObservation:
    captured = float(event["clock"]["utc"])
    return ObjectObservation(
        host=event["host"],
        seq=event["seq"],
        obj="CHAT",
        obj_id=chat,
        reason="import",
        captured_utc=captured,
        properties=tuple(
            sorted(
                (name, value, captured) for name, value in properties.items() if value is not None
            )
        ),
    )


def _users(msg_type: str, identities: str | None, author: str) -> tuple[str, ...]:
    if msg_type in _NO_USERS or not identities:
        return ()
    users = tuple(bare_handle(h) for h in identities.split())
    if msg_type == "LEFT":
        # main.db names the leaver (the author) in identities too; a live LEFT of someone
        # who left carries an empty USERS, and the two copies must say the same.
        users = tuple(u for u in users if u.casefold() != author.casefold())
    return users


def _integer(row: Mapping[str, Any], column: str, place: str) -> int | None:
    value = row.get(column)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Refused("value", f"{place}: {column}", f"not an integer: {str(value)[:40]!r}")


def _text(row: Mapping[str, Any], column: str, place: str) -> str | None:
    value = row.get(column)
    if value is None or isinstance(value, str):
        return value
    raise Refused("value", f"{place}: {column}", f"not text: {str(value)[:40]!r}")
