"""Read the canonical archive back as plain values, in one canonical order.

What the demo scores against ground truth and what a replay's digest is computed over: the
canonical content only (messages, revisions, tombstones, provenance), never offsets, change
numbers or wall-clock fields, so two stores built from the same log compare equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import psycopg

from chatchannels.processors.pg.migrate import set_schema


@dataclass(frozen=True)
class ArchivedRevision:
    revision: int
    body_markup: str
    editor: str | None
    edited_utc: float | None
    deleted: bool


@dataclass(frozen=True)
class ArchivedCopy:
    host: str
    local_id: str
    local_timestamp: int
    corrected_utc: float
    tz_offset_s: int


@dataclass(frozen=True)
class ArchivedMessage:
    id: str
    chat: str
    author: str
    author_name: str
    posted_utc: float
    type: str
    body_markup: str
    edited_utc: float | None
    edited_by: str | None
    deleted: bool
    revisions: tuple[ArchivedRevision, ...]
    copies: tuple[ArchivedCopy, ...]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted({c.host for c in self.copies}))


def _epoch(value) -> float | None:
    return None if value is None else round(value.timestamp(), 6)


def read_archive(dsn: str, schema: str = "public") -> Iterator[ArchivedMessage]:
    """Every canonical message with its revisions and copies, ordered by (posted_utc, id)."""
    with psycopg.connect(dsn) as conn:
        set_schema(conn, schema)
        yield from archived_messages(conn)


def archived_messages(conn: psycopg.Connection) -> Iterator[ArchivedMessage]:
    """`read_archive` on an open connection, in its current transaction: a caller that reads
    other tables in the same REPEATABLE READ snapshot gets an archive consistent with them."""
    revisions: dict[str, list[ArchivedRevision]] = {}
    for mid, n, body, editor, edited, deleted in conn.execute(
        "SELECT message_id, revision, body_markup, editor, edited_utc, deleted"
        " FROM revisions ORDER BY message_id, revision"
    ):
        revisions.setdefault(mid, []).append(
            ArchivedRevision(n, body, editor, _epoch(edited), deleted)
        )
    copies: dict[str, list[ArchivedCopy]] = {}
    for mid, host, local_id, local_ts, corrected, tz in conn.execute(
        "SELECT message_id, host, local_id, local_timestamp, corrected_utc, tz_offset_s"
        " FROM observations ORDER BY message_id, host, local_id"
    ):
        copies.setdefault(mid, []).append(
            ArchivedCopy(host, local_id, local_ts, _epoch(corrected), tz)
        )
    rows = conn.execute(
        "SELECT id, chat, author, author_name, posted_utc, type, body_markup, edited_utc,"
        " edited_by, deleted FROM messages ORDER BY posted_utc, id"
    )
    for mid, chat, author, name, posted, typ, body, edited, editor, deleted in rows:
        yield ArchivedMessage(
            id=mid,
            chat=chat,
            author=author,
            author_name=name,
            posted_utc=_epoch(posted),
            type=typ,
            body_markup=body,
            edited_utc=_epoch(edited),
            edited_by=editor,
            deleted=deleted,
            revisions=tuple(revisions.get(mid, ())),
            copies=tuple(copies.get(mid, ())),
        )


def archive_digest(messages: Iterator[ArchivedMessage]) -> tuple[str, int]:
    """SHA-256 over the canonical content in canonical order, and the message count."""
    digest = hashlib.sha256()
    count = 0
    for message in messages:
        line = json.dumps(asdict(message), sort_keys=True, ensure_ascii=False)
        digest.update(line.encode())
        digest.update(b"\n")
        count += 1
    return digest.hexdigest(), count
