"""The DSNs of the store's roles and the libpq password file behind them: no password in any
DSN, each role's own user, and a password file libpq reads as written."""

import stat

import click
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from chatchannels.cli import SUBCOMMANDS, main
from chatchannels.options import store_options
from chatchannels.pg_passwords import Login, passfile_text, write_passfile
from chatchannels.secret_files import write_secret
from chatchannels.settings import SettingsError, load_settings


def test_role_dsns_are_the_admin_dsn_as_the_role_with_the_password_file(tmp_path):
    settings = load_settings(environ={"CHATCHANNELS_SECRETS_DIR": str(tmp_path)})
    admin = conninfo_to_dict(settings.postgres_dsn)
    for dsn, role in (
        (settings.processor_postgres_dsn, "chatchannels_processor"),
        (settings.reader_postgres_dsn, "chatchannels_reader"),
    ):
        parts = conninfo_to_dict(dsn)
        assert parts == {**admin, "user": role, "passfile": str(tmp_path / "pgpass")}


def test_a_password_in_the_admin_dsn_never_reaches_a_role_dsn():
    settings = load_settings(
        environ={"CHATCHANNELS_DSN": "postgresql://admin:s3cret@db.example:6432/archive"}
    )
    for dsn in (settings.processor_postgres_dsn, settings.reader_postgres_dsn):
        assert "s3cret" not in dsn
        parts = conninfo_to_dict(dsn)
        assert (parts["host"], parts["port"], parts["dbname"]) == ("db.example", "6432", "archive")
        assert "password" not in parts


def test_role_dsns_keep_the_password_file_the_admin_dsn_names(tmp_path):
    dsn = f"host=db user=admin passfile={tmp_path / 'other'}"
    settings = load_settings(environ={"CHATCHANNELS_DSN": dsn})
    assert conninfo_to_dict(settings.reader_postgres_dsn)["passfile"] == str(tmp_path / "other")


def test_explicit_role_dsns_win():
    settings = load_settings(
        environ={"CHATCHANNELS_READER_DSN": "host=replica user=ro", "CHATCHANNELS_DSN": "host=a"}
    )
    assert settings.reader_postgres_dsn == "host=replica user=ro"
    assert conninfo_to_dict(settings.processor_postgres_dsn)["host"] == "a"


@pytest.mark.parametrize(
    "env",
    [
        {"CHATCHANNELS_PG_READER_ROLE": "Robert'); DROP"},
        {"CHATCHANNELS_PG_READER_ROLE": "same", "CHATCHANNELS_PG_WRITER_ROLE": "same"},
    ],
)
def test_role_names_are_plain_and_distinct(env):
    with pytest.raises(SettingsError, match="pg_"):
        load_settings(environ=env)


def test_passfile_escapes_what_libpq_would_split_on():
    text = passfile_text([Login("u", "a:b\\c"), Login("v", "plain")])
    assert text.splitlines() == ["*:*:*:u:a\\:b\\\\c", "*:*:*:v:plain"]


def test_passfile_holds_the_passwords_there_are_owner_only(tmp_path):
    settings = load_settings(environ={"CHATCHANNELS_SECRETS_DIR": str(tmp_path / "s")})
    write_secret(settings.secrets_root / "pg-reader.password", "r-pass")
    path = write_passfile(settings)
    assert path.read_text().splitlines() == ["*:*:*:chatchannels_reader:r-pass"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert repr(Login("u", "r-pass")).count("r-pass") == 0


@click.command()
@store_options
@click.pass_obj
def show_reader_dsn(settings) -> None:
    """Print the reader's DSN the command would use."""
    click.echo(settings.reader_postgres_dsn)


def test_the_dsn_flag_names_the_server_of_the_commands_role_too(monkeypatch):
    monkeypatch.setitem(SUBCOMMANDS, "show-reader-dsn", f"{__name__}:show_reader_dsn")
    monkeypatch.setenv("CHATCHANNELS_READER_DSN", "host=configured user=ro")
    runner = CliRunner()
    assert runner.invoke(main, ["show-reader-dsn"]).output == "host=configured user=ro\n"
    given = runner.invoke(main, ["show-reader-dsn", "--dsn", "host=given user=admin"]).output
    assert conninfo_to_dict(given)["host"] == "given"
    assert conninfo_to_dict(given)["user"] == "chatchannels_reader"
