"""The store's PostgreSQL roles on the real server, tried as an attacker holding the reader's
password would: it reads what the publishers need and cannot change anything; the processor
writes as its own role; a wrong password is refused; `db migrate` makes all of it, again and
again, for two schemas of one cluster, and never shows a password."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from chatchannels.cli import main
from chatchannels.processors.pg.migrate import migrate
from chatchannels.secret_files import read_secret
from tests.support.processor_events import Host
from tests.support.processor_harness import host_events, now_base, process_once, produce

pytestmark = pytest.mark.integration

SCHEMAS = ("public", "second")
OUTSIDE_TRANSACTIONS = ("CREATE DATABASE",)


@pytest.fixture
def settings(stack, kafka_topic, pg_dsn):
    return stack.replace(topic=kafka_topic, dsn=pg_dsn)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def passwords(settings) -> list[str]:
    return [
        read_secret(settings.secrets_root / name)
        for name in ("pg-admin.password", "pg-processor.password", "pg-reader.password")
    ]


def tables(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
    ).fetchall()
    return [r[0] for r in rows]


def denied(conn: psycopg.Connection, statement: sql.Composable | str) -> str | None:
    """None if the server refuses `statement` for want of privilege; else what happened.
    In a transaction (LOCK TABLE needs one), but for what cannot run in one."""
    try:
        if isinstance(statement, str) and statement.startswith(OUTSIDE_TRANSACTIONS):
            conn.execute(statement)
        else:
            with conn.transaction():
                conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return None
    except psycopg.Error as exc:
        return f"{statement!r}: {type(exc).__name__}: {exc}"
    return f"{statement!r}: allowed"


def as_role(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def migrated_with_messages(settings) -> None:
    for schema in SCHEMAS:
        code, output = cli("db", "migrate", "--dsn", settings.dsn, "--schema", schema)
        assert code == 0, output
    alice, bob = Host("alice-pc"), Host("bob-pc", skew=30)
    base = now_base(4)
    for i in range(3):
        for host in (alice, bob):
            host.read(str(i), posted=base + i, body=f"hello {i}", at=base + i + 0.1)
    produce(settings, settings.topic, host_events([alice, bob]))
    assert process_once(settings, settings.topic).records == 6


def first_column(conn: psycopg.Connection, schema: str, table: str) -> str:
    """The table's first column that an UPDATE may set: an identity column refuses any value
    before the privilege is even looked at, which would hide what is tested."""
    return conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s AND is_identity = 'NO'"
        " ORDER BY ordinal_position LIMIT 1",
        (schema, table),
    ).fetchone()[0]


def row_attacks(schema: str, table: str, column: str) -> list[sql.Composable]:
    """What a role that may only read tries, to change a table's rows or hold up writers."""
    t, c = sql.Identifier(schema, table), sql.Identifier(column)
    return [
        sql.SQL("INSERT INTO {} DEFAULT VALUES").format(t),
        sql.SQL("UPDATE {} SET {} = {}").format(t, c, c),
        sql.SQL("DELETE FROM {}").format(t),
        sql.SQL("COPY {} FROM STDIN").format(t),
        sql.SQL("SELECT * FROM {} FOR UPDATE").format(t),
        sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(t),
    ]


def structure_attacks(schema: str, table: str) -> list[sql.Composable | str]:
    """What neither role may do: change the store's structure or empty it wholesale."""
    t, s = sql.Identifier(schema, table), sql.Identifier(schema)
    return [
        sql.SQL("TRUNCATE {}").format(t),
        sql.SQL("ALTER TABLE {} ADD COLUMN planted int").format(t),
        sql.SQL("CREATE INDEX planted ON {} ((1))").format(t),
        sql.SQL("CREATE TRIGGER planted BEFORE INSERT ON {} EXECUTE FUNCTION now()").format(t),
        sql.SQL("DROP TABLE {}").format(t),
        sql.SQL("CREATE TABLE {}.planted (x int)").format(s),
        sql.SQL("CREATE VIEW {}.planted AS SELECT 1").format(s),
        sql.SQL("CREATE FUNCTION {}.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'").format(s),
        sql.SQL("CREATE SCHEMA planted"),
        sql.SQL("SET ROLE postgres"),
        sql.SQL("CREATE ROLE planted LOGIN"),
        "CREATE DATABASE planted",
    ]


