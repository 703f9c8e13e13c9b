"""Raw event -> observation, or a DecodeError saying what was wrong and where.

Never raises on bad input: the consumer puts a DecodeError in dead_letters with the raw
record. Imported records (`skype-maindb`, `skype-export`) are decoded by decode_maindb and
decode_export into the same observations; what follows is about the agent's `skype-api`
events. SESSION events (the agent's connection state) carry general parameters
(`CURRENTUSERHANDLE alice`); every other object carries its own property replies.

Lines the agent already flagged in `payload.anomalies` are skipped (the agent kept them for
inspection), as are ERROR replies (an object that vanished between notification and read);
any other line that is not a reply about the event's own object is an error, because
silently dropping it could lose a body.

The trigger (the notification that caused the read) is read first and the GET replies after
it, so a value read later wins: a `status` event may carry its news only in the trigger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatchannels.ingest.desktop_api.protocol import (
    OBJECT_NOUNS,
    ApiParseError,
    ErrorReply,
    ObjectProperty,
    Parameter,
    parse_handle_list,
    parse_int,
    parse_reply,
)
from chatchannels.processors.observations import (
    MessageObservation,
    ObjectObservation,
    Observation,
)
from chatchannels.rawevents import RawEventError, validate_raw_event

# A Desktop API keyword (object, property), as protocol.parse_reply reads it.
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# Skype TIMESTAMPs before 2003 (Skype's birth) or after 2100 are not times a host can have
# recorded for a message, however wrong its clock.
_EARLIEST_TIMESTAMP = 1_041_379_200
_LATEST_TIMESTAMP = 4_102_444_800

_MESSAGE_TEXT_PROPS = {
    "CHATNAME": "chat",
    "FROM_HANDLE": "author",
    "FROM_DISPNAME": "author_name",
    "TYPE": "type",
    "STATUS": "status",
    "BODY": "body",
    "EDITED_BY": "edited_by",
}


@dataclass(frozen=True)
class DecodeError:
    """Why one raw event was refused. `where` names the field or line (for an imported
    record, its place in the file: `Messages rowid 61: timestamp`); `kind` is one of
    "schema", "line", "value", "unsupported" (a source this processor does not read), or
    "signature" (batch.decode_value: its writer is not who it must be)."""

    kind: str
    where: str
    reason: str
    host: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        origin = f"host {self.host} seq {self.seq}: " if self.host is not None else ""
        return f"{origin}{self.where}: {self.reason}"


class Refused(Exception):
    """Raised inside decoding; decode_event turns it into a DecodeError."""

    def __init__(self, kind: str, where: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.where, self.reason = kind, where, reason


def decode_event(event: Mapping[str, Any]) -> Observation | DecodeError:
    """The observation in one raw event (validated here against the schema first)."""
    host = event.get("host") if isinstance(event, Mapping) else None
    seq = event.get("seq") if isinstance(event, Mapping) else None
    host = host if isinstance(host, str) else None
    seq = seq if isinstance(seq, int) else None
    try:
        validate_raw_event(event)
        source = event["source"]
        if source == "skype-api":
            return _decode_skype_api(event)
        # Imported here, not at the top: those modules use this one's Refused and bounds.
        from chatchannels.processors import decode_export, decode_maindb

        if source == "skype-maindb":
            return decode_maindb.decode_maindb_event(event)
        if source == "skype-export":
            return decode_export.decode_export_event(event)
        raise Refused("unsupported", "source", f"source {source!r} is not decoded")
    except RawEventError as exc:
        return DecodeError("schema", "event", str(exc), host, seq)
    except Refused as exc:
        return DecodeError(exc.kind, exc.where, exc.reason, host, seq)


def _decode_skype_api(event: Mapping[str, Any]) -> Observation:
    payload = event["payload"]
    obj, obj_id = payload["object"], payload["id"]
    flagged = {a["line"] for a in payload.get("anomalies", ())}
    texts: list[tuple[str, str]] = []
    if payload["trigger"] is not None:
        texts.append(("payload.trigger", payload["trigger"]))
    texts.extend((f"payload.lines[{i}]", line) for i, line in enumerate(payload["lines"]))
    own = own_prefix(obj, obj_id)
    props: dict[str, tuple[str, str]] = {}
    for where, text in texts:
        if text in flagged:
            continue
        if own is not None:
            found = own_property(own, text)
            if found is not None:
                props[found[0]] = (where, found[1])
                continue
        try:
            reply = parse_reply(text)
        except ApiParseError as exc:
            raise Refused("line", where, f"{exc.reason}: {text[:200]!r}") from None
        if isinstance(reply, ErrorReply):
            continue
        if obj == "SESSION" and isinstance(reply, Parameter):
            # The agent's connection state: general parameters, not object properties.
            props[reply.name] = (where, reply.value)
            continue
        if not isinstance(reply, ObjectProperty):
            raise Refused("line", where, f"not an object property reply: {text[:200]!r}")
        if (reply.obj, reply.obj_id) != (obj, obj_id):
            if where == "payload.trigger":
                # A poll is triggered by the chat's ACTIVITY_TIMESTAMP, not by the message.
                continue
            raise Refused("line", where, f"about {reply.obj} {reply.obj_id}, not {obj} {obj_id}")
        props[reply.prop] = (where, reply.value)
    clock = event["clock"]
    if obj != "CHATMESSAGE":
        captured = float(clock["utc"])
        return ObjectObservation(
            host=event["host"],
            seq=event["seq"],
            obj=obj,
            obj_id=obj_id,
            reason=payload["reason"],
            captured_utc=captured,
            properties=tuple(sorted((p, v, captured) for p, (_, v) in props.items())),
        )
    fields: dict[str, Any] = {
        name: props[prop][1] for prop, name in _MESSAGE_TEXT_PROPS.items() if prop in props
    }
    if "TIMESTAMP" in props:
        fields["timestamp"] = _timestamp(props["TIMESTAMP"], allow_zero=False)
    if "EDITED_TIMESTAMP" in props:
        fields["edited_timestamp"] = _timestamp(props["EDITED_TIMESTAMP"], allow_zero=True)
    if "USERS" in props:
        fields["users"] = parse_handle_list(props["USERS"][1])
    for name in ("chat", "author"):
        if fields.get(name) == "":
            raise Refused("value", _where(props, name), f"empty {name}")
    fields["edited_by"] = fields.get("edited_by") or None
    return MessageObservation(
        host=event["host"],
        seq=event["seq"],
        local_id=obj_id,
        reason=payload["reason"],
        captured_utc=float(clock["utc"]),
        tz_offset_s=clock["tz_offset_s"],
        **fields,
    )


def own_prefix(obj: str, obj_id: str) -> str | None:
    """`"<OBJ> <id> "`, how nearly every line about the object starts, when `parse_reply`
    would read such a line as an object property of exactly that object and id."""
    if obj in OBJECT_NOUNS and _KEYWORD.fullmatch(obj) and obj_id.split() == [obj_id]:
        return f"{obj} {obj_id} "
    return None


def own_property(own: str, text: str) -> tuple[str, str] | None:
    """(PROPERTY, value) of a line `own_prefix` starts, split as `parse_reply` splits it;
    None for anything else (left to parse_reply). Most of decoding's time was parse_reply's
    general path on these lines."""
    if not text.startswith(own):
        return None
    prop, _, value = text[len(own) :].partition(" ")
    return (prop.upper(), value) if _KEYWORD.fullmatch(prop) else None


def _timestamp(found: tuple[str, str], *, allow_zero: bool) -> int:
    where, value = found
    try:
        seconds = parse_int(value)
    except ApiParseError as exc:
        raise Refused("value", where, f"{exc.reason}: {value[:40]!r}") from None
    return checked_timestamp(seconds, where, allow_zero=allow_zero)


def checked_timestamp(seconds: int, where: str, *, allow_zero: bool) -> int:
    """`seconds` if a host can have recorded it for a message (0 too, if allowed: an
    EDITED_TIMESTAMP of a message never edited), else Refused naming `where`."""
    if seconds == 0 and allow_zero:
        return 0
    if not _EARLIEST_TIMESTAMP <= seconds <= _LATEST_TIMESTAMP:
        raise Refused("value", where, f"impossible timestamp {seconds}")
    return seconds


def _where(props: dict[str, tuple[str, str]], name: str) -> str:
    prop = next(p for p, n in _MESSAGE_TEXT_PROPS.items() if n == name)
    return props[prop][0]
