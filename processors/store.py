"""The processor's PostgreSQL adapter: state in, canonical archive out, exactly once.

`Store.apply_batch` is one transaction that

1. claims the batch's partitions: locks their rows in `offsets` (sorted) and checks they still
   hold the positions the consumer started the batch from (`OffsetConflict` otherwise: another
   instance got there first, the caller rolls back and seeks to the stored offsets);
2. decodes the records; for imported files' events, under one lock, counts their shared ids
   and estimates the files' offsets (file_clocks.py); loads the clocks and host messages they
   name, folds them (batch.py), writes what changed, and keeps undecodable records in
   dead_letters;
3. takes a transaction-scoped advisory lock per touched group (chat, author), in sorted key
   order so that instances never deadlock, reloads each group's host messages, including the
   ones other instances committed, and recomputes it (group_index.py, incrementally, as
   engine.recompute_group would);
4. takes the change-stream lock, hands out change_seq, writes messages, revisions,
   observations, chats, media, users and changes (a media row that changed announces the
   stored messages showing it), NOTIFYs (delivered on commit), moves the offsets.

Everything is in one transaction, so a crash at any point leaves either the whole batch or
none of it, and the consumer resumes from the offsets that the data belongs to.
All SQL of the processor lives here; driver errors stay psycopg's (the consumer retries
OperationalError, the only transient kind here).
"""

from __future__ import annotations

import gc
import hashlib
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from chatchannels.processors.batch import (
    ClockEstimate,
    Decoded,
    Folded,
    GroupKey,
    RawRecord,
    clock_track,
    correction_epochs,
    decode_record,
    fold_records,
    import_evidence,
    needed_keys,
    refreshing_hosts,
)
from chatchannels.processors.canonical import CanonicalMessage, GroupChange
from chatchannels.processors.clocks import HostClock
from chatchannels.processors.content import normalise_handle
from chatchannels.processors.file_clocks import (
    FileEstimate,
    FileUpdate,
    import_clocks,
    update_files,
)
from chatchannels.processors.group_index import GroupIndex
from chatchannels.processors.matching import DEFAULT_TOLERANCE_S
from chatchannels.processors.migrate import use_schema
from chatchannels.processors.observations import HostMessage, ObjectObservation
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
from chatchannels.processors.snapshots import dump_value, load_value

NOTIFY_CHANNEL = "chatchannels_changes"
# The consumer name the offsets are stored under unless told otherwise.
DEFAULT_CONSUMER = "chatchannels-processor"
# pg_advisory_xact_lock keys: one fixed key for the change stream; groups hash into the rest.
_CHANGES_LOCK = 0x63686368616E6765  # "chchange"
# Held by every batch with import events, from before it reads the files' evidence to its
# commit: a batch must see every copy of its shared ids that any other batch committed.
_FILES_LOCK = 0x6368666966696C65  # "chfifile"


class OffsetConflict(Exception):
    """The stored position of a partition is not the one this batch was read from."""

    def __init__(self, partition: int, expected: int, stored: int) -> None:
        super().__init__(f"partition {partition}: expected offset {expected}, stored {stored}")
        self.partition, self.expected, self.stored = partition, expected, stored


@dataclass(frozen=True)
class BatchResult:
    records: int
    dead_letters: int
    changes: int
    next_offsets: dict[int, int]


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
class RedriveResult:
    redriven: tuple[int, ...]
    still_bad: tuple[int, ...]
    changes: int


@dataclass(frozen=True)
class _Recomputed:
    group: GroupKey
    change: GroupChange
    # The messages before, by id, that the change replaces or removes.
    before: dict[str, CanonicalMessage]


@dataclass(frozen=True)
class _LockedGroups:
    groups: list[GroupKey]
    indexes: dict[GroupKey, GroupIndex]
    # The groups not in the cache: their stored host messages and messages.
    stored: dict[GroupKey, tuple[dict[tuple[str, str], HostMessage], list[CanonicalMessage]]]


@dataclass(frozen=True)
class _GroupState:
    version: uuid.UUID
    index: GroupIndex


class _GroupCache:
    """Recently recomputed groups, bounded by their number of host messages (LRU). An index
    grows in place, so each entry keeps the size it was counted with."""

    def __init__(self, max_members: int) -> None:
        self.max_members = max_members
        self.size = 0
        self.groups: OrderedDict[GroupKey, tuple[_GroupState, int]] = OrderedDict()

    def take(self, group: GroupKey) -> _GroupState | None:
        """Remove and return: an index being updated is in no state to be reused until the
        update is done and put back."""
        entry = self.groups.pop(group, None)
        if entry is None:
            return None
        self.size -= entry[1]
        return entry[0]

    def put(self, group: GroupKey, state: _GroupState) -> None:
        self.take(group)
        size = len(state.index.members)
        self.groups[group] = (state, size)
        self.size += size
        while self.size > self.max_members and len(self.groups) > 1:
            _, (_, evicted) = self.groups.popitem(last=False)
            self.size -= evicted


