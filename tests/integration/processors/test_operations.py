"""Dead letters, redrive, the change stream, stats and SIGTERM, on real Kafka and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.store import Store
from chatchannels.rawevents import encode_raw_event
from chatchannels.store_contract import NOTIFY_CHANNEL
from tests.support.processor_events import CHAT, Host
from tests.support.processor_harness import (
    engine_over,
    host_events,
    now_base,
    process_once,
    produce,
    read_records,
    stored_messages,
)
from tests.support.signing import signed_headers

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack, kafka_topic, pg_dsn):
    migrate(pg_dsn)
    return stack.replace(topic=kafka_topic, dsn=pg_dsn)


def two_hosts(base: float) -> list[Host]:
    a, b = Host("a-pc", skew=12), Host("b-pc", skew=-30)
    for h, first in ((a, 10), (b, 20)):
        h.read(str(first), posted=base, body="one", at=base + 0.1)
        h.read(str(first + 1), posted=base + 1, body="two", at=base + 1.1)
    return [a, b]


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def target(settings) -> list[str]:
    return ["--topic", settings.topic, *store(settings)]


def store(settings) -> list[str]:
    """The flags of the commands that read the store alone (dead letters)."""
    return ["--dsn", settings.postgres_dsn]


def test_bad_records_become_dead_letters_and_the_rest_goes_on(settings) -> None:
    hosts = two_hosts(now_base(3))
    bad_timestamp = Host("c-pc")
    bad_timestamp.read("1", posted=99, body="from 1970")  # impossible TIMESTAMP
    schema_invalid = dict(host_events(hosts)[0], seq=-4)
    produce(
        settings,
        settings.topic,
        [
            *host_events(hosts[:1]),
            b"\xff not json",
            schema_invalid,
            *host_events([bad_timestamp]),
            *host_events(hosts[1:]),
        ],
    )
    summary = process_once(settings, settings.topic)
    assert (summary.records, summary.dead_letters) == (7, 3)
    with psycopg.connect(settings.postgres_dsn) as conn:
        dead = conn.execute(
            'SELECT kind, reason, host, seq, value FROM dead_letters ORDER BY partition, "offset"'
        ).fetchall()
    by_kind = {kind: (reason, host, seq, value) for kind, reason, host, seq, value in dead}
    assert set(by_kind) == {"schema", "value"}, dead
    assert any("not UTF-8" in d[1] for d in dead), dead
    assert any("raw event field seq" in d[1] and d[2] == "a-pc" for d in dead), dead
    assert "impossible timestamp 99" in by_kind["value"][0]
    assert by_kind["value"][1:3] == ("c-pc", 1)
    assert bytes(by_kind["value"][3]) == encode_raw_event(host_events([bad_timestamp])[0])

    messages = stored_messages(settings.postgres_dsn)
    assert sorted(m.body for m in messages) == ["one", "two"]
    engine = engine_over(read_records(settings, settings.topic), settings.match_tolerance_s)
    assert messages == engine.canonical_messages()

    listed = cli("deadletters", "list", "--json", *store(settings)).splitlines()
    assert len(listed) == 3 and {json.loads(line)["kind"] for line in listed} == set(by_kind)
    # style.md's example error points here: counted by kind, the newest of each shown.
    counted = json.loads(cli("stats", "--dead-letters", "--json", *store(settings)))
    assert (counted["total"], counted["pending"]) == (3, 3)
    assert [(k["kind"], k["total"]) for k in counted["kinds"]] == [("schema", 2), ("value", 1)]
    assert "impossible timestamp 99" in counted["kinds"][1]["latest_reason"]
    text = cli("stats", "--dead-letters", *store(settings))
    assert "schema\t2 (2 pending)" in text and "3 dead letters, 3 pending" in text
    # The decoder still refuses them: they stay, nothing else changes.
    assert "redriven 0, still refused 3" in cli("deadletters", "redrive", *store(settings))
    assert stored_messages(settings.postgres_dsn) == messages


def test_redrive_applies_a_record_the_decoder_accepts_now(settings) -> None:
    """A record refused by an older decoder (put in dead_letters by hand here) is applied."""
    host = Host("d-pc", skew=5)
    host.read("7", posted=now_base(1), body="late but fine")
    (event, broker_utc) = host.records[0]
    value = encode_raw_event(event)
    # Signed by d-pc's agent: a redrive checks the signature as the consumer did.
    (signer, signature) = (v for _, v in signed_headers(settings, "d-pc", b"d-pc", value))
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute(
            'INSERT INTO dead_letters (topic, partition, "offset", key, value, reason, broker_utc,'
            " signer, signature) VALUES (%s, 0, 41, %s, %s, 'older decoder refused it',"
            " to_timestamp(%s), %s, %s)",
            (settings.topic, b"d-pc", value, broker_utc, signer, signature),
        )
    assert "redriven 1, still refused 0" in cli("deadletters", "redrive", *store(settings))
    (message,) = stored_messages(settings.postgres_dsn)
    assert message.body == "late but fine" and message.observations[0].host == "d-pc"
    assert cli("deadletters", "list", *store(settings)) == ""
    assert "(redriven)" in cli("deadletters", "list", "--all", *store(settings))


def test_an_id_that_disappears_gets_a_change_row_and_an_alias(settings) -> None:
    base = now_base(4)
    late, early = Host("late-pc"), Host("early-pc")
    # late-pc only ever read the message after its edit: its id comes from the edited body.
    late.read("1", posted=base, body="fixed", edited=base + 2, edited_by="bob", at=base + 3)
    early.read("5", posted=base, body="typo", at=base + 0.5)
    early.edit("5", edited=base + 2, body="fixed", at=base + 2.5)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        produce(settings, settings.topic, host_events([late]))
        process_once(settings, settings.topic)
        (first,) = stored_messages(settings.postgres_dsn)
        produce(settings, settings.topic, host_events([early]))
        process_once(settings, settings.topic)
        (second,) = stored_messages(settings.postgres_dsn)
        notified = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
    assert first.id != second.id and [r.body for r in second.revisions] == ["typo", "fixed"]
    with psycopg.connect(settings.postgres_dsn) as conn:
        changes = conn.execute(
            "SELECT change_seq, kind, key, chat FROM changes WHERE kind = 'message'"
            " ORDER BY change_seq"
        ).fetchall()
        aliases = conn.execute("SELECT old_id, new_id FROM message_aliases").fetchall()
        ids = [i for (i,) in conn.execute("SELECT id FROM messages")]
        (last,) = conn.execute("SELECT max(change_seq) FROM changes").fetchone()
    assert [c[2] for c in changes] == [first.id, first.id, second.id]
    assert [c[0] for c in changes] == sorted(c[0] for c in changes)
    assert aliases == [(first.id, second.id)] and ids == [second.id]
    assert notified[-1] == str(last)


def test_stats_report_counts_clocks_and_lag(settings) -> None:
    produce(settings, settings.topic, host_events(two_hosts(now_base(3))))
    produce(settings, settings.topic, [b"{}"])
    before = json.loads(cli("stats", "--json", *target(settings)))
    assert before["events_consumed"] == 0 and sum(before["lag"].values()) == 5
    process_once(settings, settings.topic)
    found = json.loads(cli("stats", "--json", *target(settings)))
    assert found["events_consumed"] == 5 and sum(found["lag"].values()) == 0
    assert (found["messages"], found["merged_across_hosts"], found["observations"]) == (2, 2, 4)
    assert found["dead_letters"] == 1
    assert set(found["hosts"]) == {"a-pc", "b-pc"}
    assert 12 - 5 < found["hosts"]["a-pc"]["offset_s"] <= 12.5
    assert "merged across hosts" in cli("stats", *target(settings))


def test_sigterm_finishes_the_batch_and_exits_zero(settings) -> None:
    # A consumer group of its own: another run's member would delay the assignment.
    group = f"chatchannels-sigterm-{uuid.uuid4().hex[:8]}"
    produce(settings, settings.topic, host_events(two_hosts(now_base(3))))
    env = dict(os.environ, CHATCHANNELS_STACK_DIR=str(settings.stack_dir))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatchannels.cli",
            "process",
            "--group",
            group,
            "--kafka",
            settings.kafka_bootstrap,
            *target(settings),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store.connect(settings.postgres_dsn, consumer=group)
    try:
        deadline = time.monotonic() + 60
        seen: dict[int, int] = {}
        while sum(seen.values()) < 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"offsets stayed at {seen}"
            seen = store.stored_offsets(settings.topic)
            time.sleep(0.1)
    finally:
        store.close()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "processed 4 records" in out


def test_errors_say_what_failed_and_what_to_try(stack, kafka_topic, pg_dsn) -> None:
    """Unmigrated store and unreachable server: one line each, exit code 2, no traceback."""
    base = ["--topic", kafka_topic, "--kafka", stack.kafka_bootstrap]
    runner = CliRunner()
    unmigrated = runner.invoke(main, ["process", "--once", *base, "--dsn", pg_dsn])
    assert unmigrated.exit_code == 2
    assert "not migrated" in unmigrated.output and "chatchannels db migrate" in unmigrated.output
    nowhere = "postgresql://postgres@127.0.0.1:1/none"
    unreachable = runner.invoke(main, ["stats", *base, "--dsn", nowhere])
    assert unreachable.exit_code == 2
    assert "cannot use PostgreSQL at 127.0.0.1:1/none" in unreachable.output
    assert "Traceback" not in unmigrated.output + unreachable.output


def test_chat_rows_come_from_the_latest_chat_read_and_users_from_messages(settings) -> None:
    base = now_base(4)
    a, b = two_hosts(base)
    prefix = f"CHAT {CHAT} "
    a.event(CHAT, [prefix + "TOPIC Lunch", prefix + "MEMBERS bob Alice"], at=base + 2, obj="CHAT")
    b.event(
        CHAT,
        [prefix + "TOPIC Lunch at noon", prefix + f"TIMESTAMP {int(base) - 30}"],
        at=base + 3,
        obj="CHAT",
    )
    # The reads are a second apart in true time: each host's clock estimate must be tighter
    # than that, so each host's last event is live (appended as it is captured).
    for h in (a, b):
        h.event(CHAT, [prefix + "STATUS MULTI_SUBSCRIBED"], at=time.time(), obj="CHAT")
    produce(settings, settings.topic, host_events([a, b]))
    process_once(settings, settings.topic)
    with psycopg.connect(settings.postgres_dsn) as conn:
        chats = conn.execute("SELECT name, topic, members, created_utc FROM chats").fetchall()
        users = conn.execute("SELECT handle, display_name FROM users").fetchall()
        kinds = conn.execute("SELECT kind, key FROM changes WHERE kind <> 'message'").fetchall()
    ((name, topic, members, created),) = chats
    assert (name, topic, members) == (CHAT, "Lunch at noon", ["alice", "bob"])
    # b-pc's clock is 30 s slow, so its TIMESTAMP reads 30 s later in true time.
    assert abs(created.timestamp() - (int(base) - 30 + 30)) < 5
    assert users == [("bob", "Bob")]
    assert sorted(kinds) == [("chat", CHAT), ("user", "bob")]
