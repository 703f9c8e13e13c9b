"""The imported files' evidence: the ids their copies share, and each file's clock offset.

An imported file (main.db, an export) has no clock of its own; its offset is estimated from
the ids it shares with other files (file_clocks.py). A batch with import events reads the
stored copies of its ids and the per-file summaries under one lock, and writes the files'
evidence after it, queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatchannels.processors import file_clocks
from chatchannels.processors.batch import Decoded, import_evidence
from chatchannels.processors.file_clocks import FileEstimate, FileUpdate
from chatchannels.processors.pg.locks import files_lock
from chatchannels.processors.pg.session import Session


def update_files(session: Session, decoded: Sequence[Decoded]) -> tuple[set[str], FileUpdate]:
    """The import hosts whose clocks the batch sets (its own and those whose offset its
    shared ids moved), and the files' evidence after the batch (file_clocks.py). Reads
    the stored copies of the batch's ids only, and the per-file summaries (a few rows per
    two files), never all the shared ids."""
    batch_first, batch_copies = import_evidence(decoded)
    if not batch_first:
        return set(), FileUpdate()
    session.query("SELECT pg_advisory_xact_lock(%s)", (files_lock(session.schema),))
    first: dict[str, float | None] = {}
    estimates: dict[str, FileEstimate] = {}
    for host, broker, offset, samples in session.query(
        "SELECT host, first_broker_utc, offset_s, samples FROM proc_file_hosts"
    ):
        first[host] = broker
        estimates[host] = FileEstimate(offset, samples)
    pairs = {
        (a, b, d): n
        for a, b, d, n in session.query(
            "SELECT host_a, host_b, diff_s, copies FROM proc_file_pairs"
        )
    }
    stored: dict[str, dict[str, int]] = {}
    if batch_copies:
        # One index probe per id (OFFSET 0 keeps the subquery a probe), not a join: the
        # planner would hash the whole table, every batch, as it grows. Without JIT:
        # before the table's first ANALYZE the planner guesses ~200 rows a probe and
        # compiles the query, which costs far more than running it.
        (jit,) = session.query("SELECT current_setting('jit')").fetchone()
        session.query("SELECT set_config('jit', 'off', true)")
        for xid, host, timestamp in session.query(
            "SELECT x.xid, s.host, s.ts FROM unnest(%b::text[]) AS x(xid)"
            ' CROSS JOIN LATERAL (SELECT host, "timestamp" AS ts FROM proc_shared_ids'
            " WHERE xid = x.xid OFFSET 0) s",
            (sorted(batch_copies),),
        ):
            stored.setdefault(xid, {})[host] = timestamp
        session.query("SELECT set_config('jit', %s, true)", (jit,))
    update = file_clocks.update_files(first, estimates, pairs, stored, batch_first, batch_copies)
    return set(batch_first) | update.changed, update


def write_files(session: Session, update: FileUpdate) -> None:
    # The batch read the stored copies of its ids under the files' lock, which it holds: an
    # id that had none has no row to meet, and is COPYed straight in.
    new, known = [], []
    for xid, held in update.copies.items():
        (new if xid in update.new_ids else known).extend((xid, h, ts) for h, ts in held.items())
    session.upsert(
        "proc_shared_ids",
        ("xid", "host", '"timestamp"'),
        known,
        conflict=("xid", "host"),
        update=('"timestamp"',),
        fresh=new,
    )
    session.upsert(
        "proc_file_pairs",
        ("host_a", "host_b", "diff_s", "copies"),
        [(*pair, n) for pair, n in sorted(update.pairs.items()) if n],
        conflict=("host_a", "host_b", "diff_s"),
        update=("copies",),
    )
    gone = [pair for pair, n in sorted(update.pairs.items()) if not n]
    if gone:
        session.write_many(
            "DELETE FROM proc_file_pairs WHERE host_a = %s AND host_b = %s AND diff_s = %s",
            gone,
        )
    hosts = sorted(update.ranked | update.changed)
    session.upsert(
        "proc_file_hosts",
        ("host", "first_broker_utc", "offset_s", "samples"),
        [
            (h, update.first_broker.get(h), e.offset_s, e.samples)
            for h in hosts
            for e in [update.estimates[h]]
        ],
        conflict=("host",),
        update=("first_broker_utc", "offset_s", "samples"),
    )
