"""A PostgreSQL login or privilege refused leaves as one line that says what to run, names
the server and never the password (chatchannels/errors.py)."""

from __future__ import annotations

import psycopg
import pytest

from chatchannels.errors import explain
from chatchannels.pg_roles import RoleError
from chatchannels.settings import Settings

SETTINGS = Settings(dsn="postgresql://alice:s3cret@db.example:6432/archive", schema="tenant_a")


@pytest.mark.parametrize(
    "said",
    [
        'FATAL:  password authentication failed for user "chatchannels_reader"',
        "fe_sendauth: no password supplied",
        'FATAL:  role "chatchannels_reader" does not exist',
    ],
)
def test_a_refused_login_says_to_run_migrate(said):
    away = psycopg.OperationalError(
        f'connection failed: connection to server at "db.example", port 6432 failed: {said}'
    )
    known = explain(away, SETTINGS)
    assert known.kind == "postgres-login"
    assert known.message.startswith("PostgreSQL at db.example:6432/archive refused the login: ")
    assert "`chatchannels db migrate`" in known.message
    assert "s3cret" not in known.message and "\n" not in known.message


def test_a_missing_database_is_no_login_problem():
    away = psycopg.OperationalError('FATAL:  database "archive" does not exist')
    assert explain(away, SETTINGS).kind == "postgres-unreachable"


def test_a_refused_privilege_names_the_schema_to_migrate():
    known = explain(psycopg.errors.InsufficientPrivilege("permission denied"), SETTINGS)
    assert known.kind == "postgres-permission"
    assert "(schema tenant_a) refused: permission denied;" in known.message
    assert "`chatchannels db migrate --schema tenant_a`" in known.message
    assert "s3cret" not in known.message


def test_a_role_that_cannot_be_made_is_known():
    assert explain(RoleError("cannot create role"), SETTINGS).kind == "postgres-roles"
