"""Dead letters: the raw records the processor refused, kept with the reason.

A batch writes the records its decoder refused (queued, with the batch's state); an operator
lists them, and a redrive takes the pending ones, locked, to decode them again with the
current decoder, and marks those it accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from chatchannels.event_signing import SIGNATURE_HEADER, SIGNER_HEADER, header
from chatchannels.processors.batch import Folded, RawRecord
from chatchannels.processors.pg.session import Session
from chatchannels.processors.rows import utc_datetime


@dataclass(frozen=True)
class DeadLetter:
    id: int
    topic: str
    partition: int
    offset: int
    kind: str
    reason: str
    host: str | None
    seq: int | None
    created_utc: datetime
    redriven_utc: datetime | None


@dataclass(frozen=True)
class DeadLetterCount:
    """The dead letters of one kind (DecodeError.kind), and the newest one as an example."""

    kind: str
    total: int
    pending: int
    latest_id: int
    latest_reason: str


@dataclass(frozen=True)
class RedriveResult:
    redriven: tuple[int, ...]
    still_bad: tuple[int, ...]
    changes: int


def write_dead_letters(session: Session, folded: Folded) -> None:
    if not folded.dead:
        return
    session.write_many(
        'INSERT INTO dead_letters (topic, partition, "offset", key, value, reason,'
        " broker_utc, kind, host, seq, signer, signature)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ' ON CONFLICT (topic, partition, "offset") DO UPDATE SET reason = EXCLUDED.reason,'
        " kind = EXCLUDED.kind, host = EXCLUDED.host, seq = EXCLUDED.seq",
        [
            (
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value,
                str(err),
                utc_datetime(r.broker_utc),
                err.kind,
                err.host,
                err.seq,
                header(r.headers, SIGNER_HEADER),
                header(r.headers, SIGNATURE_HEADER),
            )
            for r, err in folded.dead
        ],
    )


def list_dead_letters(conn: psycopg.Connection, include_redriven: bool = False) -> list[DeadLetter]:
    rows = conn.execute(
        'SELECT id, topic, partition, "offset", kind, reason, host, seq, created_utc,'
        " redriven_utc FROM dead_letters WHERE %s OR redriven_utc IS NULL ORDER BY id",
        (include_redriven,),
    )
    return [DeadLetter(*row) for row in rows]


def count_dead_letters(conn: psycopg.Connection) -> list[DeadLetterCount]:
    """Dead letters counted by kind, in kind order (`chatchannels stats --dead-letters`)."""
    rows = conn.execute(
        "SELECT d.kind, d.total, d.pending, l.id, l.reason FROM (SELECT kind, count(*) AS total,"
        " count(*) FILTER (WHERE redriven_utc IS NULL) AS pending FROM dead_letters"
        " GROUP BY kind) AS d CROSS JOIN LATERAL (SELECT id, reason FROM dead_letters AS x"
        " WHERE x.kind = d.kind ORDER BY id DESC LIMIT 1) AS l ORDER BY d.kind"
    )
    return [DeadLetterCount(*row) for row in rows]


def take_for_redrive(session: Session, ids: Sequence[int] | None) -> dict[int, RawRecord]:
    """The dead letters not yet redriven (all, or `ids`) by id, in log order, locked until
    the transaction ends."""
    rows = session.query(
        'SELECT id, topic, partition, "offset", key, value,'
        " extract(epoch FROM broker_utc)::float8, signer, signature FROM dead_letters"
        " WHERE redriven_utc IS NULL AND (%s::bigint[] IS NULL OR id = ANY(%s))"
        ' ORDER BY topic, partition, "offset" FOR UPDATE',
        (ids, ids),
    ).fetchall()
    return {row[0]: RawRecord(*row[1:7], _headers(row[7], row[8])) for row in rows}


def _headers(signer: bytes | None, signature: bytes | None) -> tuple[tuple[str, bytes], ...]:
    """The record's signature headers as it carried them (none, one or both)."""
    found = ((SIGNER_HEADER, signer), (SIGNATURE_HEADER, signature))
    return tuple((name, value) for name, value in found if value is not None)


def mark_redriven(session: Session, accepted: list[int]) -> None:
    session.write("UPDATE dead_letters SET redriven_utc = now() WHERE id = ANY(%s)", (accepted,))
