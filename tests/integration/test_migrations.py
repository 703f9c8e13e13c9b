import psycopg
import pytest

from chatchannels.processors.migrate import available_migrations, migrate

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
    for table in ("messages", "revisions", "observations", "changes", "offsets", "dead_letters"):
        assert ("public", table) in tables and ("replay_a", table) in tables
