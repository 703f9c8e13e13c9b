"""Helpers for the processor's integration tests and benchmark: produce raw events to a real
topic, read them back with their broker times, run the in-memory Engine over them, and dump
the store's tables for whole-table comparisons.

Hosts are the matching tests' builders (tests/support/processor_events.py). Their events
carry the host's clock; the broker stamps true time on append (LogAppendTime), so a scenario
is built in true time just before it is produced: `now_base()` leaves room for the scenario to
end before the broker sees it, and the clock estimates come out within a few seconds.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from chatchannels.kafka_auth import client_options
from chatchannels.processors.batch import RawRecord
from chatchannels.processors.canonical import CanonicalMessage
from chatchannels.processors.consumer import ProcessOptions, raw_record, run_processor
from chatchannels.processors.engine import Engine, recompute_group
from chatchannels.processors.observations import HostMessage
from chatchannels.processors.replay.topic_copy import COPY_TOPIC_CONFIGS
from chatchannels.processors.rows import (
    MESSAGE_COLUMNS,
    OBSERVATION_COLUMNS,
    REVISION_COLUMNS,
    message_row,
    observation_rows,
    revision_rows,
)
from chatchannels.processors.snapshots import load_value
from chatchannels.rawevents import EventClock, encode_raw_event, skype_api_event
from chatchannels.settings import Settings
from chatchannels.stack.kafka_principals import grant, topic_grants
from tests.support.processor_events import Host
from tests.support.signing import signed_headers

# Tables whose contents must not depend on batching, crashes or re-delivery, with the columns
# compared (change_seq and bookkeeping columns excluded: they record *when* something was
# written, which legitimately depends on the batches).
STABLE_TABLES = {
    "messages": "id, chat, author, author_name, posted_utc, type, body, body_markup,"
    " edited_utc, edited_by, deleted",
    "revisions": "message_id, revision, body_markup, editor, edited_utc, deleted",
    "observations": "host, local_id, message_id, local_timestamp, corrected_utc, tz_offset_s,"
    " first_partition, first_offset",
    "host_clocks": "host, seq, offset_s, samples, steps",
    "chats": "name, topic, members, created_utc",
    "users": "handle, display_name",
    "dead_letters": 'topic, partition, "offset", key, value, reason, kind, host, seq',
    "proc_host_messages": "host, local_id, chat, author_key, first_partition, first_offset, state",
    "proc_host_clocks": "host, last_seq, skew_s, state",
    "proc_objects": "host, obj, obj_id, seq, state",
    "proc_groups": "chat, author_key",
    "offsets": "consumer, topic, partition, next_offset",
    "seq_runs": "host, session, first_seq, last_seq, first_utc, last_utc, source",
}


HOSTS = (("alice-pc", 0.0, 3600), ("bob-pc", 47.0, -18000), ("carol-pc", -83.0, 19800))


def now_base(span_s: float) -> float:
    """A true-time origin so that a scenario spanning `span_s` seconds ends now."""
    return time.time() - span_s


def produce(
    settings: Settings,
    topic: str,
    events: Iterable[dict[str, Any] | bytes],
    append_ms: Callable[[dict[str, Any]], int] | None = None,
) -> int:
    """Produce raw events (dicts are encoded; bytes go as they are, as host "garbage"),
    keyed by host and signed as the host's writer would. With `append_ms`, each event's
    record carries that CreateTime (for `create_time_topic`)."""

    def records() -> Iterator[OutRecord]:
        for event in events:
            if isinstance(event, bytes):
                host, value = "garbage", event
            else:
                host, value = str(event.get("host", "?")), encode_raw_event(event)
            key = host.encode()
            stamp = append_ms(event) if append_ms and not isinstance(event, bytes) else None
            yield OutRecord(key, value, signed_headers(settings, host, key, value), stamp)

    return produce_records(settings, topic, records())


@dataclass(frozen=True)
class OutRecord:
    """A record as a producer sends it: headers as given (signed or not), CreateTime or None."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int | None = None


def produce_records(settings: Settings, topic: str, records: Iterable[OutRecord]) -> int:
    """Send records exactly as given, in order, and wait until Kafka has them all."""
    producer = KafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    n = 0
    try:
        for r in records:
            producer.send(
                topic, key=r.key, value=r.value, headers=r.headers, timestamp_ms=r.timestamp_ms
            )
            n += 1
        producer.flush()
    finally:
        producer.close()
    return n


