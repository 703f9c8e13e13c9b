"""What the agent reads from Skype, and how a read becomes a raw event.

Pure: no D-Bus, no Kafka, no disk. The capture loop (capture.py) asks `classify` what a
notification means, sends the GETs named here, and hands the verbatim replies to
`build_event`. Odd replies never raise: they go into the event unchanged and are flagged in
``payload.anomalies`` for the processor to judge (invariant 8).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatchannels.ingest.desktop_api.protocol import (
    ApiParseError,
    ErrorReply,
    ObjectProperty,
    Parameter,
    SearchResult,
    format_get,
    format_get_parameter,
    parse_reply,
)
from chatchannels.rawevents import EventClock, skype_api_event

# CHATNAME first: it decides whether the rest may be read at all (allow-list).
MESSAGE_PROPERTIES = (
    "CHATNAME",
    "TIMESTAMP",
    "FROM_HANDLE",
    "FROM_DISPNAME",
    "TYPE",
    "STATUS",
    "LEAVEREASON",
    "USERS",
    "EDITED_BY",
    "EDITED_TIMESTAMP",
    "BODY",
)
CHAT_PROPERTIES = (
    "NAME",
    "TIMESTAMP",
    "TYPE",
    "STATUS",
    "MYSTATUS",
    "TOPIC",
    "FRIENDLYNAME",
    "ADDER",
    "DIALOG_PARTNER",
    "MEMBERS",
    "ACTIVEMEMBERS",
    "POSTERS",
)
SESSION_PARAMETERS = ("CURRENTUSERHANDLE", "SKYPEVERSION", "PROTOCOL", "CONNSTATUS", "USERSTATUS")

# Message properties whose change means the content may have changed (spec §6.4, §10.2.4).
_MESSAGE_CONTENT = frozenset({"BODY", "EDITED_BY", "EDITED_TIMESTAMP"})
_MESSAGE_KNOWN = frozenset(
    {*MESSAGE_PROPERTIES, "IS_EDITABLE", "OPTIONS", "ROLE", "PARTNER_HANDLE", "PARTNER_DISPNAME"}
)
# Chat properties that change what a chat is (topic, membership, our standing in it);
# they earn a re-read of the chat. The rest change with every message and stay small.
_CHAT_STRUCTURE = frozenset(
    {
        "NAME",
        "TIMESTAMP",
        "TYPE",
        "STATUS",
        "MYSTATUS",
        "MYROLE",
        "TOPIC",
        "TOPICXML",
        "ADDER",
        "DIALOG_PARTNER",
        "MEMBERS",
        "GUIDELINES",
        "OPTIONS",
        "DESCRIPTION",
        "PASSWORDHINT",
    }
)
_CHAT_SMALL = frozenset(
    {
        "ACTIVEMEMBERS",
        "POSTERS",
        "FRIENDLYNAME",
        "BOOKMARKED",
        "OPENED",
        "CLOSED",
        "MEMBEROBJECTS",
        "APPLICANTS",
        "BLOB",
        "CHATMESSAGES",
        "RECENTCHATMESSAGES",
    }
)
_SESSION_KEPT = frozenset({"CONNSTATUS", "CURRENTUSERHANDLE"})


def message_gets(message_id: str, properties: tuple[str, ...] = MESSAGE_PROPERTIES) -> list[str]:
    return [format_get("CHATMESSAGE", message_id, p) for p in properties]


def chat_gets(chat: str) -> list[str]:
    return [format_get("CHAT", chat, p) for p in CHAT_PROPERTIES]


def session_gets() -> list[str]:
    return [format_get_parameter(p) for p in SESSION_PARAMETERS]


# --- notifications ----------------------------------------------------------------------


class Kind(enum.Enum):
    MESSAGE_STATUS = "message-status"  # a message's STATUS moved (new, sent, read)
    MESSAGE_CONTENT = "message-content"  # edited, deleted (empty BODY), or unknown property
    CHAT_ACTIVITY = "chat-activity"  # ACTIVITY_TIMESTAMP: poll the recent messages
    CHAT_STRUCTURE = "chat-structure"  # topic, members, ...: re-read the chat
    CHAT_SMALL = "chat-small"  # per-message chatter: a small event, no GET
    SESSION = "session"  # connection state worth recording
    IGNORED = "ignored"  # not about chats (USER, CALL, CHATMEMBER, ...)
    ODD = "odd"  # unparsable, or a shape the agent does not know


@dataclass(frozen=True)
class Notice:
    kind: Kind
    line: str
    obj_id: str = ""
    prop: str = ""
    value: str = ""
    problem: str = ""


def classify(line: str) -> Notice:
    """What a notification is about and what it calls for; never raises."""
    try:
        reply = parse_reply(line)
    except ApiParseError as exc:
        return Notice(Kind.ODD, line, problem=f"unparsable notification: {exc.reason}")
    match reply:
        case ObjectProperty("CHATMESSAGE", obj_id, prop, value):
            if prop == "STATUS":
                return Notice(Kind.MESSAGE_STATUS, line, obj_id, prop, value)
            problem = "" if prop in _MESSAGE_KNOWN else f"unknown CHATMESSAGE property {prop}"
            return Notice(Kind.MESSAGE_CONTENT, line, obj_id, prop, value, problem)
        case ObjectProperty("CHAT", obj_id, prop, value):
            if prop == "ACTIVITY_TIMESTAMP":
                return Notice(Kind.CHAT_ACTIVITY, line, obj_id, prop, value)
            if prop in _CHAT_STRUCTURE:
                return Notice(Kind.CHAT_STRUCTURE, line, obj_id, prop, value)
            problem = "" if prop in _CHAT_SMALL else f"unknown CHAT property {prop}"
            return Notice(Kind.CHAT_SMALL, line, obj_id, prop, value, problem)
        case ObjectProperty("MESSAGE", obj_id, prop, value):
            # Protocol-1 shape: Skype did not take PROTOCOL 8. Keep it, flagged.
            problem = "protocol-1 MESSAGE object (PROTOCOL 8 not in force?)"
            return Notice(Kind.ODD, line, obj_id, prop, value, problem)
        case Parameter(name, value) if name in _SESSION_KEPT:
            return Notice(Kind.SESSION, line, prop=name, value=value)
        case ErrorReply(code, _):
            return Notice(Kind.ODD, line, problem=f"unsolicited ERROR {code}")
    return Notice(Kind.IGNORED, line)


# --- reads and events -------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One command and Skype's reply (verbatim, `#id` removed); None when none came."""

    command: str
    reply: str | None
    failure: str = ""


