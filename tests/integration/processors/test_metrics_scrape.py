"""`chatchannels process --metrics-port`: a Prometheus scrape over HTTP while it runs on the
real Kafka and PostgreSQL, with a host's sequence gap and a dead letter in the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from chatchannels.processors.pg.migrate import migrate
from tests.support.processor_events import Host
from tests.support.processor_harness import host_events, now_base, produce
from tests.support.scrape import scrape_until
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

PROCESSOR_METRICS = {
    "chatchannels_processor_events",
    "chatchannels_processor_batches",
    "chatchannels_processor_batch_duration_seconds",
    "chatchannels_processor_dead_letters",
    "chatchannels_processor_lag_records",
    "chatchannels_processor_clock_offset_seconds",
    "chatchannels_processor_host_last_seq",
    "chatchannels_processor_sequence_gap_events",
    "chatchannels_processor_host_last_heard_timestamp_seconds",
}


def caught_up(samples) -> bool:
    """Every partition's lag is known and 0 (it is set at each poll, before a batch)."""
    lags = [v for k, v in samples.items() if k[0] == "chatchannels_processor_lag_records"]
    return len(lags) == 3 and not any(lags)


def test_a_scrape_of_the_running_processor_has_its_metrics(stack, kafka_topic, pg_dsn):
    migrate(pg_dsn)
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    base = now_base(5)
    a, b = Host("a-pc", skew=12), Host("b-pc", skew=-30)
    for n in range(4):
        for host in (a, b):
            host.read(str(10 + n), posted=base + n, body=f"m{n}", at=base + n + 0.1)
    events = host_events([a, b])
    # a-pc's second event never reached the log: seq 2 is missing.
    lost = next(e for e in events if e["host"] == "a-pc" and e["seq"] == 2)
    sent = [e for e in events if e is not lost]
    produce(settings, kafka_topic, [*sent, b"not json"])
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatchannels.cli",
            "process",
            "--group",
            f"chatchannels-metrics-{uuid.uuid4().hex[:8]}",
            "--kafka",
            settings.kafka_bootstrap,
            "--topic",
            kafka_topic,
            "--dsn",
            pg_dsn,
            "--metrics-port",
            str(port),
        ],
        env=dict(os.environ, CHATCHANNELS_STACK_DIR=str(stack.stack_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        names, samples = scrape_until(
            f"http://127.0.0.1:{port}/metrics",
            lambda s: (
                s.get(("chatchannels_processor_events_total", ())) == len(sent) + 1 and caught_up(s)
            ),
            f"all {len(sent) + 1} records applied and no lag left",
        )
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert names >= PROCESSOR_METRICS, PROCESSOR_METRICS - names
    assert samples[("chatchannels_processor_sequence_gap_events_total", (("host", "a-pc"),))] == 1
    assert ("chatchannels_processor_sequence_gap_events_total", (("host", "b-pc"),)) not in samples
    assert samples[("chatchannels_processor_host_last_seq", (("host", "a-pc"),))] == 4
    assert samples[("chatchannels_processor_dead_letters_total", (("reason", "schema"),))] == 1
    offset = samples[("chatchannels_processor_clock_offset_seconds", (("host", "a-pc"),))]
    assert 12 - 5 < offset <= 12.5
    heard = samples[
        ("chatchannels_processor_host_last_heard_timestamp_seconds", (("host", "b-pc"),))
    ]
    assert base < heard < base + 600
