"""Seeding the canonical store directly, for the publishers' tests and benchmark.

Writes rows the way the processor's contract says they look (processors/pg/migrations/0001_*):
every write adds its row to `changes` with the next change_seq, and a message change carries
the chat and posted_utc. Not a stand-in for the processor: just enough to put known states in
a real PostgreSQL. Like the processor, each write is one transaction: a publisher that reads a
change must find the rows it announces (a change committed before its message row once made
the follower test index nothing and move past it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers.markup import markup_to_text


@dataclass(frozen=True)
class Seeded:
    id: str
    chat: str
    posted_utc: datetime


def _atomic(write: Callable) -> Callable:
    @functools.wraps(write)
    def in_one_transaction(self: StoreSeeder, *args, **kwargs):
        with self.conn.transaction():
            return write(self, *args, **kwargs)

    return in_one_transaction


class StoreSeeder:
    def __init__(self, dsn: str) -> None:
        migrate(dsn)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.seq = self.conn.execute("SELECT coalesce(max(change_seq), 0) FROM changes").fetchone()[
            0
        ]

    def close(self) -> None:
        self.conn.close()

    def _change(self, kind: str, key: str, chat: str | None = None, posted=None) -> int:
        self.seq += 1
        self.conn.execute(
            "INSERT INTO changes (change_seq, kind, key, chat, posted_utc) VALUES (%s,%s,%s,%s,%s)",
            (self.seq, kind, key, chat, posted),
        )
        return self.seq

    @_atomic
    def chat(self, name: str, topic: str = "", members: Sequence[str] = ()) -> None:
        seq = self._change("chat", name)
        self.conn.execute(
            "INSERT INTO chats (name, topic, members, change_seq) VALUES (%s,%s,%s,%s)"
            " ON CONFLICT (name) DO UPDATE SET topic = EXCLUDED.topic,"
            " members = EXCLUDED.members, change_seq = EXCLUDED.change_seq",
            (name, topic, list(members), seq),
        )

    @_atomic
    def user(self, handle: str, display_name: str) -> None:
        seq = self._change("user", handle)
        self.conn.execute(
            "INSERT INTO users (handle, display_name, change_seq) VALUES (%s,%s,%s)"
            " ON CONFLICT (handle) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " change_seq = EXCLUDED.change_seq",
            (handle, display_name, seq),
        )

    @_atomic
    def message(
        self,
        id: str,
        chat: str,
        author: str,
        posted_utc: datetime,
        body_markup: str,
        author_name: str = "",
        type: str = "SAID",
        hosts: Iterable[str] = ("alice-pc",),
        users: Sequence[str] = (),
        media: Sequence[str] = (),
    ) -> Seeded:
        """`users`: whom a member event is about; `media`: the docids its body shows."""
        seq = self._change("message", id, chat, posted_utc)
        self.conn.execute(
            "INSERT INTO messages (id, chat, author, author_name, posted_utc, type, body,"
            " body_markup, change_seq, users, media) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                id,
                chat,
                author,
                author_name,
                posted_utc,
                type,
                markup_to_text(body_markup),
                body_markup,
                seq,
                list(users),
                list(media),
            ),
        )
        self.conn.execute(
            "INSERT INTO revisions (message_id, revision, body_markup) VALUES (%s, 0, %s)",
            (id, body_markup),
        )
        for n, host in enumerate(hosts):
            self.conn.execute(
                "INSERT INTO observations (host, local_id, message_id, local_timestamp,"
                " corrected_utc, tz_offset_s, first_partition, first_offset)"
                " VALUES (%s,%s,%s,%s,%s,0,0,%s)",
                (host, f"{id}-{n}", id, int(posted_utc.timestamp()), posted_utc, n),
            )
        return Seeded(id, chat, posted_utc)

    def media_file(self, docid: str, sha256: str | None, name: str, size: int | None) -> None:
        """A media row, as an import records a shared file (sha256 None: content missing)."""
        self.conn.execute(
            "INSERT INTO media (docid, sha256, name, size) VALUES (%s,%s,%s,%s)"
            " ON CONFLICT (docid) DO UPDATE SET sha256 = EXCLUDED.sha256",
            (docid, sha256, name, size),
        )

    def _next_revision(self, id: str) -> int:
        return self.conn.execute(
            "SELECT coalesce(max(revision), -1) + 1 FROM revisions WHERE message_id = %s", (id,)
        ).fetchone()[0]

    def _message_place(self, id: str) -> tuple[str, datetime]:
        return self.conn.execute(
            "SELECT chat, posted_utc FROM messages WHERE id = %s", (id,)
        ).fetchone()

    @_atomic
    def edit(self, id: str, body_markup: str, editor: str, edited_utc: datetime) -> None:
        chat, posted = self._message_place(id)
        seq = self._change("message", id, chat, posted)
        self.conn.execute(
            "INSERT INTO revisions (message_id, revision, body_markup, editor, edited_utc)"
            " VALUES (%s,%s,%s,%s,%s)",
            (id, self._next_revision(id), body_markup, editor, edited_utc),
        )
        self.conn.execute(
            "UPDATE messages SET body = %s, body_markup = %s, edited_utc = %s, edited_by = %s,"
            " change_seq = %s WHERE id = %s",
            (markup_to_text(body_markup), body_markup, edited_utc, editor, seq, id),
        )

    @_atomic
    def delete(self, id: str, editor: str, edited_utc: datetime) -> None:
        """Skype's deletion: an edit to an empty body; the message stays as a tombstone."""
        chat, posted = self._message_place(id)
        seq = self._change("message", id, chat, posted)
        self.conn.execute(
            "INSERT INTO revisions (message_id, revision, body_markup, editor, edited_utc,"
            " deleted) VALUES (%s,%s,'',%s,%s,true)",
            (id, self._next_revision(id), editor, edited_utc),
        )
        self.conn.execute(
            "UPDATE messages SET body = '', body_markup = '', edited_utc = %s, edited_by = %s,"
            " deleted = true, change_seq = %s WHERE id = %s",
            (edited_utc, editor, seq, id),
        )

    @_atomic
    def move(self, id: str, posted_utc: datetime) -> None:
        """A re-corrected time, as the processor reports it: one change, the new place only."""
        chat, _ = self._message_place(id)
        seq = self._change("message", id, chat, posted_utc)
        self.conn.execute(
            "UPDATE messages SET posted_utc = %s, change_seq = %s WHERE id = %s",
            (posted_utc, seq, id),
        )

    @_atomic
    def remove(self, id: str) -> None:
        """The row goes (e.g. re-clustered under another id): its page must drop it."""
        chat, posted = self._message_place(id)
        self._change("message", id, chat, posted)
        self.conn.execute("DELETE FROM messages WHERE id = %s", (id,))

    def bulk_messages(self, rows: Iterable[tuple[str, str, str, str, datetime, str]]) -> int:
        """Many plain messages at once (id, chat, author, author_name, posted_utc, body) via
        COPY, each with its change row; for the benchmark."""
        rows = list(rows)
        first = self.seq + 1
        self.seq += len(rows)
        with self.conn.transaction(), self.conn.cursor() as cur:
            with cur.copy(
                "COPY messages (id, chat, author, author_name, posted_utc, type, body,"
                " body_markup, change_seq) FROM STDIN"
            ) as copy:
                for seq, (id, chat, author, name, posted, body) in enumerate(rows, first):
                    copy.write_row((id, chat, author, name, posted, "SAID", body, body, seq))
            with cur.copy(
                "COPY changes (change_seq, kind, key, chat, posted_utc) FROM STDIN"
            ) as copy:
                for seq, (id, chat, _, _, posted, _) in enumerate(rows, first):
                    copy.write_row((seq, "message", id, chat, posted))
        return len(rows)
