"""What the publishers read from the canonical store, as values (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatchannels.publishers.names import chat_title


@dataclass(frozen=True)
class Change:
    """One row of the change stream. For a message: key is its id, with chat and posted_utc."""

    seq: int
    kind: str  # message | chat | user
    key: str
    chat: str | None
    posted_utc: datetime | None


@dataclass(frozen=True)
class Revision:
    revision: int
    body_markup: str
    editor: str | None
    edited_utc: datetime | None
    deleted: bool


@dataclass(frozen=True)
class Sighting:
    """One desktop's copy of a message: its local id and the TIMESTAMP its Skype wrote, with
    the UTC offset its clock was set to (provenance, shown folded on the month page)."""

    host: str
    local_id: str
    local_timestamp: int
    tz_offset_s: int


@dataclass(frozen=True)
class Message:
    id: str
    chat: str
    author: str
    author_name: str
    posted_utc: datetime
    type: str
    body: str
    body_markup: str
    edited_utc: datetime | None
    edited_by: str | None
    deleted: bool
    # Whom a member event (ADDEDMEMBERS, LEFT, KICKED, SETROLE) is about: its body is empty.
    users: tuple[str, ...] = ()
    # The docids of the media its body shows, to look their archived files up by.
    media: tuple[str, ...] = ()
    revisions: tuple[Revision, ...] = ()
    hosts: tuple[str, ...] = ()
    sightings: tuple[Sighting, ...] = ()

    @property
    def updated_utc(self) -> datetime:
        """When the message last really changed: its last edit, else its posting."""
        return self.edited_utc or self.posted_utc


@dataclass(frozen=True)
class Chat:
    name: str
    topic: str
    members: tuple[tuple[str, str], ...]  # (handle, display name), sorted by handle
    # Display names of the people the chat's id names (names.handles_in_name), for the
    # title of a chat without members.
    named: tuple[tuple[str, str], ...] = ()

    @property
    def title(self) -> str:
        return chat_title(self.name, self.topic, self.members, dict(self.named))


@dataclass(frozen=True)
class ChatSummary:
    name: str
    topic: str
    messages: int
    last_utc: datetime | None
    title: str  # names.chat_title


@dataclass(frozen=True)
class MonthCount:
    month: str
    messages: int
