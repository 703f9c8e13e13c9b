"""Copy the raw topic into another topic: another partition count, another host interleaving.

The processor's clock evidence is each record's broker append time (clocks.py), which a
plain re-production would replace with the time of the copy. So the copy is a topic with
`message.timestamp.type=CreateTime` whose records carry the original append times as their
CreateTime, and the processor reads it with `create_time_is_append_time` (consumer.py).
Records keep their key (the host id) and their headers (the signature, so that the copy is
checked as the original was: chatchannels/event_signing.py), so each host's records stay in
one partition in the host's order, whatever the partition count; only the order across
hosts changes, which the outcome must not depend on (design.md, invariant 4).

Used to check that invariant against the real pipeline (tests/integration/replay/test_replay.py),
and the way to change the raw topic's partition count: adding partitions in place would
send a host's later records to another partition than its earlier ones, so a consumer could
read them out of the host's order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from chatchannels.kafka_auth import PROCESSOR, client_options
from chatchannels.settings import Settings
from chatchannels.stack.kafka import RAW_TOPIC_CONFIGS
from chatchannels.stack.kafka_principals import grant, reader_grants

COPY_TOPIC_CONFIGS = {**RAW_TOPIC_CONFIGS, "message.timestamp.type": "CreateTime"}


class TopicCopyError(RuntimeError):
    """The copy could not be made; the message names the topic and the cause."""


@dataclass(frozen=True)
class CopiedRecord:
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


def interleave_hosts(records: Sequence[CopiedRecord], seed: int) -> list[CopiedRecord]:
    """The records in a random order across keys (hosts) that keeps each key's own order."""
    queues: dict[bytes | None, list[CopiedRecord]] = {}
    for record in records:
        queues.setdefault(record.key, []).append(record)
    for queue in queues.values():
        queue.reverse()
    rng = random.Random(seed)
    keys = list(queues)
    out = []
    while keys:
        key = rng.choice(keys)
        out.append(queues[key].pop())
        if not queues[key]:
            keys.remove(key)
    return out


def read_topic(settings: Settings, topic: str, timeout_s: float = 300) -> list[CopiedRecord]:
    """Every record of `topic` with its timestamp, partition after partition, each in offset
    order (so each host's records in the host's order)."""
    consumer = KafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise TopicCopyError(f"topic {topic!r} does not exist")
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        got: dict[int, list[CopiedRecord]] = {tp.partition: [] for tp in partitions}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                positions = {tp.partition: consumer.position(tp) for tp in partitions}
                raise TopicCopyError(f"topic {topic!r} not read to {end} in time: at {positions}")
            for batch in consumer.poll(timeout_ms=200).values():
                for r in batch:
                    if r.offset < end[TopicPartition(topic, r.partition)]:
                        copied = CopiedRecord(r.key, r.value, r.timestamp, tuple(r.headers or ()))
                        got[r.partition].append(copied)
        return [r for p in sorted(got) for r in got[p]]
    finally:
        consumer.close()


def create_copy_topic(settings: Settings, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(**client_options(settings), client_id="chatchannels")
    try:
        if topic in admin.list_topics():
            raise TopicCopyError(f"topic {topic!r} exists already; a copy goes to a new topic")
        admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=COPY_TOPIC_CONFIGS)])
    finally:
        admin.close()
    # A replay's processor reads the copy as it reads the raw topic.
    grant(settings, reader_grants(PROCESSOR, topic))


def copy_topic(
    settings: Settings,
    source: str,
    target: str,
    *,
    partitions: int,
    shuffle_seed: int | None = None,
) -> int:
    """Copy every record of `source` into a new topic `target` with `partitions` partitions,
    keeping keys, values, headers and append times; with `shuffle_seed`, in a random order across
    hosts (each host's own order kept). Returns the number of records copied."""
    records = read_topic(settings, source)
    if shuffle_seed is not None:
        records = interleave_hosts(records, shuffle_seed)
    create_copy_topic(settings, target, partitions)
    # Idempotence keeps each partition's order through retries.
    producer = KafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    try:
        for r in records:
            producer.send(
                target,
                key=r.key,
                value=r.value,
                timestamp_ms=r.timestamp_ms,
                headers=list(r.headers),
            )
        producer.flush()
    finally:
        producer.close()
    return len(records)
