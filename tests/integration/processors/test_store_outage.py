"""PostgreSQL stopped for 60 s while `process` and `publish` run, and events keep coming:
both wait with backoff, say so in their logs once a try, and resume; the store and the site
end as after an uninterrupted run (nothing lost, nothing twice)."""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers.publishing import publish
from chatchannels.stack.postgres import start_postgres, stop_postgres, wait_postgres_ready
from chatchannels.store_contract import schema_dsn
from tests.support.faults import (
    consumed,
    index_documents,
    private_stack,
    site_files,
    site_settled,
    start_cli,
    stop_process,
    wait_until,
)
from tests.support.processor_harness import (
    dump_tables,
    generate_events,
    now_base,
    process_once,
    produce,
)

pytestmark = pytest.mark.integration

OUTAGE_S = 60
WAITING = re.compile(r"waiting for PostgreSQL: .*; attempt (\d+), next try in ([\d.]+) s")


def site_caught_up(dsn: str, site) -> bool:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        (last,) = conn.execute("SELECT coalesce(max(change_seq), 0) FROM changes").fetchone()
    return last > 0 and site_settled(site) == last


def attempts(log_text: str) -> list[tuple[int, float]]:
    return [(int(n), float(s)) for n, s in WAITING.findall(log_text)]


def test_postgres_away_60s_processor_and_publisher_wait_and_lose_nothing(
    stack, private_stack_dir, tmp_path
) -> None:
    with private_stack(stack, private_stack_dir) as settings:
        dsn, topic = settings.postgres_dsn, settings.topic
        migrate(dsn)
        migrate(dsn, "whole")
        events = generate_events(1800, base=now_base(1), seed=18)
        before, during, after = events[:600], events[600:1200], events[1200:]
        site = tmp_path / "site"
        logs = {name: tmp_path / f"{name}.log" for name in ("process", "publish")}
        processor = start_cli(
            settings,
            logs["process"],
            "process",
            "--topic",
            topic,
            "--dsn",
            dsn,
            "--batch-size",
            "25",
        )
        publisher = start_cli(
            settings, logs["publish"], "publish", "--site-dir", str(site), "--poll", "1"
        )
        procs = (processor, publisher)
        try:
            produce(settings, topic, before)
            wait_until(
                "the processor to apply some", lambda: consumed(dsn, topic) > 100, 90, *procs
            )
            wait_until("the site to be published", lambda: site_settled(site), 60, *procs)

            stop_postgres(settings)
            stopped_at = time.monotonic()
            produce(settings, topic, during)
            time.sleep(OUTAGE_S - (time.monotonic() - stopped_at))
            for proc in procs:
                assert proc.poll() is None, f"{proc.args[3]} did not survive the outage"
            for name, log in logs.items():
                tries = attempts(log.read_text())
                # One line per try, numbered, the delay growing to its cap (10 s).
                assert len(tries) >= 5, f"{name} log: {log.read_text()[-2000:]}"
                numbers = [n for n, _ in tries]
                assert numbers[:5] == [1, 2, 3, 4, 5], name
                assert max(s for _, s in tries) <= 11 and tries[-1][1] >= 5, (name, tries)

            start_postgres(settings)
            wait_postgres_ready(settings)
            produce(settings, topic, after)
            wait_until(
                "the processor to apply every event",
                lambda: consumed(dsn, topic) >= len(events),
                180,
                *procs,
            )
            wait_until("the site to catch up", lambda: site_caught_up(dsn, site), 120, *procs)
        finally:
            codes = [stop_process(proc) for proc in procs]
        assert codes[0] == 0, logs["process"].read_text()[-3000:]
        process_log = logs["process"].read_text()
        # Nothing applied twice: the records of the committed batches add up to the events.
        assert f"processed {len(events)} records" in process_log, process_log[-3000:]

        summary = process_once(settings, topic, schema="whole")
        assert summary.records == len(events)
        survived, whole = dump_tables(dsn), dump_tables(dsn, schema="whole")
        assert len(survived["messages"]) > 400
        for table in whole:
            assert survived[table] == whole[table], table

        reference = tmp_path / "reference"
        publish(
            schema_dsn(dsn, "whole"),
            reference,
            once=True,
            media_dir=settings.media_root,
        )
        assert site_files(site, dot_files=False) == site_files(reference, dot_files=False)
        # The index holds the same documents; its watermark is its own store's change_seq.
        assert index_documents(site)[1:] == index_documents(reference)[1:]