@dataclass(frozen=True)
class ObjectRead:
    """Everything one raw event carries about one object."""

    reason: str
    obj: str
    obj_id: str
    trigger: str | None
    exchanges: tuple[Exchange, ...] = ()
    trigger_problem: str = ""

    def value(self, prop: str) -> str | None:
        """The value of `prop` from a well-formed reply in this read, if any."""
        for exchange in self.exchanges:
            if exchange.reply is None:
                continue
            try:
                reply = parse_reply(exchange.reply)
            except ApiParseError:
                continue
            if isinstance(reply, ObjectProperty) and reply.prop == prop:
                return reply.value
        return None


def reply_problem(exchange: Exchange) -> str:
    """Why a reply is odd for the command it answers; "" when it is what was asked for."""
    if exchange.reply is None:
        return f"no reply to {exchange.command!r}: {exchange.failure or 'unknown failure'}"
    try:
        reply = parse_reply(exchange.reply)
    except ApiParseError as exc:
        return f"unparsable reply to {exchange.command!r}: {exc.reason}"
    if isinstance(reply, ErrorReply):
        return f"ERROR {reply.code} in reply to {exchange.command!r}"
    words = exchange.command.split(" ")
    verb = words[0].upper()
    if verb == "GET" and len(words) == 4:
        expected = (words[1].upper(), words[2], words[3].upper())
        if isinstance(reply, ObjectProperty) and (reply.obj, reply.obj_id, reply.prop) == expected:
            return ""
    elif verb == "GET" and isinstance(reply, Parameter):
        if reply.name == words[1].upper():
            return ""
    elif verb == "SEARCH" and isinstance(reply, SearchResult):
        return ""
    return f"reply does not answer {exchange.command!r}"


def payload_parts(read: ObjectRead) -> tuple[list[str], list[dict[str, str]]]:
    """The verbatim reply lines in GET order, and the anomalies among them."""
    lines: list[str] = []
    anomalies: list[dict[str, str]] = []
    if read.trigger is not None and read.trigger_problem:
        anomalies.append({"line": read.trigger, "problem": read.trigger_problem})
    for exchange in read.exchanges:
        problem = reply_problem(exchange)
        if exchange.reply is not None:
            lines.append(exchange.reply)
        if problem:
            anomalies.append({"line": exchange.reply or exchange.command, "problem": problem})
    return lines, anomalies


def build_event(
    read: ObjectRead, *, host: str, session: str, seq: int, clock: EventClock
) -> dict[str, Any]:
    lines, anomalies = payload_parts(read)
    return skype_api_event(
        host=host,
        session=session,
        seq=seq,
        clock=clock,
        reason=read.reason,
        obj=read.obj,
        obj_id=read.obj_id,
        trigger=read.trigger,
        lines=lines,
        anomalies=anomalies,
    )


def message_ids(value: str) -> tuple[list[int], list[str]]:
    """Numeric ids from a CHATMESSAGES-like value, lowest first, and the items that are not ids.

    Skype does not promise the order (spec §5.2); local ids only grow, so sorting gives
    posting order on this host.
    """
    ids: set[int] = set()
    junk: list[str] = []
    for item in value.split(","):
        item = item.strip(" ")
        if item.isascii() and item.isdigit():
            ids.add(int(item))
        elif item:
            junk.append(item)
    return sorted(ids), junk


def describe(event: Mapping[str, Any]) -> str:
    """A short label for logs: `seq 12 CHATMESSAGE 293 (notification)`."""
    payload = event["payload"]
    return f"seq {event['seq']} {payload['object']} {payload['id']} ({payload['reason']})"
