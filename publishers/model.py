"""What the publishers read from the canonical store, as values (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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

    @property
    def updated_utc(self) -> datetime:
        """When the message last really changed: its last edit, else its posting."""
        return self.edited_utc or self.posted_utc


@dataclass(frozen=True)
class Chat:
    name: str
    topic: str
    members: tuple[tuple[str, str], ...]  # (handle, display name), sorted by handle


@dataclass(frozen=True)
class ChatSummary:
    name: str
    topic: str
    messages: int
    last_utc: datetime | None


@dataclass(frozen=True)
class MonthCount:
    month: str
    messages: int
