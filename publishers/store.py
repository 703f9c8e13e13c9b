"""Reading the canonical store for the publishers (processors/pg/migrations/*.sql).

The only module of the publishers that speaks SQL. Every query orders its rows fully, so
what is rendered from them depends on the store's contents alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

import psycopg

from chatchannels.publishers.model import (
    Change,
    Chat,
    ChatSummary,
    Message,
    MonthCount,
    Revision,
    Sighting,
)
from chatchannels.publishers.names import handles_in_name
from chatchannels.publishers.paths import month_bounds

MESSAGE_COLUMNS = (
    "id, chat, author, author_name, posted_utc, type, body, body_markup,"
    " edited_utc, edited_by, deleted, users, media"
)


def read_changes(conn: psycopg.Connection, after: int, limit: int) -> list[Change]:
    """Changes with change_seq > after, in change_seq order (commit order), at most limit."""
    rows = conn.execute(
        "SELECT change_seq, kind, key, chat, posted_utc FROM changes"
        " WHERE change_seq > %s ORDER BY change_seq LIMIT %s",
        (after, limit),
    ).fetchall()
    return [Change(*row) for row in rows]


def read_newest_change_seq(conn: psycopg.Connection) -> int:
    """The store's newest change_seq (0 when it has none)."""
    return conn.execute("SELECT coalesce(max(change_seq), 0) FROM changes").fetchone()[0]


def read_places(conn: psycopg.Connection, ids: Sequence[str]) -> list[tuple[str, str, datetime]]:
    """(id, chat, posted_utc) of the messages with these ids that still exist."""
    return conn.execute(
        "SELECT id, chat, posted_utc FROM messages WHERE id = ANY(%s)", (list(ids),)
    ).fetchall()


def _messages(rows: Iterable[tuple]) -> list[Message]:
    return [Message(*row[:-2], tuple(row[-2]), tuple(row[-1])) for row in rows]


def read_media(conn: psycopg.Connection, messages: Iterable[Message]) -> dict[str, str]:
    """docid -> sha256 of the archived files the messages show. A docid the store does not
    know, or knows without a file, is not in it: pages mark it as not archived."""
    docids = sorted({d for m in messages for d in m.media})
    if not docids:
        return {}
    return dict(
        conn.execute(
            "SELECT docid, sha256 FROM media WHERE docid = ANY(%s) AND sha256 IS NOT NULL",
            (docids,),
        ).fetchall()
    )


def read_messages(
    conn: psycopg.Connection, ids: Sequence[str], with_history: bool = False
) -> list[Message]:
    """The messages with these ids that still exist, ordered by time then id."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ANY(%s) ORDER BY posted_utc, id",
        (list(ids),),
    ).fetchall()
    return _with_history(conn, rows) if with_history else _messages(rows)


def _with_history(conn: psycopg.Connection, rows: Sequence[tuple]) -> list[Message]:
    """The messages of these rows (MESSAGE_COLUMNS), each with its revisions and sightings."""
    ids = [row[0] for row in rows]
    revisions: dict[str, list[Revision]] = {}
    for message_id, *rest in conn.execute(
        "SELECT message_id, revision, body_markup, editor, edited_utc, deleted FROM revisions"
        " WHERE message_id = ANY(%s) ORDER BY message_id, revision",
        (ids,),
    ):
        revisions.setdefault(message_id, []).append(Revision(*rest))
    sightings: dict[str, list[Sighting]] = {}
    for message_id, *rest in conn.execute(
        "SELECT message_id, host, local_id, local_timestamp, tz_offset_s FROM observations"
        " WHERE message_id = ANY(%s) ORDER BY message_id, host, local_id",
        (ids,),
    ):
        sightings.setdefault(message_id, []).append(Sighting(*rest))
    messages = []
    for row in rows:
        seen = tuple(sightings.get(row[0], ()))
        messages.append(
            Message(
                *row[:-2],
                tuple(row[-2]),
                tuple(row[-1]),
                tuple(revisions.get(row[0], ())),
                tuple(dict.fromkeys(s.host for s in seen)),
                seen,
            )
        )
    return messages


def read_month(conn: psycopg.Connection, chat: str, month: str) -> list[Message]:
    """A chat's messages posted in a UTC month, with revisions and hosts, in time order."""
    start, end = month_bounds(month)
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat = %s"
        " AND posted_utc >= %s AND posted_utc < %s ORDER BY posted_utc, id",
        (chat, start, end),
    ).fetchall()
    return _with_history(conn, rows)


