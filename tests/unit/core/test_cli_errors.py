"""Known errors leave as one line and exit code 2, from one place (chatchannels/errors.py)."""

from __future__ import annotations

import json

import click
import psycopg
import pytest
from click.testing import CliRunner
from kafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from chatchannels.cli import SUBCOMMANDS, main
from chatchannels.errors import CommandError, explain
from chatchannels.options import json_option, store_options
from chatchannels.settings import Settings, SettingsError

SECRET_DSN = "postgresql://alice:s3cret@db.example:6432/archive"
SETTINGS = Settings(dsn=SECRET_DSN, kafka="k1:9092,k2:9092", schema="tenant_a")


def test_postgres_away_names_the_server_but_not_the_password():
    away = psycopg.OperationalError(
        'connection failed: connection to server at "db.example", port 6432 failed:'
        " Connection refused\n\tIs the server running on that host?"
    )
    known = explain(away, SETTINGS)
    assert known.kind == "postgres-unreachable"
    assert known.message.startswith("cannot use PostgreSQL at db.example:6432/archive: ")
    assert "Connection refused" in known.message and "--dsn" in known.message
    assert "s3cret" not in known.message and "\n" not in known.message


def test_an_unmigrated_store_says_which_migration_to_run():
    known = explain(psycopg.errors.UndefinedTable("relation missing"), SETTINGS)
    assert known.kind == "store-not-migrated"
    assert "(schema tenant_a) is not migrated" in known.message
    assert "`chatchannels db migrate --schema tenant_a`" in known.message


def test_kafka_away_names_the_servers():
    known = explain(KafkaTimeoutError("Unable to bootstrap from k1:9092"), SETTINGS)
    assert known.kind == "kafka-unreachable"
    assert known.message.startswith(
        "cannot reach Kafka at k1:9092,k2:9092"
        " (KafkaTimeoutError: Unable to bootstrap from k1:9092); is it up"
    )
    refused = explain(UnknownTopicOrPartitionError("x"), SETTINGS)
    assert (refused.kind, refused.message) == (
        "kafka",
        "Kafka at k1:9092,k2:9092 refused: [Error 3] UnknownTopicOrPartitionError: x",
    )


def test_project_errors_keep_their_message_and_bugs_are_not_known():
    assert explain(SettingsError("setting 'pg_port' from X: 'a' is not a int"), None).kind == (
        "settings"
    )
    assert explain(CommandError("port taken", kind="serve"), None).message == "port taken"
    assert explain(ValueError("a bug"), SETTINGS) is None
    assert explain(psycopg.errors.UniqueViolation("a bug too"), SETTINGS) is None


@click.command()
@click.argument("what")
@store_options
@json_option
@click.pass_obj
def raising(settings: Settings, what: str, as_json: bool) -> None:
    """Raise what the test asks for."""
    if what == "postgres":
        raise psycopg.OperationalError("connection failed: nobody there")
    if what == "command":
        raise CommandError("cannot listen on 127.0.0.1:8080: in use; try --port", "serve")
    raise ValueError(f"{what} is a bug ({settings.schema}, {as_json})")


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setitem(SUBCOMMANDS, "raising", f"{__name__}:raising")

    def invoke(*args: str) -> click.testing.Result:
        return CliRunner().invoke(main, list(args))

    return invoke


def test_a_known_error_is_one_line_and_exit_2(run):
    result = run("raising", "--dsn", "postgresql://u@127.0.0.1:1/none", "postgres")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: cannot use PostgreSQL at 127.0.0.1:1/none: connection failed: nobody there;"
        " is it up (`chatchannels stack up`, or `stack status`) and --dsn right?"
    ]
    served = run("raising", "command")
    assert (served.exit_code, served.stderr) == (2, served.stderr.splitlines()[0] + "\n")


def test_with_json_the_error_is_also_one_json_object_on_stdout(run):
    result = run("raising", "--json", "command")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {"kind": "serve", "message": "cannot listen on 127.0.0.1:8080: in use; try --port"}
    }
    assert result.stderr.startswith("Error: cannot listen")


def test_debug_shows_the_traceback_of_known_errors(run):
    result = run("--debug", "raising", "postgres")
    assert isinstance(result.exception, psycopg.OperationalError)
    assert result.exit_code == 1 and "Error:" not in result.output


def test_unknown_errors_keep_their_traceback(run):
    result = run("raising", "--schema", "s", "oops")
    assert isinstance(result.exception, ValueError)
    assert str(result.exception) == "oops is a bug (s, False)"


def test_a_bad_settings_file_is_one_line(tmp_path, run):
    config = tmp_path / "bad.toml"
    config.write_text("pg_port = 'x'")
    result = run("--config", str(config), "raising", "command")
    assert result.exit_code == 2
    assert result.stderr == f"Error: setting 'pg_port' from {config}: 'x' is not a int\n"