class _Writes:
    """Statements whose results the batch does not read, run in the order given on one
    thread while the batch goes on, so that PostgreSQL executes them while Python works on
    (a batch's state is written while its groups are recomputed). They share the batch's
    connection and transaction; every read waits for the writes before it (Store._query),
    so everything runs in the order the code states it."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="store-writes")
        self._pending: deque[Future[None]] = deque()

    def submit(self, write: Callable[[], None]) -> None:
        self._pending.append(self._thread.submit(write))

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def wait(self) -> None:
        """Until all have run; the first failure is raised."""
        while self._pending:
            self._pending[0].result()
            self._pending.popleft()

    def abandon(self) -> None:
        """After a failure: none of them may run after the transaction is rolled back."""
        for future in self._pending:
            future.cancel()
        wait_for(self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.abandon()
        self._thread.shutdown()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside a batch, and none of the state that outlives it
    afterwards. A batch allocates millions of container objects, and the processor's state
    (the group indexes' host messages, clusters and messages) lives for many batches: left
    to the collector, every full pass traverses all of it, a quarter of the processor's time
    at 200,000 events and growing with the state. So after a batch the young generations are
    collected once (the batch's own cyclic garbage) and whatever is still alive is frozen out
    of later passes (gc.freeze). Frozen objects are still freed when their last reference
    goes; only a cycle that became garbage after its freeze would stay, and the state makes
    no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.collect(1)
            gc.freeze()
            gc.enable()


def group_lock_key(group: GroupKey) -> int:
    """A signed 64-bit advisory lock key for a group, the same in every process."""
    digest = hashlib.blake2b("\x1f".join(group).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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
        self._cache = _GroupCache(cache_members)
        self._writes = _Writes()
        self.timings: Counter[str] = Counter()
        # How the batches' groups were read (the benchmark reads them): instances sharing
        # groups read back whatever the other one wrote since.
        self.counts: Counter[str] = Counter()

    @classmethod
    def connect(
        cls, dsn: str, schema: str = "public", *, synchronous_commit: bool = True, **kwargs: Any
    ) -> Store:
        """`synchronous_commit=False` (a replay) lets a commit return before its WAL is on
        disk: a crash can lose the last batches, never part of one, and their offsets go with
        them, so the rebuild goes on from where it stands; anything committed synchronously
        later (the swap) flushes all of it."""
        conn = psycopg.connect(dsn, autocommit=True)
        use_schema(conn, schema)
        if not synchronous_commit:
            conn.execute("SET synchronous_commit = off")
        return cls(conn, **kwargs)

    def close(self) -> None:
        self._writes.close()
        self.conn.close()
        # The groups are frozen out of the collector (_gc_paused): let them go now, even if
        # something still holds this store.
        self._cache = _GroupCache(self._cache.max_members)

    # -- offsets ----------------------------------------------------------------------------

    def stored_offsets(self, topic: str) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT partition, next_offset FROM offsets WHERE consumer = %s AND topic = %s",
            (self.consumer, topic),
        ).fetchall()
        return dict(rows)

    def _claim_offsets(self, topic: str, expected: Mapping[int, int]) -> None:
        parts = sorted(expected)
        self.conn.execute(
            "INSERT INTO offsets (consumer, topic, partition, next_offset)"
            " SELECT %s, %s, p, 0 FROM unnest(%s::int[]) AS p ON CONFLICT DO NOTHING",
            (self.consumer, topic, parts),
        )
        stored = self.conn.execute(
            "SELECT partition, next_offset FROM offsets"
            " WHERE consumer = %s AND topic = %s AND partition = ANY(%s)"
            " ORDER BY partition FOR UPDATE",
            (self.consumer, topic, parts),
        ).fetchall()
        for partition, next_offset in stored:
            if next_offset != expected[partition]:
                raise OffsetConflict(partition, expected[partition], next_offset)

    def _advance_offsets(self, topic: str, records: Sequence[RawRecord]) -> dict[int, int]:
        last: dict[int, int] = {}
        counts: Counter[int] = Counter()
        for r in records:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
            counts[r.partition] += 1
        self._write_many(
            "UPDATE offsets SET next_offset = %s, consumed = consumed + %s"
            " WHERE consumer = %s AND topic = %s AND partition = %s",
            [(last[p] + 1, counts[p], self.consumer, topic, p) for p in sorted(last)],
        )
        return {p: o + 1 for p, o in last.items()}

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
        results if the caller has them already. Raises OffsetConflict (nothing written) if
        another instance moved a partition meanwhile."""
        with _gc_paused(), self._transaction():
            self._claim_offsets(topic, {p: expected[p] for p in {r.partition for r in records}})
            if decoded is None:
                with self._timed("decode"):
                    decoded = [decode_record(r) for r in records]
            folded, changes = self._apply_decoded(decoded)
            next_offsets = self._advance_offsets(topic, records)
            committing = time.perf_counter()
        self.timings["commit"] += time.perf_counter() - committing
        return BatchResult(len(records), len(folded.dead), changes, next_offsets)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A transaction whose queued writes have all run before it commits, and none of
        which runs after it rolls back."""
        with self.conn.transaction():
            try:
                yield
                self._wait_for_writes()
            except BaseException:
                self._writes.abandon()
                raise

    def _wait_for_writes(self) -> None:
        if self._writes.busy:
            with self._timed("waiting for queued writes (within the phases)"):
                self._writes.wait()

    def _query(self, query: str, params: Sequence[Any] | None = None) -> psycopg.Cursor:
        """A statement whose result is read: after the writes queued before it."""
        self._wait_for_writes()
        return self.conn.execute(query, params)

    def _write(self, query: str, params: Sequence[Any] | None = None) -> None:
        self._writes.submit(lambda: self.conn.execute(query, params).close())

    def _write_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        def write() -> None:
            with self.conn.cursor() as cur:
                cur.executemany(query, rows)

        self._writes.submit(write)

    def _apply_decoded(self, decoded: Sequence[Decoded]) -> tuple[Folded, int]:
        with self._timed("file clocks"):
            import_hosts, files = self._update_files(decoded)
        with self._timed("load state"):
            hosts, message_keys, object_keys = needed_keys(decoded)
            clocks = self._load_clocks(hosts | import_hosts)
            imported = import_clocks(sorted(import_hosts), files.estimates, clocks)
            host_messages = self._load_host_messages(message_keys)
            track = clock_track(decoded, clocks, imported)
            refreshing = refreshing_hosts(track, clocks, imported)
            if refreshing:
                host_messages.update(self._load_refreshable(refreshing, clocks))
            objects = self._load_objects(object_keys)
        with self._timed("fold"):
            folded = fold_records(decoded, track, clocks, host_messages, objects, imported)
        with self._timed("load groups"):
            groups = self._lock_groups(folded)
        # Queued (_Writes): PostgreSQL writes the state while the groups are recomputed.
        with self._timed("write state"):
            self._write_dead_letters(folded)
            self._write_files(files)
            self._write_clocks(folded)
            self._write_host_messages(folded)
            self._write_objects(folded)
        with self._timed("recompute groups"):
            recomputed = self._recompute_groups(folded, groups)
        chats = {r.group[0] for r in recomputed if r.change.upserted or r.change.removed}
        chats |= {key[2] for key in folded.objects if key[1] == "CHAT"}
        media = {key[2] for key in folded.objects if key[1] == "MEDIA"}
        with self._timed("write canonical"):
            return folded, self._publish(recomputed, chats, media, folded.first_seen)

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        """Seconds spent per phase, summed over the store's life (the benchmark reads them)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] += time.perf_counter() - start

    # -- stats ------------------------------------------------------------------------------

    def read_stats(self, topic: str) -> dict[str, Any]:
        """Counts for `chatchannels stats` (one snapshot: REPEATABLE READ)."""
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

            def one(query: str, *params: Any) -> Any:
                return self.conn.execute(query, params).fetchone()[0]

            offsets = {
                p: (n, c)
                for p, n, c in self.conn.execute(
                    "SELECT partition, next_offset, consumed FROM offsets"
                    " WHERE consumer = %s AND topic = %s",
                    (self.consumer, topic),
                )
            }
            hosts = {
                host: {"offset_s": skew, "last_seq": seq, "host_messages": n or 0}
                for host, skew, seq, n in self.conn.execute(
                    "SELECT c.host, c.skew_s, c.last_seq, m.n FROM proc_host_clocks c"
                    " LEFT JOIN (SELECT host, count(*) AS n FROM proc_host_messages GROUP BY host)"
                    " m USING (host) ORDER BY c.host"
                )
            }
            return {
                "events_consumed": sum(c for _, c in offsets.values()),
                "next_offsets": {p: n for p, (n, _) in sorted(offsets.items())},
                "observations": one("SELECT count(*) FROM observations"),
                "messages": one("SELECT count(*) FROM messages"),
                "deleted_messages": one("SELECT count(*) FROM messages WHERE deleted"),
                "revisions": one("SELECT count(*) FROM revisions"),
                "merged_across_hosts": one(
                    "SELECT count(*) FROM (SELECT message_id FROM observations"
                    " GROUP BY message_id HAVING count(DISTINCT host) > 1) AS merged"
                ),
                "aliases": one("SELECT count(*) FROM message_aliases"),
                "chats": one("SELECT count(*) FROM chats"),
                "users": one("SELECT count(*) FROM users"),
                "last_change_seq": one("SELECT coalesce(max(change_seq), 0) FROM changes"),
                "dead_letters": one("SELECT count(*) FROM dead_letters"),
                "dead_letters_pending": one(
                    "SELECT count(*) FROM dead_letters WHERE redriven_utc IS NULL"
                ),
                "hosts": hosts,
            }

    # -- dead letters -----------------------------------------------------------------------

    def dead_letters(self, include_redriven: bool = False) -> list[DeadLetter]:
        rows = self.conn.execute(
            'SELECT id, topic, partition, "offset", kind, reason, host, seq, created_utc,'
            " redriven_utc FROM dead_letters WHERE %s OR redriven_utc IS NULL ORDER BY id",
            (include_redriven,),
        )
        return [DeadLetter(*row) for row in rows]

    def redrive_dead_letters(self, ids: Sequence[int] | None = None) -> RedriveResult:
        """Decode the dead letters (all not yet redriven, or `ids`) again, in log order, in one
        transaction: those accepted now are applied and marked redriven, the others keep
        their row with the current reason. Their offsets were consumed long ago, so no
        position moves. A host's clock and message folding only move forward (seq), so a
        redriven event older than what its host has sent since adds its message's content
        but no clock evidence."""
        with self._transaction():
            rows = self._query(
                'SELECT id, topic, partition, "offset", key, value,'
                " extract(epoch FROM broker_utc)::float8 FROM dead_letters"
                " WHERE redriven_utc IS NULL AND (%s::bigint[] IS NULL OR id = ANY(%s))"
                ' ORDER BY topic, partition, "offset" FOR UPDATE',
                (ids, ids),
            ).fetchall()
            records = {row[0]: RawRecord(*row[1:]) for row in rows}
            decoded = [decode_record(r) for r in records.values()]
            folded, changes = self._apply_decoded(decoded)
            refused = {(r.topic, r.partition, r.offset) for r, _ in folded.dead}
            accepted = [
                i for i, r in records.items() if (r.topic, r.partition, r.offset) not in refused
            ]
            self._write(
                "UPDATE dead_letters SET redriven_utc = now() WHERE id = ANY(%s)", (accepted,)
            )
        still_bad = tuple(i for i in records if i not in set(accepted))
        return RedriveResult(tuple(accepted), still_bad, changes)

    # -- state in ---------------------------------------------------------------------------

    def _load_clocks(self, hosts: set[str]) -> dict[str, HostClock]:
        rows = self._query(
            "SELECT host, state FROM proc_host_clocks WHERE host = ANY(%s)", (sorted(hosts),)
        )
        return {host: load_value(HostClock, state) for host, state in rows}

    def _update_files(self, decoded: Sequence[Decoded]) -> tuple[set[str], FileUpdate]:
        """The import hosts whose clocks the batch sets (its own and those whose offset its
        shared ids moved), and the files' evidence after the batch (file_clocks.py). Reads
        the stored copies of the batch's ids only, and the per-file summaries (a few rows per
        two files), never all the shared ids."""
        batch_first, batch_copies = import_evidence(decoded)
        if not batch_first:
            return set(), FileUpdate()
        self._query("SELECT pg_advisory_xact_lock(%s)", (_FILES_LOCK,))
        first: dict[str, float | None] = {}
        estimates: dict[str, FileEstimate] = {}
        for host, broker, offset, samples in self._query(
            "SELECT host, first_broker_utc, offset_s, samples FROM proc_file_hosts"
        ):
            first[host] = broker
            estimates[host] = FileEstimate(offset, samples)
        pairs = {
            (a, b, d): n
            for a, b, d, n in self._query(
                "SELECT host_a, host_b, diff_s, copies FROM proc_file_pairs"
            )
        }
        stored: dict[str, dict[str, int]] = {}
        if batch_copies:
            # One index probe per id (OFFSET 0 keeps the subquery a probe), not a join: the
            # planner would hash the whole table, every batch, as it grows. Without JIT:
            # before the table's first ANALYZE the planner guesses ~200 rows a probe and
            # compiles the query, which took 5-15 times as long as running it (measured).
            (jit,) = self._query("SELECT current_setting('jit')").fetchone()
            self._query("SELECT set_config('jit', 'off', true)")
            for xid, host, timestamp in self._query(
                "SELECT x.xid, s.host, s.ts FROM unnest(%s::text[]) AS x(xid)"
                ' CROSS JOIN LATERAL (SELECT host, "timestamp" AS ts FROM proc_shared_ids'
                " WHERE xid = x.xid OFFSET 0) s",
                (sorted(batch_copies),),
            ):
                stored.setdefault(xid, {})[host] = timestamp
            self._query("SELECT set_config('jit', %s, true)", (jit,))
        update = update_files(first, estimates, pairs, stored, batch_first, batch_copies)
        return set(batch_first) | update.changed, update

    def _load_host_messages(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], HostMessage]:
        rows = self._host_message_rows("m.state", keys)
        return {(h, i): load_value(HostMessage, s) for h, i, s in rows}

    def _host_message_rows(self, columns: str, keys: set[tuple[str, str]]) -> list[tuple]:
        """(host, local_id, *columns) of the stored host messages with these keys."""
        if not keys:
            return []
        hosts, ids = zip(*sorted(keys), strict=True)
        return self._query(
            f"SELECT m.host, m.local_id, {columns} FROM proc_host_messages m"
            " JOIN unnest(%s::text[], %s::text[]) AS k(host, local_id) USING (host, local_id)",
            (list(hosts), list(ids)),
        ).fetchall()

    def _load_refreshable(
        self, hosts: set[str], clocks: Mapping[str, HostClock]
    ) -> dict[tuple[str, str], HostMessage]:
        """The hosts' messages with a correction in the host's current epoch or none."""
        ordered = sorted(hosts)
        steps = [clocks[h].steps if h in clocks else 0 for h in ordered]
        rows = self._query(
            "SELECT m.host, m.local_id, m.state FROM proc_host_messages m"
            " JOIN unnest(%s::text[], %s::int[]) AS c(host, steps) USING (host)"
            " WHERE m.epoch_min = -1 OR m.epoch_max >= c.steps",
            (ordered, steps),
        )
        return {(h, i): load_value(HostMessage, s) for h, i, s in rows}

    def _load_objects(self, keys: set[tuple[str, str, str]]) -> dict[tuple, ObjectObservation]:
        if not keys:
            return {}
        hosts, objs, ids = zip(*sorted(keys), strict=True)
        rows = self._query(
            "SELECT o.host, o.obj, o.obj_id, o.state FROM proc_objects o"
            " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(host, obj, obj_id)"
            " USING (host, obj, obj_id)",
            (list(hosts), list(objs), list(ids)),
        )
        return {(h, o, i): load_value(ObjectObservation, s) for h, o, i, s in rows}

    # -- state out --------------------------------------------------------------------------

    def _write_dead_letters(self, folded: Folded) -> None:
        if not folded.dead:
            return
        self._write_many(
            'INSERT INTO dead_letters (topic, partition, "offset", key, value, reason,'
            " broker_utc, kind, host, seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
                )
                for r, err in folded.dead
            ],
        )

    def _write_files(self, update: FileUpdate) -> None:
        self._upsert(
            "proc_shared_ids",
            ("xid", "host", '"timestamp"'),
            [(x, h, ts) for x, held in update.copies.items() for h, ts in held.items()],
            conflict=("xid", "host"),
            update=('"timestamp"',),
        )
        self._upsert(
            "proc_file_pairs",
            ("host_a", "host_b", "diff_s", "copies"),
            [(*pair, n) for pair, n in sorted(update.pairs.items()) if n],
            conflict=("host_a", "host_b", "diff_s"),
            update=("copies",),
        )
        gone = [pair for pair, n in sorted(update.pairs.items()) if not n]
        if gone:
            self._write_many(
                "DELETE FROM proc_file_pairs WHERE host_a = %s AND host_b = %s AND diff_s = %s",
                gone,
            )
        hosts = sorted(update.ranked | update.changed)
        self._upsert(
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

    def _write_clocks(self, folded: Folded) -> None:
        if folded.clocks:
            self._upsert(
                "proc_host_clocks",
                ("host", "last_seq", "skew_s", "state"),
                [(c.host, c.last_seq, c.skew_s, dump_value(c)) for c in folded.clocks.values()],
                conflict=("host",),
                update=("last_seq", "skew_s", "state"),
            )
        if folded.estimates:
            # An imported file's offset can move again while it has no new event (another
            # file's ids moved it): the estimate after its event `seq` is the latest.
            rows = {(e.host, e.seq): _estimate_row(e) for e in folded.estimates}
            self._upsert(
                "host_clocks",
                ("host", "seq", "offset_s", "samples", "steps"),
                list(rows.values()),
                conflict=("host", "seq"),
                update=("offset_s", "samples", "steps"),
            )

    def _write_host_messages(self, folded: Folded) -> None:
        rows = []
        for key, m in folded.host_messages.items():
            first = folded.first_seen.get(key)
            group = (m.chat, normalise_handle(m.author)) if m.is_complete else (None, None)
            rows.append(
                (
                    m.host,
                    m.local_id,
                    *group,
                    first.partition if first else -1,
                    first.offset if first else -1,
                    *correction_epochs(m),
                    dump_value(m),
                )
            )
        self._upsert(
            "proc_host_messages",
            (
                "host",
                "local_id",
                "chat",
                "author_key",
                "first_partition",
                "first_offset",
                "epoch_min",
                "epoch_max",
                "state",
            ),
            rows,
            conflict=("host", "local_id"),
            update=("chat", "author_key", "epoch_min", "epoch_max", "state"),
        )

    def _write_objects(self, folded: Folded) -> None:
        self._upsert(
            "proc_objects",
            ("host", "obj", "obj_id", "seq", "state"),
            [(*key, o.seq, dump_value(o)) for key, o in folded.objects.items()],
            conflict=("host", "obj", "obj_id"),
            update=("seq", "state"),
        )

    # -- groups -----------------------------------------------------------------------------

    def _lock_groups(self, folded: Folded) -> _LockedGroups:
        """Locks the batch's groups and reads them: from the cache where it holds the stored
        version, from the store otherwise (their host messages but the ones this batch
        changes, so they can be read before the batch's state is written)."""
        keyed = sorted((group_lock_key(g), g) for g in folded.groups)
        if not keyed:
            return _LockedGroups([], {}, {})
        self._write(
            "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k",
            ([k for k, _ in keyed],),
        )
        groups = [g for _, g in keyed]
        indexes = self._cached_indexes(groups)
        stored = self._load_groups([g for g in groups if g not in indexes], folded)
        return _LockedGroups(groups, indexes, stored)

    def _recompute_groups(self, folded: Folded, locked: _LockedGroups) -> list[_Recomputed]:
        groups = locked.groups
        if not groups:
            return []
        changed: dict[GroupKey, dict[tuple[str, str], HostMessage]] = {g: {} for g in groups}
        for key, message in folded.host_messages.items():
            if message.is_complete:
                changed[(message.chat, normalise_handle(message.author))][key] = message
        versions = [(g[0], g[1], uuid.uuid4()) for g in groups]
        self._upsert(
            "proc_groups",
            ("chat", "author_key", "version"),
            versions,
            ("chat", "author_key"),
            ("version",),
        )
        result = []
        for (*_, version), group in zip(versions, groups, strict=True):
            index = locked.indexes.get(group)
            if index is None:
                members, messages = locked.stored[group]
                index, change, before = GroupIndex.rebuild(
                    *group, self.tolerance_s, {**members, **changed[group]}, messages
                )
            else:
                change, before = index.update(changed[group])
            result.append(_Recomputed(group, change, before))
            # Valid only if this transaction commits: otherwise the stored version differs
            # and the next batch reloads the group.
            self._cache.put(group, _GroupState(version, index))
        return result

    def _cached_indexes(self, groups: list[GroupKey]) -> dict[GroupKey, GroupIndex]:
        """The cached groups whose stored version is the one cached: no other transaction
        has written them since. Taken out of the cache until their update is done."""
        stored_versions = {
            (c, a): v
            for c, a, v in self._query(
                "SELECT p.chat, p.author_key, p.version FROM proc_groups p"
                " JOIN unnest(%s::text[], %s::text[]) AS g(chat, author_key)"
                " USING (chat, author_key)",
                ([g[0] for g in groups], [g[1] for g in groups]),
            )
        }
        indexes = {}
        for group in groups:
            cached = self._cache.take(group)
            if cached is None:
                self.counts["groups read back: not cached"] += 1
            elif cached.version == stored_versions.get(group):
                indexes[group] = cached.index
            else:
                self.counts["groups read back: written by another transaction"] += 1
        self.counts["groups from the cache"] += len(indexes)
        return indexes

    def _load_groups(
        self, groups: list[GroupKey], folded: Folded
    ) -> dict[GroupKey, tuple[dict[tuple[str, str], HostMessage], list[CanonicalMessage]]]:
        """Each group's stored host messages (but those this batch changed) and messages."""
        loaded: dict[GroupKey, tuple[dict, list]] = {g: ({}, []) for g in groups}
        if not groups:
            return loaded
        chats, authors = [g[0] for g in groups], [g[1] for g in groups]
        for chat, author_key, host, local_id, state in self._query(
            "SELECT m.chat, m.author_key, m.host, m.local_id, m.state"
            " FROM proc_host_messages m JOIN unnest(%s::text[], %s::text[])"
            " AS g(chat, author_key) USING (chat, author_key)",
            (chats, authors),
        ):
            self.counts["host messages read back"] += 1
            # The rows this batch wrote are replaced by the batch's: not parsed.
            if (host, local_id) not in folded.host_messages:
                message = load_value(HostMessage, state)
                loaded[(chat, author_key)][0][(host, local_id)] = message
        for chat, author_key, state in self._query(
            "SELECT m.chat, m.author_key, m.state FROM proc_group_messages m"
            " JOIN unnest(%s::text[], %s::text[]) AS g(chat, author_key)"
            " USING (chat, author_key)",
            (chats, authors),
        ):
            loaded[(chat, author_key)][1].append(load_value(CanonicalMessage, state))
        return loaded

    # -- the change stream ------------------------------------------------------------------

    def _publish(
        self,
        recomputed: list[_Recomputed],
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
        group_messages = [
            (m.id, m.chat, normalise_handle(m.author), dump_value(m)) for m in upserted
        ]
        self._write("SELECT pg_advisory_xact_lock(%s)", (_CHANGES_LOCK,))
        (seq,) = self._query("SELECT coalesce(max(change_seq), 0) FROM changes").fetchone()
        first = self._first_offsets(observations, first_seen)
        chat_rows = self._changed_chats(sorted(chats))
        media_rows = self._changed_media(sorted(media))
        # Read under the change-stream lock: a message committed by another instance that
        # had not seen this media row yet is visible here, so its page gets linked.
        linking = self._messages_showing(
            [row[0] for row in media_rows], {m.id for m in upserted} | set(removed_ids)
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
            self._write("DELETE FROM messages WHERE id = ANY(%s)", (removed_ids,))
            self._write("DELETE FROM proc_group_messages WHERE id = ANY(%s)", (removed_ids,))
        self._upsert(
            "messages",
            (*MESSAGE_COLUMNS, "change_seq"),
            message_rows,
            conflict=("id",),
            update=(*MESSAGE_COLUMNS[1:], "change_seq"),
        )
        if revised:
            self._write("DELETE FROM revisions WHERE message_id = ANY(%s)", (revised,))
        self._copy_insert("revisions", REVISION_COLUMNS, revisions, None)
        self._upsert(
            "observations",
            (*OBSERVATION_COLUMNS, "first_partition", "first_offset"),
            [(*r, *first[r[:2]]) for r in observations],
            conflict=("host", "local_id"),
            update=OBSERVATION_COLUMNS[2:],
        )
        self._upsert(
            "proc_group_messages",
            ("id", "chat", "author_key", "state"),
            group_messages,
            conflict=("id",),
            update=("chat", "author_key", "state"),
        )
        self._write_aliases(aliases, [m.id for m in upserted])
        self._upsert(
            "chats",
            ("name", "topic", "members", "created_utc", "change_seq"),
            chat_rows,
            ("name",),
            ("topic", "members", "created_utc", "change_seq"),
        )
        self._upsert(
            "media",
            ("docid", "sha256", "name", "size", "mime"),
            media_rows,
            ("docid",),
            ("sha256", "name", "size", "mime"),
        )
        if relinked:
            self._write_many(
                "UPDATE messages SET change_seq = %s WHERE id = %s",
                [(s, id_) for id_, _, _, s in relinked],
            )
        authors = sorted({m.author.lower() for m in [*upserted, *removed]})
        changes.extend(self._write_users(authors, next_seq))
        self._copy_insert(
            "changes", ("change_seq", "kind", "key", "chat", "posted_utc"), changes, conflict=None
        )
        if changes:
            self._write("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(seq)))
        return len(changes)

    def _first_offsets(
        self, rows: list[tuple], first_seen: Mapping[tuple[str, str], RawRecord]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """For each observation row, the raw event that first named its host message: this
        batch's record, or the one its host message row keeps."""
        earlier = {r[:2] for r in rows if r[:2] not in first_seen}
        first = {key: (record.partition, record.offset) for key, record in first_seen.items()}
        for host, local_id, partition, offset in self._host_message_rows(
            "m.first_partition, m.first_offset", earlier
        ):
            first[(host, local_id)] = (partition, offset)
        return first

    def _write_aliases(self, aliases: list[tuple[str, str]], live: list[str]) -> None:
        if aliases:
            # Earlier aliases of an id now gone follow it to its successor.
            self._write_many(
                "UPDATE message_aliases SET new_id = %s WHERE new_id = %s",
                [(new, old) for old, new in aliases],
            )
            self._write_many(
                "INSERT INTO message_aliases (old_id, new_id) VALUES (%s, %s)"
                " ON CONFLICT (old_id) DO UPDATE SET new_id = EXCLUDED.new_id",
                aliases,
            )
        if live:
            self._write("DELETE FROM message_aliases WHERE old_id = ANY(%s)", (live,))

    def _changed_chats(self, chats: list[str]) -> list[tuple]:
        """(name, topic, members, created_utc) of the chats whose row changes."""
        if not chats:
            return []
        skews = dict(self._query("SELECT host, skew_s FROM proc_host_clocks"))
        objects: dict[str, list[ObjectObservation]] = {c: [] for c in chats}
        for obj_id, state in self._query(
            "SELECT obj_id, state FROM proc_objects WHERE obj = 'CHAT' AND obj_id = ANY(%s)",
            (chats,),
        ):
            objects[obj_id].append(load_value(ObjectObservation, state))
        existing = {
            name: (topic, tuple(members), created)
            for name, topic, members, created in self._query(
                "SELECT name, topic, members, created_utc FROM chats WHERE name = ANY(%s)",
                (chats,),
            )
        }
        rows = []
        for chat in chats:
            row = chat_row(objects[chat], skews)
            if existing.get(chat) != (row.topic, row.members, row.created_utc):
                rows.append((chat, row.topic, list(row.members), row.created_utc))
        return rows

    def _changed_media(self, docids: list[str]) -> list[tuple]:
        """(docid, sha256, name, size, mime) of the shared files whose row changes."""
        if not docids:
            return []
        skews = dict(self._query("SELECT host, skew_s FROM proc_host_clocks"))
        objects: dict[str, list[ObjectObservation]] = {d: [] for d in docids}
        for obj_id, state in self._query(
            "SELECT obj_id, state FROM proc_objects WHERE obj = 'MEDIA' AND obj_id = ANY(%s)",
            (docids,),
        ):
            objects[obj_id].append(load_value(ObjectObservation, state))
        existing = {
            docid: tuple(rest)
            for docid, *rest in self._query(
                "SELECT docid, sha256, name, size, mime FROM media WHERE docid = ANY(%s)",
                (docids,),
            )
        }
        rows = []
        for docid in docids:
            row = media_row(objects[docid], skews)
            values = (row.sha256, row.name, row.size, row.mime)
            if existing.get(docid) != values:
                rows.append((docid, *values))
        return rows

    def _messages_showing(self, docids: list[str], skip: set[str]) -> list[tuple]:
        """(id, chat, posted_utc) of the stored messages that show these media, but `skip`."""
        if not docids:
            return []
        rows = self._query(
            "SELECT id, chat, posted_utc FROM messages"
            " WHERE media && %s::text[] AND media <> '{}' ORDER BY id",
            (docids,),
        )
        return [row for row in rows if row[0] not in skip]

    def _write_users(self, handles: list[str], next_seq) -> list[tuple]:
        """A user's display name is the one on their latest message, in any chat: a function
        of the messages, not of which host's event came last."""
        if not handles:
            return []
        # One index probe per handle (messages_author, backwards), not all their messages.
        latest = dict(
            self._query(
                "SELECT h.handle, m.author_name FROM unnest(%s::text[]) AS h(handle)"
                " CROSS JOIN LATERAL (SELECT author_name FROM messages"
                " WHERE lower(author) = h.handle ORDER BY posted_utc DESC, id DESC LIMIT 1) m",
                (handles,),
            )
        )
        existing = dict(
            self._query("SELECT handle, display_name FROM users WHERE handle = ANY(%s)", (handles,))
        )
        rows, changes = [], []
        for handle in handles:
            if handle not in latest or existing.get(handle) == latest[handle]:
                continue
            s = next_seq()
            rows.append((handle, latest[handle], s))
            changes.append((s, "user", handle, None, None))
        self._upsert(
            "users",
            ("handle", "display_name", "change_seq"),
            rows,
            ("handle",),
            ("display_name", "change_seq"),
        )
        return changes

    # -- bulk writes ------------------------------------------------------------------------

    def _upsert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple],
        conflict: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """Queued (_Writes), like every write of the batch."""
        if rows:
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
            on_conflict = f"({', '.join(conflict)}) DO UPDATE SET {sets}"
            self._writes.submit(lambda: self._insert_staged(table, columns, rows, on_conflict))

    def _copy_insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple],
        conflict: Sequence[str] | None,
    ) -> None:
        """COPY straight into `table`, or through a stage when rows may exist already."""
        if not rows:
            return
        if conflict is None:
            self._writes.submit(lambda: self._copy(table, columns, rows))
        else:
            on_conflict = f"({', '.join(conflict)}) DO NOTHING"
            self._writes.submit(lambda: self._insert_staged(table, columns, rows, on_conflict))

    def _copy(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def _insert_staged(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple], on_conflict: str
    ) -> None:
        """The rows into a temporary copy of `table`'s columns (dropped at commit) with COPY,
        then into `table` in one INSERT ... ON CONFLICT `on_conflict`."""
        cols = ", ".join(columns)
        with self.conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} ON COMMIT DROP AS"
                f" SELECT {cols} FROM {table} WITH NO DATA"
            )
            cur.execute(f"TRUNCATE stage_{table}")
        self._copy(f"stage_{table}", columns, rows)
        with self.conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table}"
                f" ON CONFLICT {on_conflict}"
            )


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


def _estimate_row(e: ClockEstimate) -> tuple:
    return (e.host, e.seq, e.skew_s, e.samples, e.steps)
