"""The processor's coordinator: one batch, one transaction, in the design's order of steps.

`Store.apply_batch` is one transaction that

1. claims the batch's partitions: locks their rows in `offsets` (sorted) and checks they still
   hold the positions the consumer started the batch from (`OffsetConflict` otherwise: another
   instance got there first, the caller rolls back and seeks to the stored offsets);
2. decodes the records; for imported files' events, under one lock, counts their shared ids
   and estimates the files' offsets (file_clocks.py); loads the clocks and host messages they
   name, folds them (batch.py), writes what changed, keeps undecodable records in
   dead_letters, and merges the batch's runs of each host's sequence numbers, dead letters'
   too, into seq_runs (completeness.py);
3. takes a transaction-scoped advisory lock per touched group (chat, author), in sorted key
   order so that instances never deadlock, reloads each group's host messages, including the
   ones other instances committed, and recomputes it (group_index.py, incrementally, as
   engine.recompute_group would);
4. takes the change-stream lock, hands out change_seq, writes messages, revisions,
   observations, chats, media, users and changes (a media row that changed announces the
   stored messages showing it), NOTIFYs (delivered on commit), moves the offsets.

Everything is in one transaction, so a crash at any point leaves either the whole batch or
none of it, and the consumer resumes from the offsets that the data belongs to.
The steps are in `Store._steps`, in that order; the SQL is in the adapters beside this
module, one job each (session, offsets, files, state, groups, changes, deadletters, stats,
completeness),
which never call back here. Driver errors stay psycopg's (the consumer retries
OperationalError, the only transient kind here).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from chatchannels.event_signing import Verifier
from chatchannels.processors.batch import (
    Decoded,
    Folded,
    RawRecord,
    clock_track,
    decode_record,
    fold_records,
    needed_keys,
    refreshing_hosts,
)
from chatchannels.processors.completeness import batch_runs
from chatchannels.processors.file_clocks import import_clocks
from chatchannels.processors.matching import DEFAULT_TOLERANCE_S
from chatchannels.processors.pg import (
    changes,
    completeness,
    deadletters,
    files,
    offsets,
    state,
    stats,
)
from chatchannels.processors.pg.deadletters import DeadLetter, DeadLetterCount, RedriveResult
from chatchannels.processors.pg.groups import Groups
from chatchannels.processors.pg.migrate import set_schema
from chatchannels.processors.pg.session import PausedCollector, Session


@dataclass(frozen=True)
class BatchResult:
    records: int
    dead_letters: int
    changes: int
    next_offsets: dict[int, int]
    # For the processor's metrics: dead letters by kind, and the clock offsets (skew_s) of
    # the hosts whose clocks the batch moved.
    dead_reasons: dict[str, int] = field(default_factory=dict)
    clock_offsets: dict[str, float] = field(default_factory=dict)


class Store:
    """One connection's view of the canonical store in `schema`, for consumer `consumer`."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        consumer: str,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        cache_members: int = 2_000_000,
    ) -> None:
        self.conn = conn
        self.consumer = consumer
        self.tolerance_s = tolerance_s
        self.session = Session(conn)
        self._collector = PausedCollector()
        self.groups = Groups(self.session, tolerance_s, cache_members)
        # Seconds per phase (Session.timed), summed over the store's life.
        self.timings = self.session.timings
        self.counts = self.groups.counts

    @classmethod
    def connect(
        cls, dsn: str, schema: str = "public", *, synchronous_commit: bool = True, **kwargs: Any
    ) -> Store:
        """`synchronous_commit=False` (a replay) lets a commit return before its WAL is on
        disk: a crash can lose the last batches, never part of one, and their offsets go with
        them, so the rebuild goes on from where it stands; anything committed synchronously
        later (the swap) flushes all of it."""
        conn = psycopg.connect(dsn, autocommit=True)
        set_schema(conn, schema)
        if not synchronous_commit:
            conn.execute("SET synchronous_commit = off")
        return cls(conn, **kwargs)

    def close(self) -> None:
        self.session.close()
        self.groups.forget()

    # -- the batch --------------------------------------------------------------------------

    def apply_batch(
        self,
        topic: str,
        records: Sequence[RawRecord],
        expected: Mapping[int, int],
        decoded: Sequence[Decoded] | None = None,
    ) -> BatchResult:
        """Apply records (each partition's in offset order) read from the positions
        `expected` (partition -> next offset), in one transaction, with their `decoded`
        results if the caller has them already (the consumer's, signatures checked;
        without, records are decoded unchecked: records made in memory by tests and benches).
        Raises OffsetConflict (nothing written) if another instance moved a partition
        meanwhile."""
        with self._collector.paused(), self.session.transaction():
            folded, changed, next_offsets = self._steps(records, decoded, topic, expected)
            committing = time.perf_counter()
        self.timings["commit"] += time.perf_counter() - committing
        return BatchResult(
            len(records),
            len(folded.dead),
            changed,
            next_offsets,
            dict(Counter(err.kind for _, err in folded.dead)),
            {host: clock.skew_s for host, clock in folded.clocks.items()},
        )

    def _steps(
        self,
        records: Sequence[RawRecord],
        decoded: Sequence[Decoded] | None,
        topic: str | None,
        expected: Mapping[int, int] | None = None,
    ) -> tuple[Folded, int, dict[int, int]]:
        """A batch's steps in order, inside the caller's transaction. Without a `topic` (a
        redrive: records consumed long ago) no offset is claimed or moved."""
        s, timed = self.session, self.session.timed
        if topic is not None:
            assert expected is not None
            parts = {r.partition for r in records}
            offsets.claim(s, self.consumer, topic, {p: expected[p] for p in parts})
        if decoded is None:
            with timed("decode"):
                decoded = [decode_record(r) for r in records]
        with timed("file clocks"):
            import_hosts, file_update = files.update_files(s, decoded)
        with timed("load state"):
            hosts, message_keys, object_keys = needed_keys(decoded)
            clocks = state.load_clocks(s, hosts | import_hosts)
            imported = import_clocks(sorted(import_hosts), file_update.estimates, clocks)
            host_messages = state.load_host_messages(s, message_keys)
            track = clock_track(decoded, clocks, imported)
            refreshing = refreshing_hosts(track, clocks, imported)
            if refreshing:
                host_messages.update(state.load_refreshable(s, refreshing, clocks))
            objects = state.load_objects(s, object_keys)
        with timed("fold"):
            folded = fold_records(decoded, track, clocks, host_messages, objects, imported)
        with timed("load groups"):
            locked = self.groups.lock(folded)
        # Queued (Session's writes): PostgreSQL writes the state while the groups are
        # recomputed.
        with timed("write state"):
            completeness.record_runs(
                s, batch_runs((d.position, d.record.broker_utc) for d in decoded)
            )
            deadletters.write_dead_letters(s, folded)
            files.write_files(s, file_update)
            state.write_clocks(s, folded)
            state.write_host_messages(s, folded)
            state.write_objects(s, folded)
        with timed("recompute groups"):
            recomputed = self.groups.recompute(folded, locked)
        chats = {r.group[0] for r in recomputed if r.change.upserted or r.change.removed}
        chats |= {key[2] for key in folded.objects if key[1] == "CHAT"}
        media = {key[2] for key in folded.objects if key[1] == "MEDIA"}
        with timed("write canonical"):
            changed = changes.publish(s, recomputed, chats, media, folded.first_seen)
        next_offsets = {} if topic is None else offsets.advance(s, self.consumer, topic, records)
        return folded, changed, next_offsets

    # -- dead letters -----------------------------------------------------------------------

    def redrive_dead_letters(
        self, verifier: Verifier, ids: Sequence[int] | None = None
    ) -> RedriveResult:
        """Check and decode the dead letters (all not yet redriven, or `ids`) again, with the
        signatures they were consumed with (`verifier` as the consumer's), in log order, in one
        transaction: those accepted now are applied and marked redriven, the others keep
        their row with the current reason. Their offsets were consumed long ago, so no
        position moves. A host's clock and message folding only move forward (seq), so a
        redriven event older than what its host has sent since adds its message's content
        but no clock evidence."""
        with self.session.transaction():
            records = deadletters.take_for_redrive(self.session, ids)
            decoded = [decode_record(r, verifier) for r in records.values()]
            folded, changed, _ = self._steps(list(records.values()), decoded, topic=None)
            refused = {(r.topic, r.partition, r.offset) for r, _ in folded.dead}
            accepted = [
                i for i, r in records.items() if (r.topic, r.partition, r.offset) not in refused
            ]
            deadletters.mark_redriven(self.session, accepted)
        still_bad = tuple(i for i in records if i not in set(accepted))
        return RedriveResult(tuple(accepted), still_bad, changed)

    def dead_letters(self, include_redriven: bool = False) -> list[DeadLetter]:
        return deadletters.list_dead_letters(self.conn, include_redriven)

    def count_dead_letters(self) -> list[DeadLetterCount]:
        return deadletters.count_dead_letters(self.conn)

    # -- reading ----------------------------------------------------------------------------

    def stored_offsets(self, topic: str) -> dict[int, int]:
        return offsets.stored_offsets(self.conn, self.consumer, topic)

    def read_stats(self, topic: str) -> dict[str, Any]:
        """Counts for `chatchannels stats` (one snapshot: REPEATABLE READ)."""
        return stats.read_stats(self.conn, self.consumer, topic)
