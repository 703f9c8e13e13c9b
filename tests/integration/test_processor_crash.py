"""`chatchannels process` killed with SIGKILL at random points ends with the store of an
uninterrupted run (design invariant 2; style.md "Exactly once")."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from chatchannels.processors.migrate import migrate
from chatchannels.processors.store import Store
from tests.processor_harness import dump_tables, generate_events, now_base, process_once, produce

pytestmark = pytest.mark.integration

KILLS = 20


def start_processor(settings, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatchannels.cli",
            "process",
            "--once",
            "--topic",
            settings.topic,
            "--dsn",
            settings.postgres_dsn,
            "--kafka",
            settings.kafka_bootstrap,
            *extra,
        ],
        env=dict(os.environ, CHATCHANNELS_STACK_DIR=str(settings.stack_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_points_leaves_the_store_of_an_uninterrupted_run(
    stack, kafka_topic, pg_dsn
) -> None:
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    migrate(pg_dsn)
    migrate(pg_dsn, "whole")
    total = produce(settings, kafka_topic, generate_events(1500, base=now_base(1), seed=7))
    rng = random.Random(20)
    store = Store.connect(pg_dsn, consumer="chatchannels-processor")
    kills = 0
    try:
        while kills < KILLS:
            proc = start_processor(settings, "--batch", "7")
            done = sum(store.stored_offsets(kafka_topic).values())
            target = done + rng.randrange(0, 25)
            deadline = time.monotonic() + 60
            # Kill once the processor has committed past a random target: the next batch is
            # then somewhere between its first read and its commit.
            while sum(store.stored_offsets(kafka_topic).values()) < target:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, f"stuck below offset {target}"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
    finally:
        store.close()
    finisher = start_processor(settings)
    _, err = finisher.communicate(timeout=300)
    assert finisher.returncode == 0, err

    summary = process_once(settings, kafka_topic, schema="whole")
    assert summary.records == total
    killed, whole = dump_tables(pg_dsn), dump_tables(pg_dsn, schema="whole")
    assert len(killed["messages"]) > 400
    for table in whole:
        assert killed[table] == whole[table], table
