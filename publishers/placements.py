"""Which page each published message is on, kept beside the site (`.chatchannels-pages.db`).

A message can move: the processor may re-correct its time into another month, or the change
row that names it may be older than the message's current state. The change stream says
where a message is now; this small table says where the site last put it, so the page it
left is re-rendered without it. SQLite (stdlib), because it is the site publisher's own
state and must live with the site, not in the store it reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

DB_FILE = ".chatchannels-pages.db"


class Placements:
    def __init__(self, site_dir: Path) -> None:
        site_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(site_dir / DB_FILE)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS placed (id TEXT PRIMARY KEY, chat TEXT NOT NULL,"
            " month TEXT NOT NULL)"
        )
        self.db.commit()

    def lookup(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for id_, chat, month in self.db.execute(
                f"SELECT id, chat, month FROM placed WHERE id IN ({marks})", chunk
            ):
                found[id_] = (chat, month)
        return found

    def record(self, placed: Iterable[tuple[str, str, str]], gone: Iterable[str]) -> None:
        """Store where these messages are now and forget those that are gone; one commit."""
        self.db.executemany("DELETE FROM placed WHERE id = ?", ((i,) for i in gone))
        self.db.executemany(
            "INSERT INTO placed (id, chat, month) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET chat = excluded.chat, month = excluded.month",
            placed,
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()