def create_time_topic(settings: Settings, topic: str, partitions: int) -> None:
    """A raw topic whose records keep the CreateTime their producer gives them, read with
    `create_time_is_append_time`: how a benchmark replays days of chat in minutes with the
    broker times the events would have had live (processors/replay/topic_copy.py)."""
    admin = KafkaAdminClient(**client_options(settings))
    try:
        admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=COPY_TOPIC_CONFIGS)])
    finally:
        admin.close()
    grant(settings, topic_grants(topic))


def live_append_ms(
    hosts: Sequence[tuple[str, float, int]] = HOSTS, delay_s: float = 0.05
) -> Callable[[dict[str, Any]], int]:
    """An event's append time had its agent sent it live: its capture time in true time (the
    event's clock minus its host's skew) plus `delay_s`."""
    skews = {name: skew for name, skew, _ in hosts}

    def append_ms(event: dict[str, Any]) -> int:
        return round((event["clock"]["utc"] - skews[event["host"]] + delay_s) * 1000)

    return append_ms


def produce_timeline(
    settings: Settings,
    topic: str,
    n_events: int,
    *,
    step_s: float = 1.0,
    chunk: int = 100_000,
) -> int:
    """About `n_events` generated events sent as live agents would have sent them over the
    days they span, a message every `step_s` seconds: in chunks of `chunk` events, each with
    three hosts of its own (so memory stays flat), one chunk after the other in time, each
    chunk's events in capture order across its hosts, each record with the append time it
    would have had. The topic must keep CreateTime (`create_time_topic`)."""
    # The generator adds a tenth of a step per message the offline host backfills.
    t = time.time() - n_events / 3.2 * step_s * 1.1 - 3600
    produced = 0
    for k, start in enumerate(range(0, n_events, chunk)):
        hosts = tuple((name.replace("-pc", f"{k}-pc"), skew, tz) for name, skew, tz in HOSTS)
        events = generate_events(
            min(chunk, n_events - start), base=t, step_s=step_s, seed=k, hosts=hosts
        )
        append_ms = live_append_ms(hosts)
        events.sort(key=append_ms)
        produced += produce(settings, topic, events, append_ms)
        t = append_ms(events[-1]) / 1000 + step_s
    return produced


def host_events(hosts: Sequence[Host]) -> list[dict[str, Any]]:
    """Every host's events in its own order, hosts one after another."""
    return [event for h in hosts for event, _ in h.records]


def read_records(settings: Settings, topic: str) -> list[RawRecord]:
    """Everything in the topic, each partition in offset order, partitions one after another."""
    consumer = KafkaConsumer(**client_options(settings), enable_auto_commit=False)
    try:
        found = sorted(consumer.partitions_for_topic(topic))
        partitions = [TopicPartition(topic, p) for p in found]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        got: dict[int, list[RawRecord]] = {tp.partition: [] for tp in partitions}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"topic {topic} not read to {end}"
            for batch in consumer.poll(timeout_ms=200).values():
                for r in batch:
                    got[r.partition].append(raw_record(r))
        return [r for p in sorted(got) for r in got[p]]
    finally:
        consumer.close()


def engine_over(records: Iterable[RawRecord], tolerance_s: float) -> Engine:
    """The reference: the same records through the in-memory Engine."""
    engine = Engine(tolerance_s=tolerance_s)
    for r in records:
        try:
            event = json.loads(r.value)
        except ValueError:
            continue
        if isinstance(event, dict):
            engine.apply(event, r.broker_utc)
    return engine


def process_once(settings: Settings, topic: str, **options: Any) -> Any:
    return run_processor(settings, ProcessOptions(topic=topic, once=True, **options))


