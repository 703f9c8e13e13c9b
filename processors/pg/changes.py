"""The change stream: the canonical rows a batch changed, numbered, and announced.

Under the change-stream lock a batch hands out change_seq numbers and writes its messages,
revisions, observations, chats, media, users and aliases with one `changes` row each (a
media row that changed announces the stored messages showing it), then NOTIFYs (delivered on
commit) the channel the publishers listen on (store_contract.py). The rows are built before
the lock is waited for, while PostgreSQL writes the batch's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import astuple
from typing import Any

from chatchannels.processors.batch import RawRecord
from chatchannels.processors.canonical import CanonicalMessage
from chatchannels.processors.observations import ObjectObservation
from chatchannels.processors.pg.groups import Recomputed
from chatchannels.processors.pg.locks import changes_lock
from chatchannels.processors.pg.session import Session
from chatchannels.processors.pg.state import host_message_rows
from chatchannels.processors.rows import (
    MESSAGE_COLUMNS,
    OBSERVATION_COLUMNS,
    REVISION_COLUMNS,
    chat_row,
    media_row,
    message_row,
    observation_rows,
    revision_rows,
    utc_datetime,
)
from chatchannels.processors.snapshots import load_value
from chatchannels.store_contract import NOTIFY_CHANNEL


def publish(
    session: Session,
    recomputed: list[Recomputed],
    chats: set[str],
    media: set[str],
    first_seen: Mapping[tuple[str, str], RawRecord],
) -> int:
    """Write the canonical rows and their change rows under the change-stream lock. The
    rows are built before the lock is waited for, while PostgreSQL writes the batch's
    state; the change_seq numbers go out once it is held."""
    upserted = [m for r in recomputed for m in r.change.upserted]
    removed = sorted(
        (r.before[i] for r in recomputed for i in r.change.removed), key=lambda m: m.id
    )
    removed_ids = [m.id for m in removed]
    aliases = [a for r in recomputed for a in r.change.aliases]
    if not upserted and not removed and not chats and not media:
        return 0
    before = {i: m for r in recomputed for i, m in r.before.items()}
    messages = [message_row(m) for m in upserted]
    revised, revisions = _changed_revisions(upserted, before)
    observations = _changed_observations(upserted, before)
    session.write("SELECT pg_advisory_xact_lock(%s)", (changes_lock(session.schema),))
    (seq,) = session.query("SELECT coalesce(max(change_seq), 0) FROM changes").fetchone()
    first = _first_offsets(session, observations, first_seen)
    skews = (
        dict(session.query("SELECT host, skew_s FROM proc_host_clocks")) if chats or media else {}
    )
    chat_rows = _changed_objects(
        session,
        "CHAT",
        sorted(chats),
        "SELECT name, topic, members, created_utc FROM chats WHERE name = ANY(%s)",
        chat_row,
        skews,
    )
    media_rows = _changed_objects(
        session,
        "MEDIA",
        sorted(media),
        "SELECT docid, sha256, name, size, mime FROM media WHERE docid = ANY(%s)",
        media_row,
        skews,
    )
    # Read under the change-stream lock: a message committed by another instance that
    # had not seen this media row yet is visible here, so its page gets linked.
    linking = _messages_showing(
        session, [row[0] for row in media_rows], {m.id for m in upserted} | set(removed_ids)
    )
    changes: list[tuple] = []

    def next_seq() -> int:
        nonlocal seq
        seq += 1
        return seq

    for m in removed:
        changes.append((next_seq(), "message", m.id, m.chat, utc_datetime(m.utc)))
    message_rows = []
    for m, row in zip(upserted, messages, strict=True):
        s = next_seq()
        message_rows.append((*row, s))
        changes.append((s, "message", m.id, m.chat, utc_datetime(m.utc)))
    chat_rows = [(*row, next_seq()) for row in chat_rows]
    changes.extend((row[-1], "chat", row[0], row[0], None) for row in chat_rows)
    relinked = [(id_, chat, posted, next_seq()) for id_, chat, posted in linking]
    changes.extend((s, "message", id_, chat, posted) for id_, chat, posted, s in relinked)

    if removed_ids:
        session.write("DELETE FROM messages WHERE id = ANY(%b)", (removed_ids,))
    # A message its group did not hold before has no row (its id names the group, which the
    # batch holds locked, and the group's messages are the ones the store holds for its host
    # messages, pg/groups.py): COPYed straight in.
    new_messages, known_messages = [], []
    for m, row in zip(upserted, message_rows, strict=True):
        (known_messages if m.id in before else new_messages).append(row)
    session.upsert(
        "messages",
        (*MESSAGE_COLUMNS, "change_seq"),
        known_messages,
        conflict=("id",),
        update=(*MESSAGE_COLUMNS[1:], "change_seq"),
        fresh=new_messages,
    )
    # Only a message that had a row can have revision rows to replace.
    replaced = [i for i in revised if i in before]
    if replaced:
        session.write("DELETE FROM revisions WHERE message_id = ANY(%b)", (replaced,))
    session.copy_insert("revisions", REVISION_COLUMNS, revisions, None)
    # A host message the batch saw first has no observation row yet (state.write_host_messages
    # says why no other transaction can have made one): COPYed straight in.
    columns = (*OBSERVATION_COLUMNS, "first_partition", "first_offset")
    new, known = [], []
    for r in observations:
        (new if r[:2] in first_seen else known).append((*r, *first[r[:2]]))
    session.upsert(
        "observations",
        columns,
        known,
        conflict=("host", "local_id"),
        update=OBSERVATION_COLUMNS[2:],
        fresh=new,
    )
    _write_aliases(session, aliases, [m.id for m in upserted])
    session.upsert(
        "chats",
        ("name", "topic", "members", "created_utc", "change_seq"),
        chat_rows,
        ("name",),
        ("topic", "members", "created_utc", "change_seq"),
    )
    session.upsert(
        "media",
        ("docid", "sha256", "name", "size", "mime"),
        media_rows,
        ("docid",),
        ("sha256", "name", "size", "mime"),
    )
    if relinked:
        session.write_many(
            "UPDATE messages SET change_seq = %s WHERE id = %s",
            [(s, id_) for id_, _, _, s in relinked],
        )
    authors = sorted({m.author.lower() for m in [*upserted, *removed]})
    changes.extend(_write_users(session, authors, next_seq))
    session.copy_insert(
        "changes", ("change_seq", "kind", "key", "chat", "posted_utc"), changes, conflict=None
    )
    if changes:
        session.write("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(seq)))
    return len(changes)


def _first_offsets(
    session: Session, rows: list[tuple], first_seen: Mapping[tuple[str, str], RawRecord]
) -> dict[tuple[str, str], tuple[int, int]]:
    """For each observation row, the raw event that first named its host message: this
    batch's record, or the one its host message row keeps."""
    earlier = {r[:2] for r in rows if r[:2] not in first_seen}
    first = {key: (record.partition, record.offset) for key, record in first_seen.items()}
    for host, local_id, partition, offset in host_message_rows(
        session, "m.first_partition, m.first_offset", earlier
    ):
        first[(host, local_id)] = (partition, offset)
    return first


