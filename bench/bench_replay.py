"""Replay: rebuild the store from the log, verify it, rebuild the site and index, swap.

Generated raw events (tests/support/processor_harness.py's `produce_timeline`: a chat history of a
message a second as live agents would have sent it, in chunks of 100,000 with three hosts of
their own each, so memory stays flat) go to a fresh topic that keeps those append times and
are processed into a fresh "live" schema by a processor in a child process. Then
`replay --verify --swap` runs against that schema with a site folder in a temporary
directory, in this process, which like a user's `chatchannels replay` has processed nothing
before (run in the process that had built the live store, the replay was 10-20 % slower than
the live processing of the same events; in a process of its own it is not). Figures: the
time to rebuild the store (target: under 3 minutes for 1,000,000 events), to verify (both
digests), to rebuild the site and the search index from zero, to swap; the peak resident
memory of this process (the replay, the verification, the site) and of its children (the
live processor, the decode workers, the index writers). When fewer than 1,000,000 events
were run, the 1,000,000 figure is a linear extrapolation, labelled as such.

`python -m bench.bench_replay [--quick] [--events N]`; quick: 50,000 events. Under
`python -m bench`, BENCH_REPLAY_EVENTS sets the number (the full run takes long).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from bench.report import Figure, bench_main, report
from chatchannels.kafka_auth import client_options
from chatchannels.processors.consumer import ProcessOptions, run_processor
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.replay.rebuild import ReplayOptions, replay
from chatchannels.replay_wiring import PUBLISHED_SITE
from chatchannels.settings import Settings
from tests.support.processor_harness import create_time_topic, produce_timeline

N_FULL, N_QUICK = 1_000_000, 50_000
TARGET_EVENTS, TARGET_S = 1_000_000, 180.0
BATCH = 20_000  # the live store's; the replay runs with its own default, as users get it
# The live store of 1,000,000 events took 145-186 s; ten times that is a hang.
LIVE_TIMEOUT_S = 1800.0


def _peak_mb(who: int) -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(who).ru_maxrss / 1024


def run(settings: Settings, quick: bool = False, events: int | None = None) -> list[Figure]:
    from kafka import KafkaAdminClient

    n = events or int(os.environ.get("BENCH_REPLAY_EVENTS") or (N_QUICK if quick else N_FULL))
    topic = f"bench.replay.{uuid.uuid4().hex[:8]}"
    live = f"bench_live_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    settings = settings.replace(topic=topic)
    create_time_topic(settings, topic, partitions=3)
    migrate(settings.postgres_dsn, live)
    previous = None
    try:
        started = time.perf_counter()
        produced = produce_timeline(settings, topic, n)
        produce_s = time.perf_counter() - started

        started = time.perf_counter()
        options = ProcessOptions(
            topic=topic,
            schema=live,
            once=True,
            batch_records=BATCH,
            create_time_is_append_time=True,
        )
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as child:
            future = child.submit(run_processor, settings, options)
            try:
                summary = future.result(LIVE_TIMEOUT_S)
            except BaseException as exc:
                # A timeout, SIGTERM or Ctrl-C: leaving the `with` would wait for the worker
                # to finish its run. Python 3.11's pool cannot stop a busy worker (3.14's
                # terminate_workers can), so its processes are ended here.
                for worker in list(child._processes.values()):
                    worker.terminate()
                if isinstance(exc, TimeoutError):
                    raise RuntimeError(
                        f"timed out after {LIVE_TIMEOUT_S:g} s waiting for the live processor "
                        f"to process {produced:,} events into {live}"
                    ) from None
                raise
        live_s = time.perf_counter() - started
        assert summary.records == produced, summary

        result = replay(
            settings,
            ReplayOptions(
                topic=topic,
                live_schema=live,
                verify=True,
                swap=True,
                site_dir=work / "site",
                create_time_is_append_time=True,
            ),
            site=PUBLISHED_SITE,
        )
        previous = result.previous_schema
        assert result.verify is not None and result.verify.equal
        seconds = result.seconds
        scale = TARGET_EVENTS / produced
        figures = [
            Figure(f"produce {produced:,} generated events", produce_s, "s"),
            Figure("process them (the live store)", live_s, "s"),
            Figure("replay: rebuild the store", seconds["replay"], "s"),
            Figure("replay: rebuild rate", produced / seconds["replay"], "events/s"),
            Figure(
                f"replay: verify ({result.messages:,} messages, both digests)",
                seconds["verify"],
                "s",
            ),
            Figure("replay: rebuild site and search index", seconds["site"], "s"),
            Figure("replay: swap schema and site", seconds["swap"], "s"),
            Figure("peak memory, this process", _peak_mb(resource.RUSAGE_SELF), "MB"),
            Figure("peak memory, children", _peak_mb(resource.RUSAGE_CHILDREN), "MB"),
        ]
        if produced < 0.99 * TARGET_EVENTS:
            figures += [
                Figure(
                    f"EXTRAPOLATED x{scale:.0f} (linear): rebuild 1M",
                    seconds["replay"] * scale,
                    "s",
                    None,
                ),
                Figure(
                    f"EXTRAPOLATED x{scale:.0f} (linear): verify 1M", seconds["verify"] * scale, "s"
                ),
                Figure(
                    f"EXTRAPOLATED x{scale:.0f} (linear): site 1M", seconds["site"] * scale, "s"
                ),
            ]
        rebuild_1m = seconds["replay"] * scale
        figures.append(
            Figure(
                f"rebuild of 1M within the {TARGET_S:.0f} s target (ratio < 1 meets it)",
                rebuild_1m / TARGET_S,
                "ratio",
            )
        )
        report(f"replay ({produced:,} events)", figures)
        return figures
    finally:
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            for schema in (live, previous):
                if schema:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
        admin = KafkaAdminClient(**client_options(settings))
        admin.delete_topics([topic])
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    bench_main(__doc__, run, f"{N_QUICK:,} events", "events")


if __name__ == "__main__":
    main()
