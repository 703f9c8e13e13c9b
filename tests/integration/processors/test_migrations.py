import psycopg
import pytest

from chatchannels.processors.canonical import CanonicalMessage
from chatchannels.processors.clocks import HostClock
from chatchannels.processors.observations import HostMessage
from chatchannels.processors.pg.migrate import available_migrations, migrate
from chatchannels.processors.snapshots import dump_value, load_value
from tests.support.processor_events import engine_after_edits_and_deletes

pytestmark = pytest.mark.integration


def test_migrate_is_idempotent_and_schema_scoped(pg_dsn):
    first = migrate(pg_dsn, "replay_a")
    assert [m.version for m in first] == [m.version for m in available_migrations()]
    assert migrate(pg_dsn, "replay_a") == []
    migrate(pg_dsn, "public")
    with psycopg.connect(pg_dsn) as conn:
        tables = {
            (schema, name)
            for schema, name in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_schema IN ('public', 'replay_a')"
            )
        }
    for table in ("messages", "revisions", "observations", "changes", "media", "dead_letters"):
        assert ("public", table) in tables and ("replay_a", table) in tables


def test_snapshots_stored_as_jsonb_read_back_the_same_as_text(pg_dsn):
    """A store written before 0004 (snapshots as jsonb, which reorders keys and respaces
    them) gives back the same values once its snapshots are text."""
    engine = engine_after_edits_and_deletes()
    clocks = list(engine.clocks.values())
    host_messages = list(engine.host_messages.values())
    messages = engine.canonical_messages()
    migrate(pg_dsn, until=3)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for c in clocks:
            conn.execute(
                "INSERT INTO proc_host_clocks VALUES (%s, %s, %s, %s::jsonb)",
                (c.host, c.last_seq, c.skew_s, dump_value(c)),
            )
        for m in host_messages:
            conn.execute(
                "INSERT INTO proc_host_messages (host, local_id, first_partition, first_offset,"
                " state) VALUES (%s, %s, 0, 0, %s::jsonb)",
                (m.host, m.local_id, dump_value(m)),
            )
        for m in messages:
            conn.execute(
                "INSERT INTO proc_group_messages VALUES (%s, %s, %s, %s::jsonb)",
                (m.id, m.chat, m.author, dump_value(m)),
            )
        assert [m.version for m in migrate(pg_dsn, until=4)] == [4]

        def read(table: str, cls: type) -> list:
            rows = conn.execute(f"SELECT state FROM {table}").fetchall()
            assert all(isinstance(state, str) for (state,) in rows)
            return [load_value(cls, state) for (state,) in rows]

        assert sorted(read("proc_host_clocks", HostClock), key=repr) == sorted(clocks, key=repr)
        assert sorted(read("proc_host_messages", HostMessage), key=repr) == sorted(
            host_messages, key=repr
        )
        assert sorted(read("proc_group_messages", CanonicalMessage), key=repr) == sorted(
            messages, key=repr
        )