def _write_aliases(session: Session, aliases: list[tuple[str, str]], live: list[str]) -> None:
    if aliases:
        # Earlier aliases of an id now gone follow it to its successor.
        session.write_many(
            "UPDATE message_aliases SET new_id = %s WHERE new_id = %s",
            [(new, old) for old, new in aliases],
        )
        session.write_many(
            "INSERT INTO message_aliases (old_id, new_id) VALUES (%s, %s)"
            " ON CONFLICT (old_id) DO UPDATE SET new_id = EXCLUDED.new_id",
            aliases,
        )
    if live:
        session.write("DELETE FROM message_aliases WHERE old_id = ANY(%b)", (live,))


def _changed_objects(
    session: Session,
    obj: str,
    ids: list[str],
    stored: str,
    row: Callable[[list[ObjectObservation], Mapping[str, float]], Any],
    skews: Mapping[str, float],
) -> list[tuple]:
    """(id, *values) of the `obj` objects whose row changes: `row` of the hosts' reads of
    each (rows.py) against what `stored` (id, *values of the ids given) reads back. Arrays
    come back as lists, so tuples are written and compared as lists."""
    if not ids:
        return []
    objects: dict[str, list[ObjectObservation]] = {i: [] for i in ids}
    for obj_id, state in session.query(
        "SELECT obj_id, state FROM proc_objects WHERE obj = %s AND obj_id = ANY(%s)",
        (obj, ids),
    ):
        objects[obj_id].append(load_value(ObjectObservation, state))
    existing = {key: tuple(values) for key, *values in session.query(stored, (ids,))}
    rows = []
    for i in ids:
        values = tuple(
            list(v) if isinstance(v, tuple) else v for v in astuple(row(objects[i], skews))
        )
        if existing.get(i) != values:
            rows.append((i, *values))
    return rows


def _messages_showing(session: Session, docids: list[str], skip: set[str]) -> list[tuple]:
    """(id, chat, posted_utc) of the stored messages that show these media, but `skip`."""
    if not docids:
        return []
    rows = session.query(
        "SELECT id, chat, posted_utc FROM messages"
        " WHERE media && %s::text[] AND media <> '{}' ORDER BY id",
        (docids,),
    )
    return [row for row in rows if row[0] not in skip]


def _write_users(session: Session, handles: list[str], next_seq) -> list[tuple]:
    """A user's display name is the one on their latest message, in any chat: a function
    of the messages, not of which host's event came last."""
    if not handles:
        return []
    # One index probe per handle (messages_author, backwards), not all their messages.
    latest = dict(
        session.query(
            "SELECT h.handle, m.author_name FROM unnest(%s::text[]) AS h(handle)"
            " CROSS JOIN LATERAL (SELECT author_name FROM messages"
            " WHERE lower(author) = h.handle ORDER BY posted_utc DESC, id DESC LIMIT 1) m",
            (handles,),
        )
    )
    existing = dict(
        session.query("SELECT handle, display_name FROM users WHERE handle = ANY(%s)", (handles,))
    )
    rows, changes = [], []
    for handle in handles:
        if handle not in latest or existing.get(handle) == latest[handle]:
            continue
        s = next_seq()
        rows.append((handle, latest[handle], s))
        changes.append((s, "user", handle, None, None))
    session.upsert(
        "users",
        ("handle", "display_name", "change_seq"),
        rows,
        ("handle",),
        ("display_name", "change_seq"),
    )
    return changes


def _changed_revisions(
    upserted: list[CanonicalMessage], before: Mapping[str, CanonicalMessage]
) -> tuple[list[str], list[tuple]]:
    """The messages whose revision rows differ from their version before, and their rows
    (a host's copy joining a message changes its observations, rarely its revisions)."""
    revised, rows = [], []
    for m in upserted:
        new = revision_rows(m)
        old = before.get(m.id)
        if old is None or revision_rows(old) != new:
            revised.append(m.id)
            rows.extend(new)
    return revised, rows


def _changed_observations(
    upserted: list[CanonicalMessage], before: Mapping[str, CanonicalMessage]
) -> list[tuple]:
    """The observation rows that differ from the ones the messages' versions before left:
    most stay where they were."""
    rows = []
    for m in upserted:
        old = set(observation_rows(before[m.id])) if m.id in before else set()
        rows.extend(r for r in observation_rows(m) if r not in old)
    return rows
