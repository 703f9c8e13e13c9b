"""Kafka restarted while `process` runs: it rejoins, seeks to the offsets stored in the
store, and ends with the store of an uninterrupted run, no record applied twice."""

from __future__ import annotations

import time

import pytest

from chatchannels.processors.pg.migrate import migrate
from chatchannels.stack.kafka import start_kafka, stop_kafka, wait_kafka_ready
from tests.support.faults import consumed, private_stack, start_cli, stop_process, wait_until
from tests.support.processor_harness import (
    dump_tables,
    generate_events,
    now_base,
    process_once,
    produce,
)

pytestmark = pytest.mark.integration


def test_kafka_restarted_the_processor_resumes_from_stored_offsets_without_duplicates(
    stack, private_stack_dir, tmp_path
) -> None:
    with private_stack(stack, private_stack_dir) as settings:
        dsn, topic = settings.postgres_dsn, settings.topic
        migrate(dsn)
        migrate(dsn, "whole")
        events = generate_events(1500, base=now_base(1), seed=4)
        half = len(events) // 2
        log = tmp_path / "process.log"
        processor = start_cli(
            settings, log, "process", "--topic", topic, "--dsn", dsn, "--batch-size", "25"
        )
        try:
            produce(settings, topic, events[:half])
            wait_until(
                "the processor to apply some", lambda: consumed(dsn, topic) > 100, 90, processor
            )
            stop_kafka(settings)
            # Away long enough for the consumer to notice (its requests fail, the group
            # coordinator is gone) but not so long that its poll interval runs out.
            time.sleep(5)
            assert processor.poll() is None, log.read_text()[-3000:]
            stopped_at = consumed(dsn, topic)
            start_kafka(settings)
            wait_kafka_ready(settings)
            produce(settings, topic, events[half:])
            wait_until(
                "the processor to apply every event",
                lambda: consumed(dsn, topic) >= len(events),
                180,
                processor,
            )
        finally:
            code = stop_process(processor)
        assert code == 0, log.read_text()[-3000:]
        assert stopped_at < len(events)
        # Nothing twice: the records of the committed batches add up to the events.
        assert f"processed {len(events)} records" in log.read_text(), log.read_text()[-3000:]

        assert process_once(settings, topic, schema="whole").records == len(events)
        survived, whole = dump_tables(dsn), dump_tables(dsn, schema="whole")
        assert len(survived["messages"]) > 400
        for table in whole:
            assert survived[table] == whole[table], table
