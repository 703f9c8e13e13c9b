"""The store's side of `chatchannels stats`: counts, offsets and host clocks, one snapshot."""

from __future__ import annotations

from typing import Any

import psycopg


def read_stats(conn: psycopg.Connection, consumer: str, topic: str) -> dict[str, Any]:
    """Counts for `chatchannels stats` (one snapshot: REPEATABLE READ)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

        def one(query: str, *params: Any) -> Any:
            return conn.execute(query, params).fetchone()[0]

        offsets = {
            p: (n, c)
            for p, n, c in conn.execute(
                "SELECT partition, next_offset, consumed FROM offsets"
                " WHERE consumer = %s AND topic = %s",
                (consumer, topic),
            )
        }
        hosts = {
            host: {"offset_s": skew, "last_seq": seq, "host_messages": n or 0}
            for host, skew, seq, n in conn.execute(
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