def stored_messages(dsn: str, schema: str = "public") -> list[CanonicalMessage]:
    """The canonical messages of the store's host messages, indexed as the processor reads
    back a group (pg/groups.py), after checking that the public tables hold exactly their
    rows: what the processor wrote and what its state implies are one archive."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET search_path TO {schema}")
        states = conn.execute("SELECT state FROM proc_host_messages").fetchall()
        tables = {
            table: sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall())
            for table, cols in (
                ("messages", MESSAGE_COLUMNS),
                ("revisions", REVISION_COLUMNS),
                ("observations", OBSERVATION_COLUMNS),
            )
        }
    messages, _ = recompute_group((load_value(HostMessage, s) for (s,) in states), ())
    assert tables == {
        "messages": sorted(message_row(m) for m in messages),
        "revisions": sorted(r for m in messages for r in revision_rows(m)),
        "observations": sorted(r for m in messages for r in observation_rows(m)),
    }
    return sorted(messages, key=lambda m: (m.chat, m.utc, m.id))


def dump_tables(
    dsn: str, tables: Iterable[str] = STABLE_TABLES, schema: str = "public"
) -> dict[str, list[tuple]]:
    """The stable columns of every table, sorted, for whole-store comparisons. Snapshots
    (the `state` columns, JSON text) are compared by value, not by their text."""
    out = {}
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET search_path TO {schema}")
        for table in tables:
            cols = STABLE_TABLES[table]
            rows = conn.execute(f"SELECT {cols} FROM {table}").fetchall()
            if cols.endswith("state"):
                rows = [(*row[:-1], json.loads(row[-1])) for row in rows]
            out[table] = sorted(rows, key=repr)
    return out


def generate_events(
    n_events: int,
    *,
    base: float,
    seed: int = 0,
    chats: int = 20,
    authors: int = 8,
    step_s: float = 0.001,
    bot_share: float = 0.05,
    hosts: Sequence[tuple[str, float, int]] = HOSTS,
) -> list[dict[str, Any]]:
    """About `n_events` raw events of three hosts (name, skew, tz offset; by default skews +0,
    +47, -83 s) reading the same
    messages: edits, deletions, a bot repeating "ping", and the last host offline for the
    middle fifth of the messages, which it backfills (already edited or deleted) when back.

    Built with `skype_api_event` but not validated one by one (the processor validates them),
    so that a benchmark can make 200,000 of them quickly. Each host's events are in capture
    order, as an agent emits them.
    """
    rng = random.Random(seed)
    events: dict[str, list[dict[str, Any]]] = {h: [] for h, _, _ in hosts}
    seqs = {h: 0 for h, _, _ in hosts}
    ids = {h: 1000 * (i + 1) for i, (h, _, _) in enumerate(hosts)}
    n_messages = max(1, int(n_events / 3.2))
    offline = range(2 * n_messages // 5, 3 * n_messages // 5)
    backlog: list[tuple[str, float, str, str, str, float | None]] = []

    def emit(host: str, at: float, local_id: str, lines: list[str], reason: str) -> None:
        _, skew, tz = next(h for h in hosts if h[0] == host)
        seqs[host] += 1
        trigger = lines[0] if reason == "notification" else None
        events[host].append(
            skype_api_event(
                host=host,
                session="0" * 31 + "1",
                seq=seqs[host],
                clock=EventClock(utc=round(at + skew, 6), tz_offset_s=tz),
                reason=reason,
                obj="CHATMESSAGE",
                obj_id=local_id,
                trigger=trigger,
                lines=lines,
            )
        )

    def stamp(host: str, t: float) -> int:
        return int(t + next(h for h in hosts if h[0] == host)[1])

    def read(host, at, local_id, chat, author, posted, body, edited, reason="notification"):
        p = f"CHATMESSAGE {local_id} "
        lines = [
            p + "STATUS RECEIVED",
            p + f"TIMESTAMP {stamp(host, posted)}",
            p + f"FROM_HANDLE {author}",
            p + f"FROM_DISPNAME {author.title()}",
            p + "TYPE SAID",
            p + f"CHATNAME {chat}",
            p + f"EDITED_TIMESTAMP {stamp(host, edited) if edited is not None else 0}",
            p + f"EDITED_BY {author if edited is not None else ''}",
            p + f"BODY {body}",
        ]
        emit(host, at, local_id, lines, reason)

    t = base
    for k in range(n_messages):
        t += step_s
        chat = f"#owner{k % chats}/$chat{k % chats};{k % chats:016x}"
        bot = rng.random() < bot_share
        author = "bot" if bot else f"user{rng.randrange(authors)}"
        body = "ping" if bot else f"message {k} from {author} <b>&amp;</b>"
        fate = rng.random()
        edited_body = None if fate > 0.07 else ("" if fate < 0.02 else body + " (edited)")
        for host, _, _ in hosts:
            ids[host] += 1
            local_id = str(ids[host])
            if host == hosts[-1][0] and k in offline:
                backlog.append((local_id, t, chat, author, body, edited_body))
                continue
            read(host, t, local_id, chat, author, t, body, None)
            if edited_body is not None:
                p = f"CHATMESSAGE {local_id} "
                edit_lines = [
                    p + f"EDITED_TIMESTAMP {stamp(host, t + step_s / 2)}",
                    p + f"EDITED_BY {author}",
                    p + f"BODY {edited_body}",
                ]
                emit(host, t + step_s / 2, local_id, edit_lines, "notification")
        if k == offline.stop - 1 or (k == n_messages - 1 and backlog):
            for local_id, posted, chat, author, body, edited_body in backlog:
                t += step_s / 10
                current = body if edited_body is None else edited_body
                edited = None if edited_body is None else posted + step_s / 2
                read(hosts[-1][0], t, local_id, chat, author, posted, current, edited, "backfill")
            backlog.clear()
    return [e for h, _, _ in hosts for e in events[h]]