def read_months(conn: psycopg.Connection, chat: str) -> list[MonthCount]:
    rows = conn.execute(
        "SELECT to_char(posted_utc AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*)"
        " FROM messages WHERE chat = %s GROUP BY month ORDER BY month",
        (chat,),
    ).fetchall()
    return [MonthCount(*row) for row in rows]


def read_latest(conn: psycopg.Connection, chat: str | None, limit: int) -> list[Message]:
    """The newest messages (of one chat, or of all), newest first."""
    where, params = ("WHERE chat = %s", (chat,)) if chat is not None else ("", ())
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages {where}"
        " ORDER BY posted_utc DESC, id DESC LIMIT %s",
        (*params, limit),
    ).fetchall()
    return _messages(rows)


def _display_names(conn: psycopg.Connection, handles: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(handles))
    if not wanted:
        return {}
    return dict(
        conn.execute(
            "SELECT handle, display_name FROM users WHERE handle = ANY(%s)", (wanted,)
        ).fetchall()
    )


def _chat(name: str, topic: str, members: Sequence[str], names: dict[str, str]) -> Chat:
    return Chat(
        name,
        topic,
        tuple((h, names.get(h, "")) for h in sorted(set(members))),
        tuple((h, names.get(h, "")) for h in handles_in_name(name)),
    )


def read_chat(conn: psycopg.Connection, name: str) -> Chat | None:
    """The chat's row with its members' display names and those of the people its id names
    (what names.chat_title needs); None when the store has no row."""
    row = conn.execute("SELECT topic, members FROM chats WHERE name = %s", (name,)).fetchone()
    if row is None:
        return None
    topic, members = row
    return _chat(name, topic, members, _display_names(conn, [*members, *handles_in_name(name)]))


def chat_without_row(conn: psycopg.Connection, name: str) -> Chat:
    """A chat the store has messages of but no row for (no desktop read the chat itself):
    no topic or members, and the people its id names, so that it still has a title."""
    return _chat(name, "", (), _display_names(conn, handles_in_name(name)))


def read_chat_titles(conn: psycopg.Connection, names: Sequence[str]) -> dict[str, str]:
    """Each chat's title (Chat.title), in two queries for any number of chats."""
    rows = {
        name: (topic, members)
        for name, topic, members in conn.execute(
            "SELECT name, topic, members FROM chats WHERE name = ANY(%s)", (list(names),)
        ).fetchall()
    }
    people = _display_names(
        conn,
        (h for name in names for h in (*rows.get(name, ("", []))[1], *handles_in_name(name))),
    )
    return {name: _chat(name, *rows.get(name, ("", [])), people).title for name in names}


def read_chat_summaries(conn: psycopg.Connection) -> list[ChatSummary]:
    """Every chat that has a row or a message, by name, with its title."""
    rows = conn.execute(
        "WITH counted AS (SELECT chat, count(*) AS n, max(posted_utc) AS last"
        "  FROM messages GROUP BY chat)"
        " SELECT coalesce(c.name, m.chat), coalesce(c.topic, ''), coalesce(c.members, '{}'),"
        " coalesce(m.n, 0), m.last"
        " FROM chats c FULL JOIN counted m ON m.chat = c.name ORDER BY 1"
    ).fetchall()
    names = _display_names(
        conn, (h for name, _, members, *_ in rows for h in (*members, *handles_in_name(name)))
    )
    return [
        ChatSummary(name, topic, n, last, _chat(name, topic, members, names).title)
        for name, topic, members, n, last in rows
    ]


def chats_titled_by(conn: psycopg.Connection, handles: Collection[str]) -> list[str]:
    """The chats whose title may show these people's names: those they are members of, and
    those whose id names them (a chat without a row is titled by its id's people)."""
    if not handles:
        return []
    wanted = sorted(set(handles))
    members = conn.execute(
        "SELECT name FROM chats WHERE members && %s::text[]", (wanted,)
    ).fetchall()
    return sorted(
        {row[0] for row in members}
        | {name for name in read_chat_names(conn) if set(handles_in_name(name)) & set(wanted)}
    )


