"""PostgreSQL away or not migrated, Kafka away, on the real commands: one line, exit code 2, no
traceback unless --debug (issue 18, "Done when")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chatchannels.processors.pg.migrate import migrate
from tests.support.stack import free_port

# Every command that opens the store before anything else.
STORE_COMMANDS = [
    ("db", "migrate"),
    ("replay",),
    ("process", "--once"),
    ("publish", "--once"),
    ("stats", "--dead-letters"),
]


def chatchannels(*args: str, site_dir=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if site_dir is not None:
        env["CHATCHANNELS_SITE_DIR"] = str(site_dir)
    return subprocess.run(
        [sys.executable, "-m", "chatchannels.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def nowhere() -> str:
    """A DSN whose port nothing listens on (bound once, then released)."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/archive"


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_postgres_away_is_one_line_and_exit_2(stack, nowhere, tmp_path, command):
    result = chatchannels(*command, "--dsn", nowhere, site_dir=tmp_path)
    assert result.returncode == 2, result.stderr
    port = nowhere.split(":")[-1].split("/")[0]
    assert result.stderr.splitlines() == [result.stderr.rstrip("\n")], result.stderr
    assert result.stderr.startswith(f"Error: cannot use PostgreSQL at 127.0.0.1:{port}/archive: ")
    assert "Connection refused" in result.stderr and "--dsn" in result.stderr
    assert result.stdout == ""


def test_with_debug_the_traceback_shows(stack, nowhere):
    result = chatchannels("--debug", "db", "migrate", "--dsn", nowhere)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "psycopg.OperationalError" in result.stderr
    assert "Error: cannot use PostgreSQL" not in result.stderr


def test_with_json_the_error_is_json_on_stdout(stack, nowhere):
    result = chatchannels("db", "migrate", "--json", "--dsn", nowhere)
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "postgres-unreachable"
    assert error["message"] in result.stderr


def test_an_unmigrated_store_names_its_schema_and_the_fix(stack, pg_dsn, tmp_path):
    migrate(pg_dsn)
    result = chatchannels(
        "publish", "--once", "--dsn", pg_dsn, "--schema", "elsewhere", site_dir=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert "(schema elsewhere) is not migrated" in result.stderr
    assert "run `chatchannels db migrate --schema elsewhere`" in result.stderr
    assert "Traceback" not in result.stderr
    # Migrated there, the same command publishes that store.
    assert chatchannels("db", "migrate", "--dsn", pg_dsn, "--schema", "elsewhere").returncode == 0
    published = chatchannels(
        "publish", "--once", "--json", "--dsn", pg_dsn, "--schema", "elsewhere", site_dir=tmp_path
    )
    assert published.returncode == 0, published.stderr
    found = json.loads(published.stdout)
    assert found["site_dir"] == str(tmp_path)
    assert [p["publisher"] for p in found["publishers"]] == ["site", "search"]


def test_kafka_away_is_one_line_and_exit_2(stack, pg_dsn):
    """kafka-python gives up bootstrapping after about 30 s; its own retry log stays quiet."""
    migrate(pg_dsn)
    kafka = f"127.0.0.1:{free_port()}"
    result = chatchannels("process", "--once", "--dsn", pg_dsn, "--kafka", kafka)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.rstrip("\n")], result.stderr
    assert result.stderr.startswith(f"Error: cannot reach Kafka at {kafka} (")
    assert "--kafka right?" in result.stderr
