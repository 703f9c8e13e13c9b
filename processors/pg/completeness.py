"""The `seq_runs` table (migration 0008): what a batch adds to it, and reading it back.

A batch's own runs are computed in pure code (completeness.batch_runs); one statement then
takes the stored runs they touch or adjoin out of the table and puts back the merged runs,
so the table keeps one row per maximal run, whatever the order the records came in.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from chatchannels.processors.completeness import ChatCapture, Completeness, Run, assess
from chatchannels.processors.pg.session import Session

# Gaps and islands: a stored run the batch's runs overlap or adjoin is deleted and merged
# with them; a run starts a new island when it begins after every earlier one's end + 1.
_RECORD = """
WITH new AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[],
                         %s::float8[], %s::float8[], %s::text[])
        AS n(host, session, first_seq, last_seq, first_s, last_s, source)
), taken AS (
    DELETE FROM seq_runs r USING new n
    WHERE r.host = n.host AND r.session = n.session
      AND r.first_seq <= n.last_seq + 1 AND r.last_seq >= n.first_seq - 1
    RETURNING r.host, r.session, r.first_seq, r.last_seq, r.first_utc, r.last_utc, r.source
), every_run AS (
    SELECT host, session, first_seq, last_seq, to_timestamp(first_s) AS first_utc,
           to_timestamp(last_s) AS last_utc, source FROM new
    UNION ALL SELECT * FROM taken
), starts AS (
    SELECT *, CASE WHEN first_seq <= 1 + max(last_seq) OVER (
                   PARTITION BY host, session ORDER BY first_seq, last_seq
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
              THEN 0 ELSE 1 END AS starts
    FROM every_run
), islands AS (
    SELECT *, sum(starts) OVER (
                  PARTITION BY host, session ORDER BY first_seq, last_seq
                  ROWS UNBOUNDED PRECEDING) AS island
    FROM starts
)
INSERT INTO seq_runs (host, session, first_seq, last_seq, first_utc, last_utc, source)
SELECT host, session, min(first_seq), max(last_seq), min(first_utc), max(last_utc),
       min(source)
FROM islands GROUP BY host, session, island
"""


def record_runs(session: Session, runs: Sequence[Run]) -> None:
    """Merge a batch's runs into the table (queued: one statement)."""
    if not runs:
        return
    session.write(
        _RECORD,
        (
            [r.host for r in runs],
            [r.session for r in runs],
            [r.first_seq for r in runs],
            [r.last_seq for r in runs],
            [r.first_utc for r in runs],
            [r.last_utc for r in runs],
            [r.source for r in runs],
        ),
    )


def read_runs(conn: psycopg.Connection) -> list[Run]:
    return [
        Run(*row)
        for row in conn.execute(
            "SELECT host, session, first_seq, last_seq, extract(epoch FROM first_utc)::float8,"
            " extract(epoch FROM last_utc)::float8, source FROM seq_runs"
            " ORDER BY host, session, first_seq"
        )
    ]


def read_chat_captures(conn: psycopg.Connection) -> list[ChatCapture]:
    """Per chat and host, the posted times of the messages the host captured."""
    return [
        ChatCapture(*row)
        for row in conn.execute(
            "SELECT m.chat, o.host, extract(epoch FROM min(m.posted_utc))::float8,"
            " extract(epoch FROM max(m.posted_utc))::float8, count(*)"
            " FROM observations o JOIN messages m ON m.id = o.message_id"
            " GROUP BY m.chat, o.host ORDER BY m.chat, o.host"
        )
    ]


def read_completeness(
    conn: psycopg.Connection, now_utc: float, silent_after_s: float
) -> Completeness:
    """The whole report from one snapshot of the store (the connection's schema)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        runs, chats = read_runs(conn), read_chat_captures(conn)
    return assess(runs, chats, now_utc, silent_after_s)
