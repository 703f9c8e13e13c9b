"""The store's two PostgreSQL roles: one that writes (the processor, replay) and one that only
reads (the publishers, `serve`, `search`, `status`, `completeness`).

Roles belong to the cluster, privileges to each store: `ensure_login_role` makes a role
(once per cluster) and keeps its password what its secret file says; `grant_store` gives
both roles what they may do in one schema, and the default privileges that extend it to the
tables and sequences later migrations add. Everything is idempotent; `db migrate` runs both.

Passwords reach the server as SCRAM verifiers computed here by libpq, never in clear: a
statement log (`log_statement`) could hold what it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from chatchannels.pg_passwords import Login, role_logins, write_passfile
from chatchannels.settings import Settings

# What the roles must not have, whoever made them first.
_FORBIDDEN = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")
ATTRIBUTES = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")

WRITER_TABLES = "SELECT, INSERT, UPDATE, DELETE"
WRITER_SEQUENCES = "USAGE, SELECT, UPDATE"
READER_TABLES = "SELECT"
READER_SEQUENCES = "SELECT"
# Who may read the archive (migration 0009; `chatchannels users` writes them as the
# administrator): the processor has no business there, and a stolen processor password must
# not make its holder an administrator of the site.
NOT_THE_WRITERS = ("readers", "reader_tokens", "reader_handles")


@dataclass(frozen=True)
class StoreRoles:
    writer: str = "chatchannels_processor"
    reader: str = "chatchannels_reader"


class RoleError(RuntimeError):
    """A role the store needs is missing or cannot be made; the message says what to run."""


def store_roles(settings: Settings) -> StoreRoles:
    return StoreRoles(settings.pg_writer_role, settings.pg_reader_role)


def ensure_store_roles(settings: Settings) -> dict[str, str]:
    """Both roles on the administrator's server (`settings.postgres_dsn`), with the passwords
    of their secret files (made the first time), and the password file that hands them to
    the roles' DSNs. Role name -> "created", "updated" or "unchanged"."""
    logins = role_logins(settings)
    # First: the administrator's DSN may read its password from it (docker-compose.yml).
    write_passfile(settings)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        return {
            login.user: ensure_login_role(conn, login, settings.postgres_dsn) for login in logins
        }


def verifier(conn: psycopg.Connection, login: Login) -> str:
    """The SCRAM-SHA-256 verifier of the login's password (salted: a new one each time)."""
    raw = conn.pgconn.encrypt_password(
        login.password.encode(), login.user.encode(), b"scram-sha-256"
    )
    return raw.decode()


def ensure_login_role(conn: psycopg.Connection, login: Login, dsn: str) -> str:
    """Make the role if missing, take back any power it should not have, and set its password
    when it cannot log in with it at `dsn`'s server. "created", "updated" or "unchanged"."""
    role = sql.Identifier(login.user)
    columns = sql.SQL(", ").join(map(sql.Identifier, ("rolcanlogin", *_FORBIDDEN)))
    row = conn.execute(
        sql.SQL("SELECT {} FROM pg_roles WHERE rolname = %s").format(columns), (login.user,)
    ).fetchone()
    if row is None:
        try:
            conn.execute(
                sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
                    role, ATTRIBUTES, sql.Literal(verifier(conn, login))
                )
            )
        except psycopg.errors.DuplicateObject:
            # Another migrate (of another database of the cluster) made it meanwhile.
            return ensure_login_role(conn, login, dsn)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RoleError(
                f"cannot create PostgreSQL role {login.user}: {exc.diag.message_primary};"
                " run `db migrate` with an administrator's DSN (CREATEROLE), or create it"
            ) from None
        return "created"
    refuse_memberships(conn, login.user)
    changed = False
    if not row[0] or any(row[1:]):
        conn.execute(sql.SQL("ALTER ROLE {} {}").format(role, ATTRIBUTES))
        changed = True
    if not can_log_in(dsn, login):
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(verifier(conn, login)))
        )
        changed = True
    return "updated" if changed else "unchanged"


def refuse_memberships(conn: psycopg.Connection, role: str) -> None:
    """A role that is a member of another holds its rights (by SET ROLE, if not inherited):
    the reader a member of pg_write_all_data writes. Refused, not revoked: an administrator
    granted it, and should know it was wrong."""
    groups = [
        r[0]
        for r in conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s ORDER BY 1",
            (role,),
        )
    ]
    if groups:
        raise RoleError(
            f"PostgreSQL role {role} is a member of {', '.join(groups)}, and so holds their"
            f" rights; it must hold only what `db migrate` grants it: run"
            f" REVOKE {', '.join(groups)} FROM {role}"
        )


def can_log_in(dsn: str, login: Login) -> bool:
    """Whether `login` connects to `dsn`'s server with its password. Setting a password only
    when this fails leaves a role alone in the usual case: two migrations at once of two
    databases of one cluster would otherwise update the same catalog row together."""
    try:
        with psycopg.connect(dsn, user=login.user, password=login.password, connect_timeout=10):
            return True
    except psycopg.OperationalError:
        return False


def missing_roles(conn: psycopg.Connection, roles: StoreRoles) -> list[str]:
    names = [roles.writer, roles.reader]
    found = {
        r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,))
    }
    return [n for n in names if n not in found]


def grant_store(conn: psycopg.Connection, schema: str, roles: StoreRoles) -> None:
    """Both roles' privileges in `schema`: on what is there, and by default on the tables and
    sequences the connected role (the one migrations run as) creates there later; but none
    for the writer on the tables of who reads the archive."""
    missing = missing_roles(conn, roles)
    if missing:
        raise RoleError(
            f"PostgreSQL role(s) {', '.join(missing)} missing: run `chatchannels db migrate`"
            " (it creates them) or `chatchannels stack up` (the stack's server)"
        )
    where = sql.Identifier(schema)
    for role, tables, sequences in (
        (roles.writer, WRITER_TABLES, WRITER_SEQUENCES),
        (roles.reader, READER_TABLES, READER_SEQUENCES),
    ):
        grantee = sql.Identifier(role)
        on = {"TABLES": sql.SQL(tables), "SEQUENCES": sql.SQL(sequences)}
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(where, grantee))
        for kind, privileges in on.items():
            conn.execute(
                sql.SQL("GRANT {} ON ALL {} IN SCHEMA {} TO {}").format(
                    privileges, sql.SQL(kind), where, grantee
                )
            )
            conn.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON {} TO {}").format(
                    where, privileges, sql.SQL(kind), grantee
                )
            )
    # After the grants on all tables, and at every migrate: a later migration made them
    # with the default privileges.
    for (table,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
        (schema, list(NOT_THE_WRITERS)),
    ).fetchall():
        conn.execute(
            sql.SQL("REVOKE ALL ON {} FROM {}").format(
                sql.Identifier(schema, table), sql.Identifier(roles.writer)
            )
        )
