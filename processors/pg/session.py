"""The processor's write session: one connection, its transaction, and the writes queued on it.

Every adapter of pg/ reads and writes through a Session: `query` for a statement whose
result is read, `write`/`write_many` for one whose result is not, and `upsert`/`copy_insert`
for rows in bulk (COPY, through a staging table when rows may exist already). Writes run in
the order given on one thread while the batch goes on (`_Writes`), and every read waits for
the writes before it, so everything runs in the order the code states it. `timed` sums the
seconds per phase of the batch (bench/bench_processor.py prints them by name).

A batch's keys go to PostgreSQL as arrays; the large ones are bound as binary (`%b`):
psycopg dumps a list of 20,000 strings about four times faster than as text (`%s`).

Driver errors stay psycopg's (the consumer retries OperationalError, the only transient kind
here).
"""

from __future__ import annotations

import gc
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg


class _Writes:
    """Statements whose results the batch does not read, run in the order given on one
    thread while the batch goes on, so that PostgreSQL executes them while Python works on
    (a batch's state is written while its groups are recomputed). They share the batch's
    connection and transaction; every read waits for the writes before it (Session.query),
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


class PausedCollector:
    """No cyclic garbage collection inside a batch, and none of the state that outlives it
    afterwards. A batch allocates millions of container objects, and the processor's state
    (the group indexes' host messages, clusters and messages) lives for many batches: left
    to the collector, every full pass traverses all of it, at a cost that grows with the
    state. So whatever a batch leaves alive is frozen out of later passes (gc.freeze).
    Frozen objects are still freed when their last reference goes; only cyclic garbage would
    stay, and a batch makes none on its usual paths, so looking for it after every batch
    would be wasted. Any that a rare path leaves (an exception's traceback) goes at the next
    full collection, one in `full_every` batches."""

    def __init__(self, full_every: int = 50) -> None:
        self.full_every = full_every
        self.batches = 0

    @contextmanager
    def paused(self) -> Iterator[None]:
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if enabled:
                self.batches += 1
                if self.batches % self.full_every == 0:
                    gc.unfreeze()
                    gc.collect()
                gc.freeze()
                gc.enable()


@dataclass(frozen=True)
class _Staged:
    """The statements of one staged insert, built once per (table, columns, conflict)."""

    create: str
    truncate: str
    stage: str
    insert: str


@cache
def _copy_statement(table: str, columns: tuple[str, ...]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN"


@cache
def _staged(table: str, columns: tuple[str, ...], on_conflict: str) -> _Staged:
    cols = ", ".join(columns)
    return _Staged(
        create=(
            f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} ON COMMIT DROP AS"
            f" SELECT {cols} FROM {table} WITH NO DATA"
        ),
        truncate=f"TRUNCATE stage_{table}",
        stage=f"stage_{table}",
        insert=(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table}"
            f" ON CONFLICT {on_conflict}"
        ),
    )


@cache
def _on_conflict_update(conflict: tuple[str, ...], update: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
    return f"({', '.join(conflict)}) DO UPDATE SET {sets}"


@cache
def _on_conflict_nothing(conflict: tuple[str, ...]) -> str:
    return f"({', '.join(conflict)}) DO NOTHING"


class Session:
    """One connection to the canonical store, its queued writes and its phase timings."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        # The store's schema (Store.connect set the search_path): its advisory lock keys.
        (self.schema,) = conn.execute("SELECT current_schema()").fetchone()
        self._writes = _Writes()
        self.timings: Counter[str] = Counter()

    def close(self) -> None:
        self._writes.close()
        self.conn.close()

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Seconds spent per phase, summed over the store's life (the benchmark reads them)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] += time.perf_counter() - start

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction whose queued writes have all run before it commits, and none of
        which runs after it rolls back."""
        with self.conn.transaction():
            try:
                yield
                self.wait_for_writes()
            except BaseException:
                self._writes.abandon()
                raise

    def wait_for_writes(self) -> None:
        if self._writes.busy:
            with self.timed("waiting for queued writes (within the phases)"):
                self._writes.wait()

    def query(self, query: str, params: Sequence[Any] | None = None) -> psycopg.Cursor:
        """A statement whose result is read: after the writes queued before it."""
        self.wait_for_writes()
        return self.conn.execute(query, params)

    def write(self, query: str, params: Sequence[Any] | None = None) -> None:
        self._writes.submit(lambda: self.conn.execute(query, params).close())

    def write_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        def write() -> None:
            with self.conn.cursor() as cur:
                cur.executemany(query, rows)

        self._writes.submit(write)

    # -- bulk writes ------------------------------------------------------------------------

    def upsert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple],
        conflict: Sequence[str],
        update: Sequence[str],
        fresh: Sequence[tuple] = (),
    ) -> None:
        """Queued (_Writes), like every write of the batch. `fresh` rows are known not to
        exist yet: COPYed straight in, without the stage."""
        self.copy_insert(table, columns, fresh, conflict=None)
        if rows:
            on_conflict = _on_conflict_update(tuple(conflict), tuple(update))
            staged = _staged(table, tuple(columns), on_conflict)
            self._writes.submit(lambda: self._insert_staged(staged, columns, rows))

    def copy_insert(
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
            staged = _staged(table, tuple(columns), _on_conflict_nothing(tuple(conflict)))
            self._writes.submit(lambda: self._insert_staged(staged, columns, rows))

    def _copy(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(_copy_statement(table, tuple(columns))) as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def _insert_staged(
        self, staged: _Staged, columns: Sequence[str], rows: Sequence[tuple]
    ) -> None:
        """The rows into a temporary copy of the table's columns (dropped at commit) with
        COPY, then into the table in one INSERT ... ON CONFLICT."""
        with self.conn.cursor() as cur:
            cur.execute(staged.create)
            cur.execute(staged.truncate)
        self._copy(staged.stage, columns, rows)
        with self.conn.cursor() as cur:
            cur.execute(staged.insert)
