"""The stack is the real thing: Kafka 4 in KRaft mode and PostgreSQL 15."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from chatchannels.kafka_auth import client_options
from chatchannels.stack import kafka, postgres
from chatchannels.stack.manager import stack_down, stack_status, stack_up
from chatchannels.stack.processes import pid_alive
from tests.support.stack import private_stack_settings

pytestmark = pytest.mark.integration


def test_broker_is_kafka_4_and_server_is_postgres_15(stack):
    assert kafka.broker_version(stack) >= (4, 0)
    assert postgres.server_version(stack).startswith("15.")
    status = stack_status(stack)
    assert status["healthy"], status


def test_raw_topic_keeps_records_forever_with_broker_time(stack):
    configs = kafka.topic_configs(stack, stack.topic)
    assert configs["retention.ms"] == "-1"
    assert configs["retention.bytes"] == "-1"
    assert configs["message.timestamp.type"] == "LogAppendTime"


def test_idempotent_acks_all_produce_then_group_consume_with_manual_commit(stack, kafka_topic):
    values = [f"record {i} {uuid.uuid4().hex}".encode() * 8 for i in range(200)]
    producer = KafkaProducer(**client_options(stack), acks="all", enable_idempotence=True)
    try:
        futures = [producer.send(kafka_topic, key=b"host-a", value=v) for v in values]
        producer.flush()
        metadata = [f.get(timeout=30) for f in futures]
    finally:
        producer.close()
    # One key, one partition, in order: the per-host ordering the agent relies on.
    assert len({m.partition for m in metadata}) == 1
    assert [m.offset for m in metadata] == sorted(m.offset for m in metadata)

    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        kafka_topic,
        **client_options(stack),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
    )
    got = []
    try:
        for record in consumer:
            got.append(record.value)
            if len(got) == len(values):
                break
        consumer.commit()
        tp = TopicPartition(kafka_topic, metadata[0].partition)
        assert consumer.committed(tp) == metadata[-1].offset + 1
    finally:
        consumer.close()
    assert got == values


def test_second_up_is_a_no_op_and_down_leaves_no_process(stack, private_stack_dir):
    settings = private_stack_settings(stack, private_stack_dir)
    first = stack_up(settings)
    assert sorted(first.started) == ["kafka", "postgres"]
    pids = [kafka.kafka_pid(settings), postgres.postgres_pid(settings)]
    assert all(pids)

    second = stack_up(settings)
    assert second.started == [] and sorted(second.already_running) == ["kafka", "postgres"]
    assert [kafka.kafka_pid(settings), postgres.postgres_pid(settings)] == pids
    with psycopg.connect(settings.postgres_dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (settings.pg_database,)

    assert sorted(stack_down(settings)) == ["kafka", "postgres"]
    assert not any(pid_alive(pid) for pid in pids)
    assert stack_status(settings)["healthy"] is False
    assert stack_down(settings) == []
