"""A `skype-export` raw event (one object of Skype's messages.json export) -> observation.

A message becomes what the Desktop API would have said about it (see decode_maindb): chat
the name main.db and the API use (chatnames.export_chat_name), author the bare handle,
TYPE by `messagetype` (spec skype-history-formats.md 1.7), BODY `content` as written.

An export holds one entry per message, except that an edited message can appear twice: the
entry itself (final content, `properties.edittime`) and a server-generated copy. Both carry
`<e_m ts_ms=...>`, the original's time in ms, so the local id is
`<conversation id>|<original ms>` (the message `id` when there is no `<e_m>`) and the copy
folds into the same host message. A blank server-generated entry (no content, no edit or
delete time) says nothing: its observation carries no chat, author or time, so it is
accounted for without ever becoming a message.

A conversation event (the conversation object without its MessageList) is the chat's own
record: an object observation of CHAT `<the chat name its messages decode to>` with the
Desktop API CHAT properties that mean the same (TOPIC, MEMBERS, FRIENDLYNAME). A message
event carries only the conversation's id.

A media event (a file of the export's media/) is an object observation `MEDIA <docid>` with
what the archive keeps of it, for pages to link.
"""

from __future__ import annotations

import calendar
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from chatchannels.processors.chatnames import ChatNameError, bare_handle, export_chat_name
from chatchannels.processors.decode import Refused, checked_timestamp
from chatchannels.processors.decode_maindb import chat_object
from chatchannels.processors.observations import MessageObservation, ObjectObservation

# messagetype -> TYPE: Desktop API names where the API has the kind, archive kinds else.
# ThreadActivity/DeleteMember is LEFT or KICKED by who removed whom (_thread_activity).
TYPES: dict[str, str] = {
    "RichText": "SAID",
    "Text": "SAID",
    "RichText/UriObject": "MEDIA",
    "RichText/Media_GenericFile": "MEDIA",
    "RichText/Media_Video": "MEDIA",
    "RichText/Media_AudioMsg": "MEDIA",
    "RichText/Media_Album": "MEDIA",
    "RichText/Media_CallRecording": "MEDIA",
    "RichText/Media_FlikMsg": "MEDIA",
    "RichText/Media_Card": "CARD",
    "RichText/Files": "FILES",
    "RichText/Contacts": "POSTEDCONTACTS",
    "RichText/Location": "LOCATION",
    "Event/Call": "CALL",
    "Poll": "POLL",
    "Notice": "CARD",
    "PopCard": "CARD",
    # The spec's table (3) pairs it with main.db's granted authorisation (type 51).
    "InviteFreeRelationshipChanged/Initialized": "CONTACTACCEPTED",
    "ThreadActivity/AddMember": "ADDEDMEMBERS",
    "ThreadActivity/TopicUpdate": "SETTOPIC",
    "ThreadActivity/PictureUpdate": "SETPICTURE",
    "ThreadActivity/RoleUpdate": "SETROLE",
    "ThreadActivity/JoiningEnabledUpdate": "SETOPTIONS",
    "ThreadActivity/HistoryDisclosedUpdate": "SETOPTIONS",
    "EndToEndEncryption/EncryptedText": "ENCRYPTED",
    "EndToEndEncryption/EncryptedMedia": "ENCRYPTED",
}
_SYSTEM_TYPES = frozenset({"ADDEDMEMBERS", "LEFT", "KICKED", "SETROLE"})
# Content that is not Skype's markup: every character is itself (a `<` in a Text message
# is a less-than sign; Notice and PopCard hold JSON).
_PLAIN_TEXT_TYPES = frozenset({"Text", "Notice", "PopCard"})