# Any privilege on a table but reading it.
MORE_THAN_READING = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"


def test_the_reader_reads_every_table_and_changes_nothing(settings) -> None:
    migrated_with_messages(settings)
    with as_role(settings.postgres_dsn) as admin, as_role(settings.reader_postgres_dsn) as reader:
        assert reader.execute("SELECT current_user").fetchone() == ("chatchannels_reader",)
        problems: list[str | None] = []
        for schema in SCHEMAS:
            names = tables(admin, schema)
            assert {"messages", "changes", "chats", "offsets"} <= set(names)
            for table in names:
                t = sql.Identifier(schema, table)
                count = sql.SQL("SELECT count(*) FROM {}").format(t)
                assert reader.execute(count).fetchone() == admin.execute(count).fetchone()
                attacks = row_attacks(schema, table, first_column(admin, schema, table))
                problems += [denied(reader, a) for a in attacks]
                problems += [denied(reader, a) for a in structure_attacks(schema, table)]
                assert not reader.execute(
                    "SELECT has_table_privilege(current_user, %s, %s)",
                    (f"{schema}.{table}", MORE_THAN_READING),
                ).fetchone()[0]
        sequence = admin.execute(
            "SELECT schemaname || '.' || sequencename FROM pg_sequences LIMIT 1"
        ).fetchone()[0]
        problems += [
            denied(reader, s)
            for s in (
                f"SELECT nextval('{sequence}')",
                f"SELECT setval('{sequence}', 1)",
                "CREATE TABLE public.planted (x int)",
                "SET ROLE chatchannels_processor",
                "ALTER ROLE chatchannels_reader SUPERUSER",
                "ALTER ROLE chatchannels_processor PASSWORD 'mine'",
            )
        ]
        assert [p for p in problems if p is not None] == []
        assert admin.execute("SELECT count(*) FROM messages").fetchone()[0] == 3


def test_the_writer_writes_rows_and_nothing_else(settings) -> None:
    migrated_with_messages(settings)
    with as_role(settings.processor_postgres_dsn) as writer:
        assert writer.execute("SELECT current_user").fetchone() == ("chatchannels_processor",)
        with writer.transaction(force_rollback=True):
            writer.execute("DELETE FROM dead_letters")
            writer.execute("UPDATE chats SET topic = topic")
            writer.execute("SELECT * FROM offsets FOR UPDATE")
        problems = [denied(writer, a) for a in structure_attacks("second", "messages")]
        problems += [denied(writer, "ALTER ROLE chatchannels_reader PASSWORD 'mine'")]
        assert [p for p in problems if p is not None] == []


def test_each_command_connects_as_its_role(settings, tmp_path) -> None:
    """Taking a right away from a role stops the commands that run as it, and no other:
    the processor writes as the writer, publish and completeness read as the reader."""
    migrated_with_messages(settings)
    with as_role(settings.postgres_dsn) as admin:
        admin.execute("REVOKE INSERT ON observations FROM chatchannels_processor")
        alice = Host("alice-pc")
        alice.read("late", posted=now_base(1), body="late")
        produce(settings, settings.topic, host_events([alice]))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            process_once(settings, settings.topic)
        admin.execute("GRANT INSERT ON observations TO chatchannels_processor")
        assert process_once(settings, settings.topic).records == 1

        site = ["--dsn", settings.dsn, "--site-dir", str(tmp_path / "site")]
        assert cli("publish", "--once", "--quiet", *site) == (0, "")
        assert cli("completeness", "--dsn", settings.dsn, "--json")[0] == 0
        admin.execute("REVOKE SELECT ON changes, seq_runs FROM chatchannels_reader")
        elsewhere = ["--dsn", settings.dsn, "--site-dir", str(tmp_path / "b")]
        code, output = cli("publish", "--once", "--quiet", *elsewhere)
        assert code != 0 and "permission denied" in output
        assert cli("completeness", "--dsn", settings.dsn, "--json")[0] != 0


