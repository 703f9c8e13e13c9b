"""`chatchannels completeness` over what the real processor consumed from a real topic: a
host whose events skip seq numbers is named with its session and the missing range, and a
replay rebuilds the same runs."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.processors.completeness import Run
from chatchannels.processors.pg.completeness import read_runs
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.replay.rebuild import ReplayOptions, replay
from tests.support.processor_events import Host
from tests.support.processor_harness import host_events, now_base, process_once, produce
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

LOST = (4, 6)


@pytest.fixture
def settings(stack, kafka_topic, pg_dsn):
    migrate(pg_dsn)
    return stack.replace(topic=kafka_topic, dsn=pg_dsn)


def hosts_with_a_gap(base: float) -> tuple[Host, Host]:
    """alice's agent loses seqs 4-6 between its spool and the log; bob's loses nothing; a
    dead letter of bob's (a record the processor refuses) still counts as received."""
    alice = Host("alice-pc", session="a1" * 16)
    bob = Host("bob-pc", skew=47, session="b2" * 16)
    for i in range(8):
        at = base + i
        if i + 1 == LOST[0]:
            alice.seq += LOST[1] - LOST[0] + 1
        alice.read(str(100 + i), posted=at, body=f"message {i}", at=at + 0.1)
        bob.read(str(200 + i), posted=at, body=f"message {i}", at=at + 0.1)
    bad, _ = bob.records[2]
    bad["payload"]["lines"].append("NOT A DESKTOP API REPLY")
    return alice, bob


def completeness(settings, *args: str):
    return CliRunner().invoke(
        main, ["completeness", "--dsn", settings.postgres_dsn, *args], catch_exceptions=False
    )


def test_completeness_names_the_host_session_and_missing_range(settings) -> None:
    alice, bob = hosts_with_a_gap(now_base(10))
    produce(settings, settings.topic, host_events([alice, bob]))
    summary = process_once(settings, settings.topic)
    assert summary.dead_letters == 1

    result = completeness(settings, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["complete"] is False
    assert [
        (g["host"], g["first_seq"], g["last_seq"], g["before_session"]) for g in report["gaps"]
    ] == [("alice-pc", 4, 6, alice.session)]
    by_host = {h["host"]: h for h in report["hosts"]}
    assert (by_host["alice-pc"]["first_seq"], by_host["alice-pc"]["last_seq"]) == (1, 11)
    assert (by_host["bob-pc"]["first_seq"], by_host["bob-pc"]["last_seq"]) == (1, 8)
    assert by_host["bob-pc"]["gaps"] == []
    assert by_host["alice-pc"]["last_heard_utc"] is not None
    (chat,) = report["chats"]
    assert {h["host"] for h in chat["hosts"]} == {"alice-pc", "bob-pc"}

    text = completeness(settings)
    assert text.exit_code == 1
    assert (
        f"GAP host alice-pc session {alice.session}: seq 4-6 missing"
        " (3 events lost between a spool and the log)"
    ) in text.output
    assert "bob-pc" not in text.output.split("hosts and sessions")[0]


def test_without_a_gap_it_exits_0(settings) -> None:
    alice = Host("alice-pc")
    for i in range(3):
        alice.read(str(i), posted=now_base(5) + i, body="hi", at=now_base(5) + i)
    produce(settings, settings.topic, host_events([alice]))
    process_once(settings, settings.topic)
    result = completeness(settings)
    assert result.exit_code == 0, result.output
    assert "complete: every event of every host reached the log" in result.output


def test_a_replay_rebuilds_the_same_runs(settings) -> None:
    alice, bob = hosts_with_a_gap(now_base(10))
    produce(settings, settings.topic, host_events([alice, bob]))
    process_once(settings, settings.topic)
    rebuilt = replay(settings, ReplayOptions(topic=settings.topic, keep=True, verify=True))
    assert rebuilt.verify is not None and rebuilt.verify.equal
    with psycopg.connect(settings.postgres_dsn) as conn:
        live = read_runs(conn)
        conn.execute(f'SET search_path TO "{rebuilt.schema}"')
        assert read_runs(conn) == live
    assert [(r.host, r.first_seq, r.last_seq) for r in live] == [
        ("alice-pc", 1, 3),
        ("alice-pc", 7, 11),
        ("bob-pc", 1, 8),
    ]
    assert all(isinstance(r, Run) and r.first_utc is not None for r in live)


def test_a_store_that_does_not_answer_exits_2_with_one_line(stack) -> None:
    port = free_port()
    away = f"postgresql://postgres@127.0.0.1:{port}/nothing"
    result = CliRunner().invoke(main, ["completeness", "--dsn", away])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    # The error names the server, never the DSN's user or password.
    assert line.startswith(f"Error: cannot use PostgreSQL at 127.0.0.1:{port}/nothing")
