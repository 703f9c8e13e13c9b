"""Which page each published message is on, and which pages wait to be rendered, kept beside
the site (`.chatchannels-pages.db`).

A message can move: the processor may re-correct its time into another month, or the change
row that names it may be older than the message's current state. The change stream says
where a message is now; this small table says where the site last put it, so the page it
left is re-rendered without it. SQLite (stdlib), because it is the site publisher's own
state and must live with the site, not in the store it reads.

The pages a batch of changes touched wait in `pending` until the publisher has caught up
with the change stream, so that a page is rendered once per catch-up rather than once per
batch: a month page holds the whole month, and a rebuild from zero of a busy chat rendered
it again for every batch that reached it. Recorded in the same commit as the placements,
before the watermark moves, so that a crash leaves them pending, not lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

DB_FILE = ".chatchannels-pages.db"
# A pending month that stands for every month of the chat (its title changed).
ALL_MONTHS = "*"


class Placements:
    def __init__(self, site_dir: Path) -> None:
        site_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(site_dir / DB_FILE)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS placed (id TEXT PRIMARY KEY, chat TEXT NOT NULL,"
            " month TEXT NOT NULL)"
        )
        # month '' stands for the chat's own pages (index and feed) alone, ALL_MONTHS for
        # every month page it has.
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS pending (chat TEXT NOT NULL, month TEXT NOT NULL,"
            " PRIMARY KEY (chat, month))"
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

    def record(
        self,
        placed: Iterable[tuple[str, str, str]],
        gone: Iterable[str],
        touched: Iterable[tuple[str, str]],
    ) -> None:
        """Store where these messages are now, forget those that are gone and add the
        touched (chat, month) pages to the pending ones; one commit."""
        self.db.executemany("DELETE FROM placed WHERE id = ?", ((i,) for i in gone))
        self.db.executemany(
            "INSERT INTO placed (id, chat, month) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET chat = excluded.chat, month = excluded.month",
            placed,
        )
        self.db.executemany(
            "INSERT INTO pending (chat, month) VALUES (?, ?) ON CONFLICT DO NOTHING", touched
        )
        self.db.commit()

    def pending(self) -> dict[str, list[str]]:
        """The pending pages: chat -> its months (sorted; '' for the chat's own pages,
        ALL_MONTHS for every month it has)."""
        found: dict[str, list[str]] = {}
        for chat, month in self.db.execute("SELECT chat, month FROM pending ORDER BY 1, 2"):
            found.setdefault(chat, []).append(month)
        return found

    def clear_pending(self) -> None:
        self.db.execute("DELETE FROM pending")
        self.db.commit()

    def close(self) -> None:
        self.db.close()