def test_wrong_or_no_password_is_refused(settings, tmp_path) -> None:
    migrated_with_messages(settings)
    empty = tmp_path / "pgpass"
    empty.write_text("")
    empty.chmod(0o600)
    for user in ("chatchannels_reader", "chatchannels_processor", "postgres"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(settings.postgres_dsn, user=user, password="guessed")
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(settings.postgres_dsn, user=user, passfile=str(empty))
    # The one-line error says what to run, and shows no password.
    nopass = psycopg.conninfo.make_conninfo(settings.postgres_dsn, passfile=str(empty))
    code, output = cli("completeness", "--dsn", nopass)
    assert code == 2
    assert "refused the login" in output and "db migrate" in output
    assert not any(p in output for p in passwords(settings))


def test_migrate_twice_two_schemas_one_cluster_shows_no_password(settings) -> None:
    outputs = []
    for _ in range(2):
        for schema in SCHEMAS:
            code, output = cli("db", "migrate", "--dsn", settings.dsn, "--schema", schema, "--json")
            assert code == 0, output
            outputs.append(json.loads(output))
    assert [len(o["applied"]) > 0 for o in outputs] == [True, True, False, False]
    assert all(
        o["roles"] == {"chatchannels_processor": "unchanged", "chatchannels_reader": "unchanged"}
        for o in outputs
    )
    code, text = cli("db", "migrate", "--dsn", settings.dsn, "--schema", "second")
    assert (code, text) == (0, "schema is up to date\n")
    assert not any(p in json.dumps(outputs) + text for p in passwords(settings))
    with as_role(settings.processor_postgres_dsn) as writer:
        for schema in SCHEMAS:
            with writer.transaction(force_rollback=True):
                insert = "INSERT INTO {} (handle, display_name, change_seq) VALUES ('x', 'y', 0)"
                writer.execute(sql.SQL(insert).format(sql.Identifier(schema, "users")))


def test_tables_created_later_are_granted_by_default(settings) -> None:
    """A table a later migration adds (as the administrator) is the roles' at once."""
    migrate(settings.dsn)
    with as_role(settings.postgres_dsn) as admin:
        admin.execute("CREATE TABLE later (id bigserial PRIMARY KEY, note text)")
        admin.execute("INSERT INTO later (note) VALUES ('from a later migration')")
    with as_role(settings.processor_postgres_dsn) as writer:
        writer.execute("INSERT INTO later (note) VALUES ('written by the processor')")
    with as_role(settings.reader_postgres_dsn) as reader:
        assert reader.execute("SELECT count(*) FROM later").fetchone() == (2,)
        assert denied(reader, "INSERT INTO later (note) VALUES ('no')") is None


def test_the_writer_cannot_make_itself_a_reader_of_the_site(settings) -> None:
    """The tables of who may read the archive are the administrator's (`chatchannels users`):
    a stolen processor password adds no reader, no token, no handle, and reads none."""
    migrate(settings.dsn)
    with as_role(settings.postgres_dsn) as admin:
        # As migration 0009 makes it, where it is not merged yet.
        admin.execute("CREATE TABLE IF NOT EXISTS readers (name text PRIMARY KEY)")
        admin.execute("INSERT INTO readers (name) VALUES ('alice')")
    migrate(settings.dsn)
    with as_role(settings.processor_postgres_dsn) as writer:
        attempts = [
            "INSERT INTO readers (name) VALUES ('mallory')",
            "UPDATE readers SET name = 'mallory'",
            "DELETE FROM readers",
            "SELECT * FROM readers",
        ]
        assert [p for p in (denied(writer, a) for a in attempts) if p is not None] == []
    with as_role(settings.reader_postgres_dsn) as reader:
        assert reader.execute("SELECT name FROM readers").fetchall() == [("alice",)]
