"""Read a Skype classic main.db: every Conversations, Chats and Messages row, verbatim.

The order is fixed (TABLES, each in rowid order), because a killed import resumes by
counting rows. Conversations and Chats rows are records of chats of their own (topic,
members); a Messages row carries its Conversations row only where the processor needs it to
name the chat (`needs_conversation`), so the two large records are not repeated in every
message.

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
from itertools import compress
from pathlib import Path
from typing import Any

from chatchannels.ingest.importers.detect import sqlite_uri

_RANGE = 512
# With the table's end unreadable, this many empty ranges after the last row end the scan.
_IDLE_RANGES = 64
_UNREADABLE = object()
# Conversations before Chats: where both name one chat (a group), the Chats row, the chat's
# own record, is read later and so wins in the processor's per-property merge.
TABLES = ("Conversations", "Chats", "Messages")
# Each table's column naming the chat, and the one pointing at its Conversations row.
_CHAT_COLUMNS = {"Messages": ("chatname", "convo_id"), "Chats": ("name", "conv_dbid")}
# A cloud group's creator's main.db names the group by a local placeholder
# (`#creator/$*T;<convo_id>`); the processor then takes the conversation's alt_identity.
PLACEHOLDER_MARK = "/$*T;"


@dataclass(frozen=True)
class FileError:
    """Part of a file that could not be read: where, and what the reader said."""

    place: str
    problem: str

    def as_json(self) -> dict[str, str]:
        return {"place": self.place, "problem": self.problem}


@dataclass(frozen=True)
class MaindbRow:
    table: str
    rowid: int
    row: dict[str, Any]
    # Whether the row's chat name needs its Conversations row, and that row (None if the
    # file has none).
    needs_conversation: bool = False
    conversation: dict[str, Any] | None = None


def needs_conversation(chat_name: Any) -> bool:
    """Whether a chat name (Messages.chatname, Chats.name) leaves the chat to be named by the
    conversation: NULL or empty (Skyperious-written files), or a creator's placeholder."""
    return not chat_name or (isinstance(chat_name, str) and PLACEHOLDER_MARK in chat_name)


class _RawText(bytes):
    """A TEXT value that is not UTF-8 (old clients wrote some): kept as its bytes."""


# The types of values that need sql_value, looked up by exact type.
_BYTES = frozenset({bytes, _RawText})


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
    """One open main.db. `rows()` yields MaindbRow in TABLES order; `errors` collects losses."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(sqlite_uri(self.path), uri=True)
        self._db.text_factory = _text
        self.errors: list[FileError] = []
        self.columns = {table: self._columns(table) for table in TABLES}
        self._conversations: dict[Any, dict[str, Any] | None] = {}

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
        """Rows of every table read, for the progress bar; None if a corrupt page hides one."""
        total = 0
        for table in TABLES:
            if not self.columns[table]:
                continue
            found = self._single(f"SELECT count(*) FROM {table}")
            if found is None:
                return None
            total += found
        return total

    # --- rows ---------------------------------------------------------------------------

    def rows(self) -> Iterator[MaindbRow]:
        for table in TABLES:
            if self.columns[table]:
                yield from self._table_rows(table)

    def _table_rows(self, table: str) -> Iterator[MaindbRow]:
        first = self._edge(table, "min")
        last = self._edge(table, "max")
        if first is _UNREADABLE:
            self.errors.append(
                FileError(
                    f"table {table}",
                    "its first rowid is unreadable (corrupt page); reading from rowid 1",
                )
            )
            first = 1
        if first is None:
            return
        if last is _UNREADABLE:
            self.errors.append(
                FileError(
                    f"table {table}",
                    "its last rowid is unreadable (corrupt page); reading on while rows are found",
                )
            )
        lo, idle = first, 0
        while last is _UNREADABLE or lo <= last:
            hi = lo + _RANGE - 1 if last is _UNREADABLE else min(lo + _RANGE - 1, last)
            found = 0
            for item in self._range(table, lo, hi):
                found += 1
                yield item
            if last is _UNREADABLE:
                idle = 0 if found else idle + 1
                if idle >= _IDLE_RANGES:
                    return
            # Rowids can be sparse: jump to the next one that exists, when the b-tree says.
            following = self._edge(table, "min", after=hi)
            if following is None:
                return
            lo = following if following is not _UNREADABLE else hi + 1

    def _edge(self, table: str, which: str, after: int | None = None) -> Any:
        where = "" if after is None else f" WHERE rowid > {int(after)}"
        try:
            row = self._db.execute(f"SELECT {which}(rowid) FROM {table}{where}").fetchone()
        except sqlite3.DatabaseError:
            return _UNREADABLE
        return row[0]

    def _range(self, table: str, lo: int, hi: int) -> Iterator[MaindbRow]:
        bad: list[tuple[int, int, str]] = []
        good = self._bisect(table, lo, hi, bad)
        for start, end, problem in _merge(bad):
            self.errors.append(
                FileError(f"table {table}, rowids {start}-{end}", f"unreadable: {problem}")
            )
        columns = self.columns[table]
        chat_columns = _CHAT_COLUMNS.get(table)
        for values in good:
            rest = values[1:]
            row = dict(zip(columns, rest, strict=True))
            # The columns holding bytes (in nearly every row, guid), found without a Python
            # loop over every value.
            for name in compress(columns, map(_BYTES.__contains__, map(type, rest))):
                row[name] = sql_value(row[name])
            if chat_columns is None or not needs_conversation(row.get(chat_columns[0])):
                yield MaindbRow(table, values[0], row)
                continue
            conversation = self._conversation(row.get(chat_columns[1]))
            yield MaindbRow(table, values[0], row, True, conversation)

    def _bisect(self, table: str, lo: int, hi: int, bad: list[tuple[int, int, str]]) -> list:
        # A single rowid is read by equality: a range scan steps on past its last row to
        # check the bound, onto the next page, which may be the corrupt one.
        where = "rowid = ?" if lo == hi else "rowid BETWEEN ? AND ?"
        select = ", ".join(_quoted(c) for c in self.columns[table])
        try:
            # fetchall: a range is either read whole or halved, so the order stays rowid order.
            return self._db.execute(
                f"SELECT rowid, {select} FROM {table} WHERE {where} ORDER BY rowid",
                (lo,) if lo == hi else (lo, hi),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            if lo == hi:
                bad.append((lo, hi, str(exc)))
                return []
            mid = (lo + hi) // 2
            return self._bisect(table, lo, mid, bad) + self._bisect(table, mid + 1, hi, bad)

    def _conversation(self, convo_id: Any) -> dict[str, Any] | None:
        """The Conversations row of that id (the first, by rowid), cached: one per chat."""
        columns = self.columns["Conversations"]
        if convo_id is None or "id" not in columns:
            return None
        if convo_id not in self._conversations:
            select = ", ".join(_quoted(c) for c in columns)
            try:
                found = self._db.execute(
                    f"SELECT {select} FROM Conversations WHERE id = ? ORDER BY rowid LIMIT 1",
                    (convo_id,),
                ).fetchone()
            except sqlite3.DatabaseError as exc:
                self.errors.append(FileError(f"table Conversations, id {convo_id!r}", str(exc)))
                found = None
            self._conversations[convo_id] = (
                {c: sql_value(v) for c, v in zip(columns, found, strict=True)} if found else None
            )
        return self._conversations[convo_id]


def _merge(bad: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, problem in sorted(bad):
        if merged and merged[-1][1] + 1 >= start and merged[-1][2] == problem:
            merged[-1] = (merged[-1][0], end, problem)
        else:
            merged.append((start, end, problem))
    return merged
