"""The consumer's positions in the raw topic, kept in the store's `offsets` table.

Kafka's own offset commits are never used: the next offset of every partition is a row
written in the batch's transaction, so the data and the position it belongs to commit
together. A batch first claims its partitions (`claim`: their rows locked in sorted order
and checked against the positions it was read from) and finally moves them (`advance`). The
consumer seeks to `stored_offsets`; a replay reads the live store's with `read_offsets`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import psycopg
from psycopg import sql

from chatchannels.processors.batch import RawRecord
from chatchannels.processors.pg.session import Session

# The consumer name the offsets are stored under unless told otherwise.
DEFAULT_CONSUMER = "chatchannels-processor"


class OffsetConflict(Exception):
    """The stored position of a partition is not the one this batch was read from."""

    def __init__(self, partition: int, expected: int, stored: int) -> None:
        super().__init__(f"partition {partition}: expected offset {expected}, stored {stored}")
        self.partition, self.expected, self.stored = partition, expected, stored


def stored_offsets(conn: psycopg.Connection, consumer: str, topic: str) -> dict[int, int]:
    """The consumer's next offset per partition of `topic`, in the connection's schema."""
    rows = conn.execute(
        "SELECT partition, next_offset FROM offsets WHERE consumer = %s AND topic = %s",
        (consumer, topic),
    ).fetchall()
    return dict(rows)


def read_offsets(dsn: str, schema: str, consumer: str, topic: str) -> dict[int, int] | None:
    """The consumer's stored next offsets of `topic` in `schema`, None when it has none."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        table = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".offsets',)).fetchone()[0]
        if table is None:
            return None
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        found = stored_offsets(conn, consumer, topic)
    return dict(sorted(found.items())) or None


def claim(session: Session, consumer: str, topic: str, expected: Mapping[int, int]) -> None:
    """Lock the partitions' rows (sorted, so that instances never deadlock), created at 0 if
    new, and check they still hold the positions the batch was read from: OffsetConflict
    otherwise (another instance got there first; the caller rolls back and seeks to the
    stored offsets)."""
    conn = session.conn
    parts = sorted(expected)
    conn.execute(
        "INSERT INTO offsets (consumer, topic, partition, next_offset)"
        " SELECT %s, %s, p, 0 FROM unnest(%s::int[]) AS p ON CONFLICT DO NOTHING",
        (consumer, topic, parts),
    )
    stored = conn.execute(
        "SELECT partition, next_offset FROM offsets"
        " WHERE consumer = %s AND topic = %s AND partition = ANY(%s)"
        " ORDER BY partition FOR UPDATE",
        (consumer, topic, parts),
    ).fetchall()
    for partition, next_offset in stored:
        if next_offset != expected[partition]:
            raise OffsetConflict(partition, expected[partition], next_offset)


def advance(
    session: Session, consumer: str, topic: str, records: Sequence[RawRecord]
) -> dict[int, int]:
    """Move each partition past its last record of the batch (queued); returns the new next
    offsets."""
    last: dict[int, int] = {}
    counts: Counter[int] = Counter()
    for r in records:
        last[r.partition] = max(last.get(r.partition, -1), r.offset)
        counts[r.partition] += 1
    session.write_many(
        "UPDATE offsets SET next_offset = %s, consumed = consumed + %s, advanced_utc = now()"
        " WHERE consumer = %s AND topic = %s AND partition = %s",
        [(last[p] + 1, counts[p], consumer, topic, p) for p in sorted(last)],
    )
    return {p: o + 1 for p, o in last.items()}
