"""The machine's ceilings that the pipeline's stages are measured against.

- kafka-python produce and consume of ~300-byte records (acks=all, idempotent producer),
- PostgreSQL COPY into a staging table plus an upsert into a keyed table.
Each function returns figures; `python -m bench` runs them with the stack up.
"""

from __future__ import annotations

import os
import time
import uuid

from bench.report import Figure
from chatchannels.kafka_auth import client_options
from chatchannels.settings import Settings

RECORD_BYTES = 300


def kafka_produce_consume(settings: Settings, n: int = 100_000) -> list[Figure]:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    from chatchannels.stack.kafka import ensure_topic

    topic = f"bench.{uuid.uuid4().hex[:8]}"
    ensure_topic(settings, topic, partitions=1)
    value = os.urandom(RECORD_BYTES // 2).hex().encode()
    producer = KafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    t0 = time.perf_counter()
    for i in range(n):
        producer.send(topic, key=b"host-%d" % (i % 3), value=value)
    producer.flush()
    produce_s = time.perf_counter() - t0
    producer.close()

    consumer = KafkaConsumer(
        topic,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=5000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    got = 0
    t0 = time.perf_counter()
    while got < n:
        for records in consumer.poll(timeout_ms=1000).values():
            got += len(records)
    consume_s = time.perf_counter() - t0
    consumer.close()
    admin = KafkaAdminClient(**client_options(settings))
    admin.delete_topics([topic])
    admin.close()
    return [
        Figure("kafka produce (300 B, acks=all, idempotent)", n / produce_s, "records/s"),
        Figure("kafka consume (300 B)", n / consume_s, "records/s"),
    ]


def postgres_copy_upsert(settings: Settings, n: int = 200_000) -> list[Figure]:
    import psycopg

    rows = [(f"{i:032x}", f"chat-{i % 50}", f"author-{i % 7}", i, "x" * 200) for i in range(n)]
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_target (id text PRIMARY KEY, chat text, author text,"
            " ts bigint, body text)"
        )
        t0 = time.perf_counter()
        conn.execute(
            "CREATE TEMP TABLE bench_stage (id text, chat text, author text, ts bigint, body text)"
            " ON COMMIT DELETE ROWS"
        )
        with conn.cursor() as cur:
            with cur.copy("COPY bench_stage FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                "INSERT INTO bench_target SELECT * FROM bench_stage"
                " ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, ts = EXCLUDED.ts"
            )
        conn.commit()
        elapsed = time.perf_counter() - t0
    return [Figure("postgres COPY + upsert", n / elapsed, "rows/s")]