def read_chat_names(conn: psycopg.Connection) -> list[str]:
    """Every chat name, from the rows and from the messages, sorted: a loose index scan of
    messages_chat_time, one probe a chat, instead of reading every message."""
    rows = conn.execute(
        "WITH RECURSIVE c(chat) AS ("
        "  (SELECT chat FROM messages ORDER BY chat LIMIT 1)"
        "  UNION ALL SELECT (SELECT m.chat FROM messages m WHERE m.chat > c.chat"
        "   ORDER BY m.chat LIMIT 1) FROM c WHERE c.chat IS NOT NULL)"
        " SELECT chat FROM c WHERE chat IS NOT NULL UNION SELECT name FROM chats ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def read_chat_members(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Each chat row's member handles."""
    return dict(conn.execute("SELECT name, members FROM chats").fetchall())


def read_latest_in(conn: psycopg.Connection, chats: Collection[str], limit: int) -> list[Message]:
    """The newest messages of these chats, newest first: each chat's newest `limit` through
    messages_chat_time (read backwards), then the newest of those, so that the cost follows
    the number of chats rather than of their messages."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM unnest(%s::text[]) AS c(name) CROSS JOIN LATERAL"
        f" (SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat = c.name"
        "  ORDER BY posted_utc DESC, id DESC LIMIT %s) AS m"
        " ORDER BY posted_utc DESC, id DESC LIMIT %s",
        (sorted(set(chats)), limit, limit),
    ).fetchall()
    return _messages(rows)


def read_media_chats(conn: psycopg.Connection, sha256: str) -> list[str]:
    """The chats whose messages show the archived file with this sha256 (through
    messages_media), sorted."""
    rows = conn.execute(
        "SELECT DISTINCT chat FROM messages WHERE media <> '{}' AND media &&"
        " (SELECT coalesce(array_agg(docid), '{}') FROM media WHERE sha256 = %s) ORDER BY 1",
        (sha256,),
    ).fetchall()
    return [row[0] for row in rows]


# A person's name on the statistics pages is the one on their latest message that has one
# (ties: the greatest id), fetched for each person through messages_chat_time rather than
# carried through the aggregate: ordering every message by time cost more than the counts.
_TALLY_PEOPLE = (
    "WITH counted AS (SELECT chat, author, count(*) AS n,"
    "  count(*) FILTER (WHERE edited_utc IS NOT NULL AND NOT deleted) AS edited,"
    "  count(*) FILTER (WHERE deleted) AS deleted,"
    "  max(posted_utc) AS last, max(posted_utc) FILTER (WHERE author_name <> '') AS named"
    "  FROM messages WHERE chat = ANY(%(chats)s) GROUP BY chat, author)"
    " SELECT chat, author, n, edited, deleted,"
    " to_char(coalesce(named, last) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),"
    " coalesce((SELECT m.author_name FROM messages m WHERE m.chat = c.chat"
    "   AND m.posted_utc = c.named AND m.author = c.author AND m.author_name <> ''"
    "   ORDER BY m.id DESC LIMIT 1), '')"
    " FROM counted c ORDER BY chat, author"
)
# Days as dates and hours by date_part: to_char and extract (numeric) cost twice as much.
_TALLY_DAYS = (
    "SELECT chat, (posted_utc AT TIME ZONE %(zone)s)::date AS day, count(*),"
    " count(*) FILTER (WHERE edited_utc IS NOT NULL AND NOT deleted),"
    " count(*) FILTER (WHERE deleted)"
    " FROM messages WHERE chat = ANY(%(chats)s) GROUP BY chat, day ORDER BY chat, day"
)
_TALLY_HOURS = (
    "SELECT chat, date_part('isodow', posted_utc AT TIME ZONE %(zone)s)::int AS weekday,"
    " date_part('hour', posted_utc AT TIME ZONE %(zone)s)::int AS hour, count(*)"
    " FROM messages WHERE chat = ANY(%(chats)s) GROUP BY chat, weekday, hour ORDER BY 1, 2, 3"
)


def read_tallies(
    conn: psycopg.Connection, chats: Sequence[str], time_zone: str = "UTC"
) -> tuple[list, list, list]:
    """The statistics of these chats, counted in the store, one query per table of
    tallies.py: per (chat, author) messages, edited, deleted, when (UTC) they last posted
    under a name, and that name; per (chat, day) messages, edited, deleted; per (chat, ISO
    weekday, hour) messages; days and hours in `time_zone` (an IANA name, as the pages
    tell their times)."""
    params = {"chats": sorted(set(chats)), "zone": time_zone}
    days = [
        (chat, day.isoformat(), *counts)
        for chat, day, *counts in conn.execute(_TALLY_DAYS, params).fetchall()
    ]
    return (
        conn.execute(_TALLY_PEOPLE, params).fetchall(),
        days,
        conn.execute(_TALLY_HOURS, params).fetchall(),
    )