_E_M = re.compile(r"<e_m\b([^>]*)>")
_ATTRIBUTE = re.compile(r"""([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ISO = re.compile(
    r"\s*(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?"
    r"\s*(?:([Zz])|([+-])(\d\d):?(\d\d))?\s*",
    re.ASCII,
)
_DIGITS = re.compile(r"[0-9]+")


def decode_export_event(event: Mapping[str, Any]) -> MessageObservation | ObjectObservation:
    """The observation of one schema-valid `skype-export` event; Refused if a value is bad."""
    payload = event["payload"]
    if payload["kind"] == "media":
        return _media(event)
    if payload["kind"] == "conversation":
        return _conversation(event)
    place = payload["place"]
    conv_place = f"conversations[{place.get('conversation', '?')}]"
    where = f"{conv_place}.MessageList[{place.get('message', '?')}]"
    message = payload["message"]
    conversation_id = _conversation_id(payload["conversation"], message, conv_place, where)
    msg_id = _field_text(message, "id", where)
    content = _field_text(message, "content", where) or ""
    properties = message.get("properties")
    if properties is not None and not isinstance(properties, Mapping):
        raise Refused("value", f"{where}: properties", "not an object")
    properties = properties or {}
    edit_marker = _edit_marker(content)
    original_ms = edit_marker.get("ts_ms") if edit_marker else None
    if original_ms is not None and not _DIGITS.fullmatch(original_ms):
        raise Refused("value", f"{where}: content", f"<e_m ts_ms={original_ms[:40]!r}>")
    if original_ms is None and not msg_id:
        raise Refused("value", f"{where}: id", "no message id")
    local_id = f"{conversation_id}|{original_ms or msg_id}"
    edit_ms = _ms(properties, "edittime", where)
    delete_ms = _ms(properties, "deletetime", where)
    server_copy = str(properties.get("isserversidegenerated", "")).lower() == "true"
    base = {
        "host": event["host"],
        "seq": event["seq"],
        "local_id": local_id,
        "reason": "import",
        "captured_utc": float(event["clock"]["utc"]),
        "tz_offset_s": 0,
    }
    if server_copy and not content.strip() and edit_ms is None and delete_ms is None:
        return MessageObservation(**base)
    try:
        chat = export_chat_name(conversation_id, event["payload"]["file"]["account"])
    except ChatNameError as exc:
        raise Refused("value", f"{conv_place}: id", str(exc)) from None
    messagetype = message.get("messagetype")
    if not isinstance(messagetype, str) or not messagetype:
        raise Refused("value", f"{where}: messagetype", "no messagetype")
    arrival = _field_text(message, "originalarrivaltime", where)
    if arrival is None:
        raise Refused("value", f"{where}: originalarrivaltime", "missing")
    try:
        arrived = iso_seconds(arrival)
    except ValueError:
        raise Refused(
            "value", f"{where}: originalarrivaltime", f"not an ISO time: {arrival[:40]!r}"
        ) from None
    arrived = checked_timestamp(arrived, f"{where}: originalarrivaltime", allow_zero=False)
    author = bare_handle(_field_text(message, "from", where) or "")
    msg_type = TYPES.get(messagetype, f"OTHER:export-{messagetype}")
    body, users = content, ()
    if messagetype.startswith("ThreadActivity/"):
        msg_type, author, body, users = _thread_activity(
            messagetype, msg_type, content, author, where
        )
    if not author:
        raise Refused("value", f"{where}: from", "empty author")
    timestamp = arrived
    if original_ms is not None:
        # The time every entry of an edited message agrees on: a copy made at the edit
        # arrived then, but the message was posted at ts_ms.
        timestamp = checked_timestamp(
            int(original_ms) // 1000, f"{where}: content", allow_zero=False
        )
    editor = bare_handle(edit_marker.get("a") or "") if edit_marker else ""
    edited_timestamp: int | None = 0
    if delete_ms is not None:
        body = ""
        edited_timestamp = checked_timestamp(
            delete_ms // 1000, f"{where}: properties.deletetime", allow_zero=False
        )
    elif edit_ms is not None:
        edited_timestamp = checked_timestamp(
            edit_ms // 1000, f"{where}: properties.edittime", allow_zero=False
        )
    elif edit_marker is not None:
        # Edited (the marker says so) but the entry gives no edit time: a copy made at the
        # edit arrived at it; for anything else the time is unknown.
        edited_timestamp = arrived if arrived > timestamp else None
    display_name = message.get("displayName")
    return MessageObservation(
        **base,
        chat=chat,
        author=author,
        author_name=display_name if isinstance(display_name, str) else None,
        type=msg_type,
        timestamp=timestamp,
        body=body,
        edited_timestamp=edited_timestamp,
        edited_by=(editor or author) if edited_timestamp != 0 else None,
        users=users,
        body_format="text" if messagetype in _PLAIN_TEXT_TYPES else "skype-xml",
    )


def iso_seconds(text: str) -> int:
    """Unix seconds (floored) of an ISO-8601 time as Skype writes them: `Z` or an offset or
    none (then UTC), any number of fractional digits or none. ValueError if it is not one."""
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 1, month)[1]):
        raise ValueError(f"no such day: {text!r}")
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"no such time of day: {text!r}")
    offset = 0
    if match.group(8) is None and match.group(9) is not None:
        off_hours, off_minutes = int(match.group(10)), int(match.group(11))
        if off_hours > 18 or off_minutes > 59:
            raise ValueError(f"no such UTC offset: {text!r}")
        offset = (off_hours * 3600 + off_minutes * 60) * (1 if match.group(9) == "+" else -1)
    # The fraction is below a second and never negative: flooring drops it.
    return calendar.timegm((year, month, day, hour, minute, second)) - offset


def _thread_activity(
    messagetype: str, msg_type: str, content: str, author: str, where: str
) -> tuple[str, str, str, tuple[str, ...]]:
    """(TYPE, author, body, users) of a ThreadActivity event: its author is the initiator
    (a PictureUpdate's `from` can be the thread itself), users its targets."""
    if "<!" in content:
        # No DTDs or entity declarations: Skype never writes them, and they can expand.
        raise Refused("value", f"{where}: content", "declarations in a ThreadActivity")
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise Refused("value", f"{where}: content", f"not XML: {exc}") from None
    initiator = bare_handle((root.findtext("initiator") or "").strip())
    author = initiator or author
    targets = tuple(
        bare_handle(handle)
        for target in root.iter("target")
        if (handle := (target.findtext("id") or target.text or "").strip())
    )
    if messagetype == "ThreadActivity/DeleteMember":
        left = bool(targets) and all(t.casefold() == author.casefold() for t in targets)
        msg_type = "LEFT" if left else "KICKED"
    if msg_type in _SYSTEM_TYPES:
        users = targets
        if msg_type == "LEFT":
            users = tuple(t for t in targets if t.casefold() != author.casefold())
        return msg_type, author, "", users
    value = root.findtext("value")
    return msg_type, author, escape(value) if value else "", ()


def _edit_marker(content: str) -> dict[str, str] | None:
    match = _E_M.search(content)
    if match is None:
        return None
    return {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _ATTRIBUTE.finditer(match.group(1))
    }


def _conversation_id(
    conversation: Mapping[str, Any], message: Mapping[str, Any], conv_place: str, where: str
) -> str:
    found = conversation.get("id")
    if isinstance(found, str) and found:
        return found
    found = message.get("conversationid")
    if isinstance(found, str) and found:
        return found
    raise Refused("value", f"{conv_place}: id", "no conversation id")


def _ms(properties: Mapping[str, Any], key: str, where: str) -> int | None:
    """A ms time of message properties (a string of digits, or a number); None if absent."""
    value = properties.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Refused("value", f"{where}: properties.{key}", f"not a ms time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise Refused("value", f"{where}: properties.{key}", f"not a ms time: {str(value)[:40]!r}")


def _field_text(message: Mapping[str, Any], key: str, where: str) -> str | None:
    value = message.get(key)
    if value is None or isinstance(value, str):
        return value
    if key == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Refused("value", f"{where}: {key}", f"not text: {str(value)[:40]!r}")


def _conversation(event: Mapping[str, Any]) -> ObjectObservation:
    """A conversation's record. A thread's (`19:`) topic is threadProperties.topic, or the
    displayName Skype shows for it when it has none; a one-to-one chat has no topic (the
    Desktop API's is empty), its displayName is the partner's name."""
    payload = event["payload"]
    record = payload["conversation"]
    where = f"conversations[{payload['place']['conversation']}]"
    conversation_id = record.get("id")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise Refused("value", f"{where}: id", "no conversation id")
    try:
        chat = export_chat_name(conversation_id, payload["file"]["account"])
    except ChatNameError as exc:
        raise Refused("value", f"{where}: id", str(exc)) from None
    thread = record.get("threadProperties")
    if thread is not None and not isinstance(thread, Mapping):
        raise Refused("value", f"{where}: threadProperties", "not an object")
    thread = thread or {}
    display_name = record.get("displayName")
    display_name = display_name if isinstance(display_name, str) and display_name else None
    properties = {"FRIENDLYNAME": display_name, "MEMBERS": _members(thread, where)}
    if conversation_id.startswith("19:"):
        topic = thread.get("topic")
        properties["TOPIC"] = topic if isinstance(topic, str) and topic else display_name
    return chat_object(event, chat, properties)


def _members(thread: Mapping[str, Any], where: str) -> str | None:
    """threadProperties.members (a JSON array in a string, of MRIs or of objects with one in
    `id`; null since 2023 for some chats) as MEMBERS: bare handles, space-separated."""
    encoded = thread.get("members")
    if encoded is None:
        return None
    place = f"{where}: threadProperties.members"
    try:
        members = json.loads(encoded) if isinstance(encoded, str) else None
    except ValueError:
        members = None
    if not isinstance(members, list):
        raise Refused("value", place, f"not a JSON array in a string: {str(encoded)[:60]!r}")
    handles = []
    for member in members:
        mri = member.get("id") if isinstance(member, Mapping) else member
        if not isinstance(mri, str) or not mri.strip():
            raise Refused("value", place, f"a member without an MRI: {str(member)[:60]!r}")
        handles.append(bare_handle(mri.strip()))
    return " ".join(handles)


def _media(event: Mapping[str, Any]) -> ObjectObservation:
    media = event["payload"]["media"]
    meta = media["meta"] or {}
    captured = float(event["clock"]["utc"])
    props = {
        "SHA256": media["sha256"],
        "SIZE": None if media["size"] is None else str(media["size"]),
        "NAME": media["name"],
        "FILENAME": meta.get("filename") if isinstance(meta.get("filename"), str) else None,
        "MEMBER": event["payload"]["place"].get("member"),
    }
    contents = meta.get("contents")
    first = contents.get("1") if isinstance(contents, Mapping) else None
    if isinstance(first, Mapping) and isinstance(first.get("type"), str):
        props["MIME"] = first["type"]
    return ObjectObservation(
        host=event["host"],
        seq=event["seq"],
        obj="MEDIA",
        obj_id=media["docid"],
        reason="import",
        captured_utc=captured,
        properties=tuple(
            sorted((name, value, captured) for name, value in props.items() if value is not None)
        ),
    )
