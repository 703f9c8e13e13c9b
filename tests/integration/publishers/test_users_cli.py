"""`chatchannels users` against a real store: readers, passwords, feed tokens and the
handle map, with its output (text and --json) and its errors."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers.access import readers_store
from chatchannels.publishers.access.passwords import verify_password
from chatchannels.publishers.access.tokens import token_digest

pytestmark = pytest.mark.integration


@pytest.fixture
def users(pg_dsn, tmp_path):
    migrate(pg_dsn)

    def run(*args: str, stdin: str | None = None, code: int = 0):
        result = CliRunner().invoke(main, ["users", *args, "--dsn", pg_dsn], input=stdin)
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


def secret_file(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "password"
    path.write_text(text + "\n")
    path.chmod(mode)
    return str(path)


def test_readers_are_added_changed_listed_and_removed(users, pg_dsn, tmp_path):
    users("add", "alice", "--admin", "--group", "ops", "--group", "staff", stdin="pw one\npw one\n")
    users("add", "sso-carol", "--no-password")
    listed = json.loads(users("list", "--json").output)
    assert [(r["name"], r["admin"], r["groups"], r["password"]) for r in listed] == [
        ("alice", True, ["ops", "staff"], True),
        ("sso-carol", False, [], False),
    ]
    with psycopg.connect(pg_dsn) as conn:
        before = readers_store.read_reader(conn, "alice")
    assert verify_password(before.password_hash, "pw one")
    out = users("passwd", "alice", "--password-file", secret_file(tmp_path, "pw two")).output
    assert "sessions have ended" in out and "pw two" not in out
    with psycopg.connect(pg_dsn) as conn:
        after = readers_store.read_reader(conn, "alice")
    assert verify_password(after.password_hash, "pw two") and after.epoch == before.epoch + 1
    # Refusals: one message, exit 2, what to do next.
    again = users("add", "alice", "--no-password", code=2)
    assert "exists" in again.output and "users passwd" in again.output
    assert "no reader named 'bob'" in users("remove", "bob", code=2).output
    open_file = users(
        "passwd", "alice", "--password-file", secret_file(tmp_path, "x", 0o644), code=2
    )
    assert "chmod 600" in open_file.output
    users("remove", "alice")
    assert [r["name"] for r in json.loads(users("list", "--json").output)] == ["sso-carol"]


def test_feed_tokens_are_shown_once_kept_as_digests_and_revoked(users, pg_dsn):
    users("add", "bob", "--no-password")
    made = json.loads(users("token", "add", "bob", "--label", "phone", "--json").output)
    token = made["token"]
    with psycopg.connect(pg_dsn) as conn:
        stored = conn.execute("SELECT token_sha256 FROM reader_tokens").fetchone()[0]
        assert bytes(stored) == token_digest(token)
        assert readers_store.read_token_reader(conn, token_digest(token)).name == "bob"
    listed = users("token", "list", "--json").output
    assert token not in listed
    assert json.loads(listed)[0]["label"] == "phone"
    users("token", "revoke", str(made["id"]))
    assert json.loads(users("token", "list", "bob", "--json").output)[0]["revoked_utc"]
    with psycopg.connect(pg_dsn) as conn:
        assert readers_store.read_token_reader(conn, token_digest(token)) is None
    assert "no feed token 999" in users("token", "revoke", "999", code=2).output
    # Removing the reader removes its tokens.
    users("remove", "bob")
    assert json.loads(users("token", "list", "--json").output) == []


def test_the_handle_map_is_edited_by_administrators(users):
    users("handles", "set", "alice.skype", "alice")
    users("handles", "set", "bob.skype", "bob")
    users("handles", "set", "alice.skype", "alice2")
    assert json.loads(users("handles", "list", "--json").output) == [
        {"handle": "alice.skype", "reader": "alice2"},
        {"handle": "bob.skype", "reader": "bob"},
    ]
    users("handles", "unset", "bob.skype")
    assert "is not mapped" in users("handles", "unset", "bob.skype", code=2).output
    assert users("handles", "list").output == "alice.skype\talice2\n"
