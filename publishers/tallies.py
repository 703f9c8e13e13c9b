"""Each chat's statistics, counted in the store and kept beside the site, so that the
archive-wide statistics are sums of small tables rather than a scan of every message.

When a chat's pages are rendered, its tallies are counted again in PostgreSQL (one query per
table over the touched chats, store.read_tallies) and replace its rows here; the archive's
figures are then summed from every chat's rows. A chat's rows are therefore always the
counts of its messages in the store, which keeps an incrementally published site equal to
one published from zero. They live in the placements database (placements.py): the site's
own state, removed with it by --rebuild.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence

import psycopg

from chatchannels.publishers import store
from chatchannels.publishers.statistics import DayTally, PersonTally, Statistics

TABLES = {
    "tally_people": "chat TEXT NOT NULL, author TEXT NOT NULL, messages INTEGER NOT NULL,"
    " edited INTEGER NOT NULL, deleted INTEGER NOT NULL, last_posted TEXT NOT NULL,"
    " name TEXT NOT NULL, PRIMARY KEY (chat, author)",
    "tally_days": "chat TEXT NOT NULL, day TEXT NOT NULL, messages INTEGER NOT NULL,"
    " edited INTEGER NOT NULL, deleted INTEGER NOT NULL, PRIMARY KEY (chat, day)",
    "tally_hours": "chat TEXT NOT NULL, weekday INTEGER NOT NULL, hour INTEGER NOT NULL,"
    " messages INTEGER NOT NULL, PRIMARY KEY (chat, weekday, hour)",
}
# Where the name starts in "last_posted<TAB>name": last_posted is YYYY-MM-DDTHH:MM:SS.ffffff.
NAME_AT = len("2006-01-01T00:00:00.000000") + 1


class Tallies:
    """`time_zone`: where days and hours are counted; a site keeps one (site.py)."""

    def __init__(self, db: sqlite3.Connection, time_zone: str = "UTC") -> None:
        self.db = db
        self.time_zone = time_zone
        existing = {
            row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        # True when this opening made the tables: in a site published before statistics
        # existed, no chat is counted yet (site.py counts them all once).
        self.created = not set(TABLES) <= existing
        for table, columns in TABLES.items():
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        self.db.commit()

    def refresh(self, conn: psycopg.Connection, chats: Sequence[str]) -> None:
        """Count these chats again in the store and replace their rows; one commit."""
        rows = store.read_tallies(conn, chats, self.time_zone)
        for table in TABLES:
            self.db.executemany(f"DELETE FROM {table} WHERE chat = ?", ((c,) for c in chats))
        for table, found in zip(TABLES, rows, strict=True):
            if found:
                marks = ",".join("?" * len(found[0]))
                self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", found)
        self.db.commit()

    def read(self, chat: str | None) -> Statistics:
        """One chat's statistics, or (None) the whole archive's, summed over its chats."""
        return read_statistics(self.db, None if chat is None else [chat], self.time_zone)


def read_statistics(
    db: sqlite3.Connection, chats: Collection[str] | None, time_zone: str = "UTC"
) -> Statistics:
    """The statistics of these chats (None: every chat), summed from their rows: what one
    reader may see of the archive's (publishers/access/reader_pages.py) is the sum over the
    chats they may read. `time_zone`: the one the rows were counted in."""
    where, params = "", ()
    if chats is not None:
        where, params = (
            "WHERE chat IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(chats)),),
        )
    # A person's name is the one on their latest message (in the chats, or anywhere):
    # last_posted has a fixed width (store.read_tallies), so the greatest
    # "last_posted<TAB>name" carries it.
    people = [
        PersonTally(author, latest[NAME_AT:], n, edited, deleted)
        for author, n, edited, deleted, latest in db.execute(
            "SELECT author, sum(messages), sum(edited), sum(deleted),"
            " max(last_posted || char(9) || name)"
            f" FROM tally_people {where} GROUP BY author ORDER BY 2 DESC, author",
            params,
        )
    ]
    days = [
        DayTally(*row)
        for row in db.execute(
            "SELECT day, sum(messages), sum(edited), sum(deleted)"
            f" FROM tally_days {where} GROUP BY day ORDER BY day",
            params,
        )
    ]
    hours = db.execute(
        f"SELECT weekday, hour, sum(messages) FROM tally_hours {where}"
        " GROUP BY weekday, hour ORDER BY weekday, hour",
        params,
    ).fetchall()
    return Statistics(tuple(people), tuple(days), tuple(hours), time_zone)
