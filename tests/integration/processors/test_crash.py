"""`chatchannels process` killed with SIGKILL at random points ends with the store of an
uninterrupted run (design invariant 2; style.md "Exactly once")."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaAdminClient

from chatchannels.kafka_auth import client_options
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.store import Store
from tests.support.processor_harness import (
    dump_tables,
    engine_over,
    generate_events,
    now_base,
    process_once,
    produce,
    read_records,
    stored_messages,
)

pytestmark = pytest.mark.integration

KILLS = 20


def start_processor(settings, *extra: str, once: bool = True) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatchannels.cli",
            "process",
            *(["--once"] if once else []),
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


def wait_for_members(settings, group: str, n: int, procs: list[subprocess.Popen]) -> None:
    admin = KafkaAdminClient(**client_options(settings))
    try:
        deadline = time.monotonic() + 60
        while True:
            found = admin.describe_groups([group])[group]
            if found["group_state"] == "Stable" and len(found["members"]) == n:
                return
            for proc in procs:
                assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"group {group}: {found}"
            time.sleep(0.2)
    finally:
        admin.close()


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
            proc = start_processor(settings, "--batch-size", "7")
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


def test_two_instances_in_one_group_build_what_the_engine_builds(
    stack, kafka_topic, pg_dsn
) -> None:
    """Scaling out: partitions split between two instances, groups shared between them
    (three hosts write to the same chats), serialised by the advisory locks."""
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    migrate(pg_dsn)
    name = f"chatchannels-scale-out-{uuid.uuid4().hex[:8]}"
    group = ["--group", name, "--batch-size", "40"]
    first = start_processor(settings, *group, once=False)
    second = start_processor(settings, *group, once=False)
    wait_for_members(settings, name, 2, [first, second])
    # Keys in partitions 1, 2 and 0: the range assignor gives one instance one host.
    hosts = (("alice-pc", 0.0, 3600), ("erin-pc", 47.0, -18000), ("carol-pc", -83.0, 19800))
    events = generate_events(1500, base=now_base(1), seed=11, hosts=hosts)
    total = produce(settings, kafka_topic, events)
    store = Store.connect(pg_dsn, consumer=name)
    try:
        deadline = time.monotonic() + 120
        done = 0
        while done < total:
            for proc in (first, second):
                assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"stored offsets reached {done} of {total}"
            done = sum(store.stored_offsets(kafka_topic).values())
            time.sleep(0.1)
    finally:
        store.close()
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=60) for proc in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    processed = [int(out.split()[1]) for out, _ in outputs]
    assert sum(processed) >= total and all(processed), outputs

    engine = engine_over(read_records(settings, kafka_topic), settings.match_tolerance_s)
    assert stored_messages(pg_dsn) == engine.canonical_messages()
