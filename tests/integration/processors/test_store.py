"""The durable processor against real Kafka and PostgreSQL: truth, the Engine, exactly once."""

from __future__ import annotations

import psycopg
import pytest

from chatchannels.processors.pg import deadletters, state
from chatchannels.processors.pg.groups import Groups
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.store import Store
from chatchannels.processors.rows import MESSAGE_COLUMNS, message_row
from tests.support.processor_events import CHAT, Host
from tests.support.processor_harness import (
    dump_tables,
    engine_over,
    generate_events,
    host_events,
    now_base,
    process_once,
    produce,
    read_records,
    stored_messages,
)

pytestmark = pytest.mark.integration


def three_hosts(base: float) -> list[Host]:
    """Skews +0, +47, -83 s in three time zones; carol is offline at first and backfills."""
    alice = Host("alice-pc", skew=0, tz_offset_s=3600)
    bob = Host("bob-pc", skew=47, tz_offset_s=-18000)
    carol = Host("carol-pc", skew=-83, tz_offset_s=19800)
    hello, ping, oops = base + 1, base + 2, base + 4
    for h, first in ((alice, 100), (bob, 200)):
        h.read(str(first), posted=hello, body="hello", at=hello + 0.1)
        h.read(str(first + 1), posted=ping, body="ping", author="bot", at=ping + 0.1)
        h.edit(str(first), edited=base + 3, body="hello world", at=base + 3.1)
        h.read(str(first + 2), posted=base + 3.5, body="ping", author="bot", at=base + 3.6)
        h.read(str(first + 3), posted=oops, body="oops", at=oops + 0.1)
        h.edit(str(first + 3), edited=base + 5, body="", at=base + 5.1)
    # carol comes online at base + 6 and reads the history: already edited, already deleted.
    carol.read(
        "300",
        posted=hello,
        body="hello world",
        edited=base + 3,
        edited_by="bob",
        at=base + 6,
        reason="backfill",
    )
    carol.read("301", posted=ping, body="ping", author="bot", at=base + 6.1, reason="backfill")
    carol.read(
        "302", posted=base + 3.5, body="ping", author="bot", at=base + 6.2, reason="backfill"
    )
    carol.read(
        "303",
        posted=oops,
        body="",
        edited=base + 5,
        edited_by="bob",
        at=base + 6.3,
        reason="backfill",
    )
    return [alice, bob, carol]


@pytest.fixture
def db(pg_dsn):
    migrate(pg_dsn)
    return pg_dsn


@pytest.fixture
def settings(stack, kafka_topic, db):
    return stack.replace(topic=kafka_topic, dsn=db)


def test_three_hosts_give_the_true_messages_and_agree_with_the_engine(settings) -> None:
    base = now_base(8)
    produce(settings, settings.topic, host_events(three_hosts(base)))
    summary = process_once(settings, settings.topic)
    assert summary.records == 16 and summary.dead_letters == 0

    messages = stored_messages(settings.postgres_dsn)
    truth = [
        ("bob", "hello world", "edited", ["hello", "hello world"], base + 1),
        ("bot", "ping", "original", ["ping"], base + 2),
        ("bot", "ping", "original", ["ping"], base + 3.5),
        ("bob", "", "deleted", ["oops", ""], base + 4),
    ]
    got = sorted(
        (m.author, m.body, m.state, [r.body for r in m.revisions], m.utc) for m in messages
    )
    truth.sort()
    assert [g[:4] for g in got] == [t[:4] for t in truth], got
    # The broker stamps the events when they are produced, up to the scenario's span after
    # their capture, so the clock estimates (and the times) are that much late at worst.
    for g, t in zip(got, truth, strict=True):
        assert -1 < g[4] - t[4] < 10, (g, t)
    for m in messages:
        assert {o.host for o in m.observations} == {"alice-pc", "bob-pc", "carol-pc"}, m

    engine = engine_over(read_records(settings, settings.topic), settings.match_tolerance_s)
    assert messages == engine.canonical_messages()
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages ORDER BY posted_utc, id"
        ).fetchall()
        clocks = dict(conn.execute("SELECT host, skew_s FROM proc_host_clocks"))
    assert rows == [message_row(m) for m in engine.canonical_messages()]
    assert {c.host: c.skew_s for c in engine.clocks.values()} == clocks
    for host, skew in (("alice-pc", 0), ("bob-pc", 47), ("carol-pc", -83)):
        assert skew - 10 < clocks[host] <= skew + 0.5, clocks
    assert {m.chat for m in messages} == {CHAT}


def test_records_delivered_twice_change_nothing(settings) -> None:
    hosts = three_hosts(now_base(8))
    produce(settings, settings.topic, host_events(hosts))
    process_once(settings, settings.topic)
    before = dump_tables(settings.postgres_dsn)
    produce(settings, settings.topic, host_events(hosts))
    second = process_once(settings, settings.topic)
    assert second.records == 16 and second.changes == 0
    after = dump_tables(settings.postgres_dsn)
    moved = ("offsets", "seq_runs")
    assert {t: v for t, v in after.items() if t not in moved} == {
        t: v for t, v in before.items() if t not in moved
    }
    assert sum(o[3] for o in after["offsets"]) == 32
    # The same seqs again: the same runs, their hosts heard again later (broker time).
    assert [r[:4] for r in after["seq_runs"]] == [r[:4] for r in before["seq_runs"]]
    assert all(a[5] > b[5] for a, b in zip(after["seq_runs"], before["seq_runs"], strict=True))


