"""Read a Skype classic main.db: every Messages row, verbatim, in rowid order.

The file is opened read-only and immutable, so neither a journal nor a lock ever touches the
user's original. Columns are taken by name from the file's own table, because they differ
between client versions (spec 2.1). Rows are read in rowid ranges; a corrupt page makes
SQLite fail mid-read, and the range around it is halved until the unreadable rowids are
isolated: they are reported by range and everything else is read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatchannels.ingest.importers.detect import sqlite_uri

_RANGE = 512
# With the table's end unreadable, this many empty ranges after the last row end the scan.
_IDLE_RANGES = 64
_UNREADABLE = object()


@dataclass(frozen=True)
class FileError:
    """Part of a file that could not be read: where, and what the reader said."""

    place: str
    problem: str

    def as_json(self) -> dict[str, str]:
        return {"place": self.place, "problem": self.problem}


@dataclass(frozen=True)
class MaindbRow:
    rowid: int
    row: dict[str, Any]
    conversation: dict[str, Any] | None
    chat: dict[str, Any] | None


class _RawText(bytes):
    """A TEXT value that is not UTF-8 (old clients wrote some): kept as its bytes."""


def _text(data: bytes) -> str | _RawText:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _RawText(data)


def sql_value(value: Any) -> Any:
    # JSON has no bytes; guid and other BLOBs, and TEXT that is not UTF-8, travel as hex,
    # so nothing is lost and nothing is guessed.
    if isinstance(value, bytes | bytearray | memoryview):
        return {"hex": bytes(value).hex()}
    return value


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class MainDb:
    """One open main.db. `rows()` yields MaindbRow in rowid order; `errors` collects losses."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(sqlite_uri(self.path), uri=True)
        self._db.text_factory = _text
        self.errors: list[FileError] = []
        self.columns = self._columns("Messages")
        self._select = ", ".join(_quoted(c) for c in self.columns)
        self._conversations: dict[Any, dict[str, Any] | None] = {}
        self._chats: dict[Any, dict[str, Any] | None] = {}
        self._lookups = {
            "Conversations": self._columns("Conversations"),
            "Chats": self._columns("Chats"),
        }

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MainDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _columns(self, table: str) -> list[str]:
        try:
            return [r[1] for r in self._db.execute(f"PRAGMA table_info({_quoted(table)})")]
        except sqlite3.DatabaseError as exc:
            self.errors.append(FileError(f"table {table}", f"schema unreadable: {exc}"))
            return []

    def _single(self, sql: str, *args: Any) -> Any:
        try:
            row = self._db.execute(sql, args).fetchone()
        except sqlite3.DatabaseError:
            return None
        return row[0] if row else None

    @property
    def account(self) -> str | None:
        return self._single("SELECT skypename FROM Accounts ORDER BY rowid LIMIT 1")

    @property
    def client(self) -> str | None:
        return self._single("SELECT ClientVersion FROM AppSchemaVersion LIMIT 1")

    def count(self) -> int | None:
        """COUNT(*) of Messages, for the progress bar; None if a corrupt page hides it."""
        return self._single("SELECT count(*) FROM Messages")

    # --- Messages ---------------------------------------------------------------------

    def rows(self) -> Iterator[MaindbRow]:
        if not self.columns:
            return
        first = self._edge("min")
        last = self._edge("max")
        if first is _UNREADABLE:
            self.errors.append(
                FileError(
                    "table Messages",
                    "its first rowid is unreadable (corrupt page); reading from rowid 1",
                )
            )
            first = 1
        if first is None:
            return
        if last is _UNREADABLE:
            self.errors.append(
                FileError(
                    "table Messages",
                    "its last rowid is unreadable (corrupt page); reading on while rows are found",
                )
            )
        lo, idle = first, 0
        while last is _UNREADABLE or lo <= last:
            hi = lo + _RANGE - 1 if last is _UNREADABLE else min(lo + _RANGE - 1, last)
            found = 0
            for item in self._range(lo, hi):
                found += 1
                yield item
            if last is _UNREADABLE:
                idle = 0 if found else idle + 1
                if idle >= _IDLE_RANGES:
                    return
            # Rowids can be sparse: jump to the next one that exists, when the b-tree says.
            following = self._edge("min", after=hi)
            if following is None:
                return
            lo = following if following is not _UNREADABLE else hi + 1

    def _edge(self, which: str, after: int | None = None) -> Any:
        where = "" if after is None else f" WHERE rowid > {int(after)}"
        try:
            row = self._db.execute(f"SELECT {which}(rowid) FROM Messages{where}").fetchone()
        except sqlite3.DatabaseError:
            return _UNREADABLE
        return row[0]

    def _range(self, lo: int, hi: int) -> Iterator[MaindbRow]:
        bad: list[tuple[int, int, str]] = []
        good = self._bisect(lo, hi, bad)
        for start, end, problem in _merge(bad):
            self.errors.append(
                FileError(f"table Messages, rowids {start}-{end}", f"unreadable: {problem}")
            )
        columns = self.columns
        for rowid, values in good:
            row = dict(zip(columns, values, strict=True))
            for name in [c for c, v in row.items() if isinstance(v, bytes)]:
                row[name] = sql_value(row[name])
            yield MaindbRow(
                rowid=rowid,
                row=row,
                conversation=self._lookup(
                    "Conversations", "id", row.get("convo_id"), self._conversations
                ),
                chat=self._lookup("Chats", "name", row.get("chatname"), self._chats),
            )

    def _bisect(self, lo: int, hi: int, bad: list[tuple[int, int, str]]) -> list[tuple]:
        # A single rowid is read by equality: a range scan steps on past its last row to
        # check the bound, onto the next page, which may be the corrupt one.
        where = "rowid = ?" if lo == hi else "rowid BETWEEN ? AND ?"
        try:
            # fetchall: a range is either read whole or halved, so the order stays rowid order.
            return [
                (r[0], r[1:])
                for r in self._db.execute(
                    f"SELECT rowid, {self._select} FROM Messages WHERE {where} ORDER BY rowid",
                    (lo,) if lo == hi else (lo, hi),
                ).fetchall()
            ]
        except sqlite3.DatabaseError as exc:
            if lo == hi:
                bad.append((lo, hi, str(exc)))
                return []
            mid = (lo + hi) // 2
            return self._bisect(lo, mid, bad) + self._bisect(mid + 1, hi, bad)

    def _lookup(
        self, table: str, key: str, value: Any, cache: dict[Any, dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        if value is None or key not in self._lookups[table]:
            return None
        if value not in cache:
            columns = self._lookups[table]
            select = ", ".join(_quoted(c) for c in columns)
            try:
                found = self._db.execute(
                    f"SELECT {select} FROM {table} WHERE {_quoted(key)} = ? ORDER BY rowid LIMIT 1",
                    (value,),
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                self.errors.append(FileError(f"table {table}, {key} {value!r}", str(exc)))
                found = None
            cache[value] = (
                {c: sql_value(v) for c, v in zip(columns, found, strict=True)} if found else None
            )
        return cache[value]


def _merge(bad: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, problem in sorted(bad):
        if merged and merged[-1][1] + 1 >= start and merged[-1][2] == problem:
            merged[-1] = (merged[-1][0], end, problem)
        else:
            merged.append((start, end, problem))
    return merged
