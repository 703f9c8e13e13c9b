"""The agent's on-disk spool: every captured event lives here until Kafka acknowledged it.

Invariant 1 (design.md) rests on this module. An event counts as captured only once the
transaction that wrote it has committed: SQLite in WAL mode with ``synchronous=FULL`` makes
that commit durable against power loss and kill -9 alike. The same transaction allocates the
event's per-host sequence number and advances the per-chat high-water marks, so after any
crash the three always agree: the next seq follows the last stored one with no gap, and a
high-water mark never claims a message whose event is not on disk.

One `Spool` object per thread (SQLite connections are not shared); the capture side appends,
the delivery side peeks and removes. WAL lets them work at the same time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# A builder receives the seq the spool allocated and returns the encoded record; the seq is
# part of the record, so it can only be built inside the allocating transaction.
EventBuilder = Callable[[int], bytes]

_OPEN_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    captured_at REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (chat TEXT PRIMARY KEY, message_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    captured_at REAL NOT NULL,
    data BLOB NOT NULL,
    problem TEXT NOT NULL
);
"""


class SpoolError(RuntimeError):
    """The spool cannot be used as it is; the message names the file and what is wrong."""


class SpoolFull(SpoolError):
    """The spool's file system has no room left: the transaction wrote nothing, and the
    same write can be tried again once there is space."""


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    captured_at: float
    data: bytes


class Spool:
    """A durable FIFO of encoded events for one host, plus its seq counter and marks."""

    def __init__(self, path: Path, host: str) -> None:
        self.path = Path(path)
        self.host = host
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                self._db = sqlite3.connect(self.path, timeout=_OPEN_TIMEOUT_S, isolation_level=None)
                self._open()
                return
            except sqlite3.OperationalError as exc:
                self._db.close()
                # Two connections opening a new spool at once (the agent's writer and its
                # delivery thread): switching to WAL can fail at once with "locked", without
                # waiting for the busy timeout. It is safe to try again.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise SpoolError(f"spool {self.path} is not usable: {exc}") from exc
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                self._db.close()
                raise SpoolError(f"spool {self.path} is not usable: {exc}") from exc

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._claim_host()

    def _claim_host(self) -> None:
        with self._transaction():
            row = self._db.execute("SELECT value FROM meta WHERE key = 'host'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('host', ?)", (self.host,))
                self._db.execute("INSERT INTO meta VALUES ('next_seq', '1')")
            elif row[0] != self.host:
                # One seq series per host: sharing a spool would interleave two series.
                raise SpoolError(
                    f"spool {self.path} belongs to host {row[0]!r}, not {self.host!r}; "
                    "give each host its own spool file"
                )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- capture side -------------------------------------------------------------------

    def append(
        self,
        builders: Sequence[EventBuilder],
        captured_at: float,
        marks: Mapping[str, int] | None = None,
    ) -> range:
        """Store one event per builder and raise the given marks, in one durable transaction.

        Returns the seqs allocated, in builder order. When this returns the events are on
        disk; when it raises, none of them is and no seq was used.
        """
        with self._transaction():
            first = self._next_seq()
            seqs = range(first, first + len(builders))
            self._db.executemany(
                "INSERT INTO events (seq, captured_at, data) VALUES (?, ?, ?)",
                ((seq, captured_at, build(seq)) for seq, build in zip(seqs, builders, strict=True)),
            )
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seqs.stop),))
            if marks:
                self._db.executemany(
                    "INSERT INTO marks VALUES (?, ?) ON CONFLICT (chat) DO UPDATE "
                    "SET message_id = max(message_id, excluded.message_id)",
                    marks.items(),
                )
        return seqs

    def _next_seq(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])

    @property
    def next_seq(self) -> int:
        return self._next_seq()

    def marks(self) -> dict[str, int]:
        """Per chat, the highest message id whose event is in the spool or already in Kafka."""
        return dict(self._db.execute("SELECT chat, message_id FROM marks"))

    # --- delivery side ------------------------------------------------------------------

    def peek(self, after_seq: int, limit: int) -> list[SpooledEvent]:
        """Up to `limit` stored events with seq > after_seq, in seq order."""
        rows = self._db.execute(
            "SELECT seq, captured_at, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [SpooledEvent(seq, at, bytes(data)) for seq, at, data in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget events Kafka acknowledged; removing an absent seq is harmless."""
        with self._transaction():
            self._db.executemany("DELETE FROM events WHERE seq = ?", ((s,) for s in seqs))

    def bury(self, seq: int, problem: str) -> None:
        """Move an event Kafka can never take (too large, ...) to the dead table, kept as is.

        Kafka would refuse it forever and block everything behind it; keeping it here, named
        in `agent status`, loses nothing and lets the rest flow (invariant 8).
        """
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO dead SELECT seq, captured_at, data, ? FROM events "
                "WHERE seq = ?",
                (problem, seq),
            )
            self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))

    def dead(self) -> list[tuple[int, str]]:
        return list(self._db.execute("SELECT seq, problem FROM dead ORDER BY seq"))

    def depth(self) -> int:
        return self._db.execute("SELECT count(*) FROM events").fetchone()[0]

    def oldest(self) -> SpooledEvent | None:
        found = self.peek(0, 1)
        return found[0] if found else None

    # --- plumbing -----------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; a full disk (met by a
    statement or by the COMMIT, which writes the WAL) raised as SpoolFull."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.OperationalError as failed:
                exc = failed
        # SQLite rolls back by itself after some errors, a full disk among them.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if (
            isinstance(exc, sqlite3.OperationalError)
            and exc.sqlite_errorcode == sqlite3.SQLITE_FULL
        ):
            raise SpoolFull(f"no space left on the device of the spool {self._path}") from exc
        if exc_type is None:
            raise exc


@dataclass(frozen=True)
class SpoolSummary:
    depth: int
    next_seq: int
    oldest_seq: int | None
    oldest_captured_at: float | None
    dead: int


def read_summary(path: Path) -> SpoolSummary:
    """What `agent status` shows, read without taking the write lock or creating the file."""
    if not Path(path).exists():
        raise SpoolError(f"no spool at {path}; has the agent run with this config?")
    try:
        db = sqlite3.connect(f"file:{Path(path).absolute()}?mode=ro", uri=True, timeout=5.0)
        try:
            depth, first = db.execute("SELECT count(*), min(seq) FROM events").fetchone()
            at = db.execute("SELECT captured_at FROM events WHERE seq = ?", (first,)).fetchone()
            next_seq = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
            (dead,) = db.execute("SELECT count(*) FROM dead").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise SpoolError(f"spool {path} is not readable: {exc}") from exc
    return SpoolSummary(
        depth=depth,
        next_seq=int(next_seq[0]) if next_seq else 1,
        oldest_seq=first,
        oldest_captured_at=at[0] if at else None,
        dead=dead,
    )
