"""The stack's PostgreSQL checks passwords over TCP, on a cluster of the test's own: none
or a wrong one is refused, the password file's is accepted, the files and the socket's
folder are the owner's only, and a cluster an older stack left trusting everyone is brought
under the rules by `stack up`."""

from __future__ import annotations

import json
import os
import stat

import psycopg
import pytest
from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.secret_files import read_secret
from chatchannels.settings import Settings, settings_env
from chatchannels.stack.postgres import PostgresPaths, reload_config, set_passwords
from tests.support.faults import private_stack

pytestmark = pytest.mark.integration

USERS = ("postgres", "chatchannels_processor", "chatchannels_reader")


def refusals(dsn: str) -> list[str]:
    """How the server answers each user with no password and with a wrong one."""
    found = []
    for user in USERS:
        for password in (None, "guessed"):
            try:
                psycopg.connect(dsn, user=user, password=password, passfile="/dev/null").close()
                found.append(f"{user} {password}: accepted")
            except psycopg.OperationalError as exc:
                found.append(str(exc).split(": ")[-1].strip())
    return found


def env(settings: Settings) -> dict[str, str]:
    """The environment that points a command at `settings`' stack."""
    return {**os.environ, **settings_env(settings), "CHATCHANNELS_PG_PORT": str(settings.pg_port)}


# What the server says to each user with no password, then with a wrong one.
REFUSED = [
    said
    for user in USERS
    for said in ("no password supplied", f'password authentication failed for user "{user}"')
]


def test_tcp_logins_need_the_password(stack, private_stack_dir) -> None:
    with private_stack(stack, private_stack_dir, kafka=False) as settings:
        assert refusals(settings.postgres_dsn) == REFUSED
        for dsn, user in (
            (settings.postgres_dsn, "postgres"),
            (settings.processor_postgres_dsn, "chatchannels_processor"),
            (settings.reader_postgres_dsn, "chatchannels_reader"),
        ):
            with psycopg.connect(dsn) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (user,)
        secrets = sorted(p.name for p in settings.secrets_root.iterdir())
        assert secrets == [
            "pg-admin.password",
            "pg-processor.password",
            "pg-reader.password",
            "pgpass",
        ]
        for path in settings.secrets_root.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            read_secret(path)
        assert stat.S_IMODE(PostgresPaths.of(settings).run.stat().st_mode) == 0o700


def test_stack_up_puts_a_trusting_cluster_under_the_rules(stack, private_stack_dir) -> None:
    with private_stack(stack, private_stack_dir, kafka=False) as settings:
        hba = PostgresPaths.of(settings).data / "pg_hba.conf"
        owner = hba.stat()
        # As the stack made clusters before passwords were checked.
        hba.write_text("local all all trust\nhost all all all trust\n")
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            reload_config(settings, conn)
        with psycopg.connect(settings.postgres_dsn, user="chatchannels_reader", password="x"):
            pass  # trusted: any password, or none, gets in
        set_passwords(settings)
        assert (hba.stat().st_uid, hba.stat().st_gid) == (owner.st_uid, owner.st_gid)
        assert refusals(settings.postgres_dsn) == REFUSED
        with psycopg.connect(settings.reader_postgres_dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("chatchannels_reader",)


def test_migrate_takes_back_a_changed_password_and_powers(stack, private_stack_dir) -> None:
    """A role may change its own password (locking its command out), and an administrator
    may give a role too much: the next `db migrate` puts both back as the settings say."""
    with private_stack(stack, private_stack_dir, kafka=False) as settings:
        with psycopg.connect(settings.reader_postgres_dsn, autocommit=True) as reader:
            reader.execute("ALTER ROLE chatchannels_reader PASSWORD 'mine'")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(settings.reader_postgres_dsn)
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
            admin.execute("ALTER ROLE chatchannels_processor CREATEDB CREATEROLE")
        result = CliRunner().invoke(main, ["db", "migrate", "--json"], env=env(settings))
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["roles"] == {
            "chatchannels_processor": "updated",
            "chatchannels_reader": "updated",
        }
        with psycopg.connect(settings.reader_postgres_dsn) as reader:
            assert reader.execute("SELECT count(*) FROM messages").fetchone() == (0,)
        with psycopg.connect(settings.postgres_dsn) as admin:
            powers = admin.execute(
                "SELECT rolcreatedb, rolcreaterole FROM pg_roles"
                " WHERE rolname = 'chatchannels_processor'"
            ).fetchone()
        assert powers == (False, False)


def test_migrate_refuses_a_role_made_a_member_of_another(stack, private_stack_dir) -> None:
    with private_stack(stack, private_stack_dir, kafka=False) as settings:
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
            admin.execute("GRANT pg_write_all_data TO chatchannels_reader")
        result = CliRunner().invoke(main, ["db", "migrate"], env=env(settings))
        assert result.exit_code == 2
        assert (
            "role chatchannels_reader is a member of pg_write_all_data" in result.output
            and "REVOKE pg_write_all_data FROM chatchannels_reader" in result.output
        )
