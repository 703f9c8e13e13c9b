"""Canonical values as rows of the store's tables (0001_canonical_store.sql); pure.

Kept apart from pg/changes.py so that a test can build the rows the store must hold from the
in-memory Engine and compare whole tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from chatchannels.processors import richtext as rt
from chatchannels.processors.canonical import DELETE, CanonicalMessage
from chatchannels.processors.observations import ObjectObservation
from chatchannels.processors.richtext import as_skype_xml, body_text

MESSAGE_COLUMNS = (
    "id",
    "chat",
    "author",
    "author_name",
    "posted_utc",
    "type",
    "body",
    "body_markup",
    "edited_utc",
    "edited_by",
    "deleted",
    "users",
    "media",
)
REVISION_COLUMNS = ("message_id", "revision", "body_markup", "editor", "edited_utc", "deleted")
OBSERVATION_COLUMNS = (
    "host",
    "local_id",
    "message_id",
    "local_timestamp",
    "corrected_utc",
    "tz_offset_s",
)


def utc_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def message_row(m: CanonicalMessage) -> tuple:
    edit = m.last_edit
    return (
        m.id,
        m.chat,
        m.author,
        m.author_name or "",
        utc_datetime(m.utc),
        m.type or "",
        # `body` is what search indexes and feed titles show: the text a reader sees.
        # `body_markup` is always Skype's XML, so a Desktop API body's `<` stays a character.
        body_text(m.body, m.body_format),
        as_skype_xml(m.body, m.body_format),
        utc_datetime(edit.edited_utc) if edit else None,
        edit.edited_by if edit else None,
        m.deleted,
        list(m.users),
        list(media_docids(m.body, m.body_format)),
    )


def media_docids(body: str, body_format: str) -> tuple[str, ...]:
    """The docids of the media a body shows, in order, each once."""
    # Most bodies hold no media: not parsed for it.
    if body_format != rt.SKYPE_XML or "uriobject" not in body.lower():
        return ()
    found: dict[str, None] = {}
    pending = list(rt.parse(body, body_format))
    while pending:
        node = pending.pop(0)
        if isinstance(node, rt.Media) and node.doc_id:
            found[node.doc_id] = None
        elif isinstance(node, rt.WithChildren):
            pending[:0] = node.children
    return tuple(found)


def revision_rows(m: CanonicalMessage) -> list[tuple]:
    return [
        (
            m.id,
            r.n,
            as_skype_xml(r.body, r.body_format),
            r.edited_by,
            utc_datetime(r.edited_utc),
            r.kind == DELETE,
        )
        for r in m.revisions
    ]


def observation_rows(m: CanonicalMessage) -> list[tuple]:
    return [
        (o.host, o.local_id, m.id, o.local_timestamp, utc_datetime(o.utc), o.tz_offset_s)
        for o in m.observations
    ]


def latest_reads(
    objects: Iterable[ObjectObservation], obj: str, skews: Mapping[str, float]
) -> dict[str, tuple[str, float]]:
    """Each property of the hosts' reads of an `obj` object from the read made last in true
    time (ties: host id), so the answer does not depend on which host's events arrived
    first: property -> (value, the skew of the host that read it)."""
    latest: dict[str, tuple[tuple[float, str], str, float]] = {}
    for o in objects:
        if o.obj != obj:
            continue
        skew = skews.get(o.host, 0.0)
        for prop, value, captured in o.properties:
            when = (captured - skew, o.host)
            if prop not in latest or when > latest[prop][0]:
                latest[prop] = (when, value, skew)
    return {prop: (value, skew) for prop, (_, value, skew) in latest.items()}


@dataclass(frozen=True)
class ChatRow:
    topic: str
    members: tuple[str, ...]
    created_utc: datetime | None


def chat_row(objects: Iterable[ObjectObservation], skews: Mapping[str, float]) -> ChatRow:
    """A chat's topic, members and creation time from the hosts' reads of its CHAT object
    (latest_reads). Members are handles in lower case, as users.handle. Creation time is
    Skype's TIMESTAMP corrected by the offset of the host that read it."""
    latest = latest_reads(objects, "CHAT", skews)
    topic = latest["TOPIC"][0] if "TOPIC" in latest else ""
    members = latest["MEMBERS"][0].lower().split() if "MEMBERS" in latest else []
    created = None
    if "TIMESTAMP" in latest:
        value, skew = latest["TIMESTAMP"]
        created = float(int(value) - skew) if value.isdigit() else float(value)
    created_utc = utc_datetime(created) if created and created > 0 else None
    return ChatRow(topic, tuple(sorted(set(members))), created_utc)


@dataclass(frozen=True)
class MediaRow:
    sha256: str | None
    name: str
    size: int | None
    mime: str | None


def media_row(objects: Iterable[ObjectObservation], skews: Mapping[str, float]) -> MediaRow:
    """A shared file from the hosts' reads of its MEDIA object (latest_reads). An export
    without the file's content names no SHA256, so an earlier export's archived copy stays
    linked. The name is the one its sender gave it (FILENAME), else the export's member
    name."""
    values = {prop: value for prop, (value, _) in latest_reads(objects, "MEDIA", skews).items()}
    size = values.get("SIZE", "")
    return MediaRow(
        values.get("SHA256"),
        values.get("FILENAME") or values.get("NAME") or "",
        int(size) if size.isdigit() else None,
        values.get("MIME"),
    )