def test_batches_of_one_record_end_where_one_batch_ends(settings) -> None:
    produce(settings, settings.topic, host_events(three_hosts(now_base(8))))
    process_once(settings, settings.topic)
    migrate(settings.postgres_dsn, "small")
    process_once(settings, settings.topic, batch_records=1, schema="small")
    assert dump_tables(settings.postgres_dsn, schema="small") == dump_tables(settings.postgres_dsn)


@pytest.mark.parametrize("cache_members", [2_000_000, 0], ids=["cached", "read-back"])
def test_many_batches_of_a_generated_day_agree_with_the_engine(settings, cache_members) -> None:
    """Edits, deletions, bot repeats and a host backfilling, over a clock whose estimate
    moves during the run (events are appended up to seconds after capture). Without a group
    cache every batch reads its groups back as their stored host messages (pg/groups.py)."""
    settings = settings.replace(processor_cache_members=cache_members)
    produce(settings, settings.topic, generate_events(1200, base=now_base(3), seed=3))
    summary = process_once(settings, settings.topic, batch_records=60)
    assert summary.batches >= 20
    engine = engine_over(read_records(settings, settings.topic), settings.match_tolerance_s)
    messages = stored_messages(settings.postgres_dsn)
    assert len(messages) > 300 and messages == engine.canonical_messages()
    with psycopg.connect(settings.postgres_dsn) as conn:
        (aliases,) = conn.execute("SELECT count(*) FROM message_aliases").fetchone()
        (dangling,) = conn.execute(
            "SELECT count(*) FROM message_aliases a LEFT JOIN messages m ON m.id = a.new_id"
            " WHERE m.id IS NULL"
        ).fetchone()
    assert dangling == 0, f"{dangling} of {aliases} aliases point at no message"


def _fail_in_a_queued_write(monkeypatch) -> type[Exception]:
    write_objects = state.write_objects

    def failing(session, folded):
        session.write("SELECT 1 / 0")
        write_objects(session, folded)

    monkeypatch.setattr(state, "write_objects", failing)
    return psycopg.errors.DivisionByZero


def _fail_while_writes_are_queued(monkeypatch) -> type[Exception]:
    write_dead_letters = deadletters.write_dead_letters

    def slow(session, folded):
        # Still running when the batch fails, with a write queued behind it (staged writes
        # would fail outside the transaction anyway: their temporary table is gone).
        session.write("SELECT pg_sleep(0.3)")
        session.write("UPDATE offsets SET next_offset = next_offset + 1000")
        write_dead_letters(session, folded)

    def failing(self, *args):
        raise RuntimeError("a bug in the batch")

    monkeypatch.setattr(deadletters, "write_dead_letters", slow)
    monkeypatch.setattr(Groups, "recompute", failing)
    return RuntimeError


@pytest.mark.parametrize("fail", [_fail_in_a_queued_write, _fail_while_writes_are_queued])
def test_a_failed_batch_leaves_nothing_of_its_queued_writes(settings, monkeypatch, fail) -> None:
    """The store queues its writes to a thread (session._Writes): a failure, theirs or the
    batch's, must reach the caller, and nothing queued may run once the transaction is
    rolled back; the batch then applies as if it had never failed."""
    produce(settings, settings.topic, host_events(three_hosts(now_base(8))))
    records = read_records(settings, settings.topic)
    first, rest = records[:6], records[6:]
    store = Store.connect(settings.postgres_dsn, consumer="chatchannels-processor")
    try:
        expected = {p: 0 for p in {r.partition for r in records}}
        expected.update(store.apply_batch(settings.topic, first, expected).next_offsets)
        before = dump_tables(settings.postgres_dsn)
        with monkeypatch.context() as patch, pytest.raises(fail(patch)):
            store.apply_batch(settings.topic, rest, expected)
        # Whatever the write thread still held has run once a no-op queued after it has.
        store.session._writes._thread.submit(int).result()
        assert dump_tables(settings.postgres_dsn) == before
        store.apply_batch(settings.topic, rest, expected)
    finally:
        store.close()
    migrate(settings.postgres_dsn, "whole")
    process_once(settings, settings.topic, schema="whole")
    assert dump_tables(settings.postgres_dsn) == dump_tables(settings.postgres_dsn, schema="whole")


def test_a_batch_that_meets_a_stored_first_host_message_is_read_again(
    settings, monkeypatch
) -> None:
    """A first host message is COPYed without an upsert (pg/state.py); if a dead-letter
    redrive stored it meanwhile, the unique key fails the batch and the consumer reads it
    again, ending where an undisturbed run ends."""
    produce(settings, settings.topic, host_events(three_hosts(now_base(8))))
    apply_batch = Store.apply_batch
    calls = []

    def clashing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            self.conn.execute("CREATE TEMP TABLE clash (k int PRIMARY KEY)")
            self.conn.execute("INSERT INTO clash VALUES (1), (1)")
        return apply_batch(self, *args, **kwargs)

    monkeypatch.setattr(Store, "apply_batch", clashing)
    summary = process_once(settings, settings.topic)
    assert summary.conflicts == 1 and summary.records == 16 and len(calls) == 2
    monkeypatch.undo()
    migrate(settings.postgres_dsn, "undisturbed")
    process_once(settings, settings.topic, schema="undisturbed")
    assert dump_tables(settings.postgres_dsn) == dump_tables(
        settings.postgres_dsn, schema="undisturbed"
    )
