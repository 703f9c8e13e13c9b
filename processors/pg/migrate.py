"""Schema migrations: numbered SQL files in processors/pg/migrations/, each run in a transaction.

A dependency-free runner rather than a migration framework: the store is written with plain
SQL, the files are few, and a replay (issue: replay) must be able to build the same schema
under another PostgreSQL schema name, which is a `search_path` away with plain files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from chatchannels.pg_roles import StoreRoles, grant_store

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("chatchannels.processors.pg").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def use_schema(conn: psycopg.Connection, schema: str) -> None:
    """Point the connection at `schema` (created if missing); every store query is unqualified."""
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    set_schema(conn, schema)


def set_schema(conn: psycopg.Connection, schema: str) -> None:
    """Point the connection at `schema`, which must exist: for the roles, which may not
    create one."""
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def migrate(
    dsn: str,
    schema: str = "public",
    *,
    until: int | None = None,
    roles: StoreRoles | None = None,
) -> list[Migration]:
    """Apply pending migrations in order (those numbered up to `until` only, if given: a
    store as an older version left it), each in its own transaction, then give the store's
    roles (`roles`, default their default names; they must exist: chatchannels/pg_roles.py)
    their privileges in `schema`. Returns the migrations applied.

    Idempotent, and safe when two processes migrate at once: an advisory lock serialises them.
    """
    applied: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        use_schema(conn, schema)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_utc timestamptz NOT NULL DEFAULT now())"
        )
        for migration in available_migrations():
            if until is not None and migration.version > until:
                break
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('chatchannels.migrate'))")
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
                ).fetchone()
                if done:
                    continue
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied.append(migration)
        with conn.transaction():
            # GRANTs rewrite catalog rows: two at once on one table would fail.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('chatchannels.migrate'))")
            grant_store(conn, schema, roles or StoreRoles())
    return applied
