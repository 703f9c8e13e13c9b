"""The processor's throughput: generated raw events of 3 hosts through `process --once`.

Figures, all from the same run:
- the two ceilings (kafka-python consume, PostgreSQL COPY + upsert; bench/ceilings.py), and
  the processor's events/s measured against the smaller one (target: half of it). The events
  are a chat history as live agents send it (a message a second across 20 chats and 9
  authors, each record with the append time it would have had: processor_harness's
  `produce_timeline`);
- where the processor's time goes (store.py's phases), the CPU time it used (its process,
  its decode worker, its PostgreSQL backend) per event next to what half the ceiling leaves
  per event with every core busy, and the raw-event schema validation alone, which every
  event pays in `decode_event`;
- the decode worker's time per event with and without checking the records' signatures
  (chatchannels/event_signing.py), on the same signed records: what the check costs;
- the same timeline through 1 and 2 processor instances, each its own OS process, in one
  consumer group (Kafka splits the 3 partitions; bench/instances.py): events/s from the
  moment every instance holds partitions until the store has consumed the topic, the ratio
  2-vs-1, CPU time per event per part, and what makes instances wait for each other: the
  PostgreSQL backends' states sampled (waiting for the group locks, for the change-stream
  lock, ...) and, per batch, the groups read back from the store because another instance
  wrote them, and the host messages read with them;
- a fifth as many events all posted within one second, produced host after host: every
  (chat, author) group is one time segment, so each batch re-clusters all of it;
- the same number of events in one (chat, author) group at two sizes, and the in-memory
  Engine on one group: per-group recomputation makes the cost grow with the group's size
  when all its messages fall within the matching tolerance (one time segment); the Engine
  again with the messages 150 s apart, where only the changed segment is re-clustered;
- with `--baseline GIT_REF`, the same instance figures for that commit's processor on the
  same topic, named as ours plus " (baseline GIT_REF)" (bench/baseline.py).

`python -m bench.bench_processor [--quick] [--baseline GIT_REF]` (quick: 20,000 events
instead of 200,000).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psycopg
from psycopg import sql

from bench import ceilings
from bench.baseline import checkout
from bench.cpu import cpu_seconds, descendants
from bench.instances import run_group
from bench.report import Figure, bench_main, report
from chatchannels.kafka_auth import client_options
from chatchannels.processors.batch import decode_values
from chatchannels.processors.consumer import ProcessOptions, Processor
from chatchannels.processors.decode import DecodeError
from chatchannels.processors.engine import Engine
from chatchannels.processors.pg.migrate import migrate
from chatchannels.rawevents import encode_raw_event, validate_raw_event
from chatchannels.settings import Settings
from chatchannels.signing_secrets import load_verifier
from tests.support.processor_harness import (
    HOSTS,
    create_time_topic,
    generate_events,
    produce,
    produce_timeline,
)
from tests.support.signing import signed_headers

N_FULL, N_QUICK = 200_000, 20_000
BATCH = 20_000
# Instances in a group run as `chatchannels process` does, with its default batch.
INSTANCES, GROUP_BATCH = (1, 2), 5_000
SPREAD_STEP_S = 150.0


@dataclass(frozen=True)
class _Run:
    seconds: float
    processor: Processor
    events: int
    # CPU seconds during the run, per part: the processor's process (all its threads), its
    # decode worker (with the forkserver it comes from), its PostgreSQL backend.
    cpu: dict[str, float]


@contextmanager
def _topic(
    settings: Settings, fill: Callable[[Settings, str], int], timeline: bool = False
) -> Iterator[tuple[str, int]]:
    """A fresh topic of 3 partitions and the number of events `fill` put in it; deleted at
    the end. A `timeline` topic keeps the CreateTime its records were produced with."""
    from kafka import KafkaAdminClient

    from chatchannels.stack.kafka_principals import create_raw_topic

    topic = f"bench.processor.{uuid.uuid4().hex[:8]}"
    if timeline:
        create_time_topic(settings, topic, partitions=3)
    else:
        create_raw_topic(settings, topic, partitions=3)
    try:
        yield topic, fill(settings, topic)
    finally:
        admin = KafkaAdminClient(**client_options(settings))
        admin.delete_topics([topic])
        admin.close()


def _process(
    settings: Settings,
    fill: Callable[[Settings, str], int],
    batch: int = BATCH,
    timeline: bool = False,
) -> _Run:
    """`fill` a fresh topic, process it into a fresh schema."""
    with _topic(settings, fill, timeline) as (topic, n):
        return _process_topic(settings, topic, n, batch, timeline)


def _process_topic(
    settings: Settings, topic: str, n: int, batch: int = BATCH, timeline: bool = False
) -> _Run:
    """`process --once` of `topic`'s `n` events into a fresh schema, in this process."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(settings.postgres_dsn, schema)
    try:
        options = ProcessOptions(
            topic=topic,
            schema=schema,
            once=True,
            batch_records=batch,
            create_time_is_append_time=timeline,
        )
        processor = Processor(settings.replace(topic=topic), options)
        try:
            backend = processor.store.conn.info.backend_pid
            before = {"self": cpu_seconds(os.getpid()), "backend": cpu_seconds(backend)}
            # Not the stack's servers, if this process started them.
            older = set(descendants(os.getpid()))
            start = time.perf_counter()
            summary = processor.run()
            elapsed = time.perf_counter() - start
            # The worker starts with the run and lives until close: all its time is the run's.
            started = set(descendants(os.getpid())) - older
            cpu = {
                "the processor's process (all threads)": cpu_seconds(os.getpid()) - before["self"],
                "its decode worker (and forkserver)": sum(cpu_seconds(pid) for pid in started),
                "its PostgreSQL backend": cpu_seconds(backend) - before["backend"],
            }
        finally:
            processor.close()
        assert summary.records == n, summary
        return _Run(elapsed, processor, n, cpu)
    finally:
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _produced(events: list[dict]) -> Callable[[Settings, str], int]:
    return lambda settings, topic: produce(settings, topic, events)


def _validation_rate(events: list[dict]) -> float:
    start = time.perf_counter()
    for event in events:
        validate_raw_event(event)
    return len(events) / (time.perf_counter() - start)


def _signature_cost(settings: Settings, events: list[dict]) -> list[Figure]:
    """The decode worker's time per event with and without the signature check, on the same
    records signed as their agents sign them, in one run, and the check on its own. Rounds
    alternate and the best of each counts, so that neither side pays for a warm-up or a
    busy moment the other did not have."""
    values = [encode_raw_event(e) for e in events]
    signed = []
    for event, value in zip(events, values, strict=True):
        key = event["host"].encode()
        signed.append((key, tuple(signed_headers(settings, event["host"], key, value)), 1.0))
    verifier = load_verifier(settings)
    results = decode_values(values, verifier, signed)[0]
    assert not any(isinstance(r, DecodeError) for r, _ in results), "a bench record was refused"

    def check_only() -> float:
        start = time.perf_counter()
        for event, value, (key, headers, broker_utc) in zip(events, values, signed, strict=True):
            signer = verifier.signer(key, value, headers, broker_utc)
            verifier.check_host(signer, event["host"], event["seq"])
        return time.perf_counter() - start

    best = {"unchecked": math.inf, "checked": math.inf, "alone": math.inf}
    for _ in range(5):
        best["unchecked"] = min(best["unchecked"], decode_values(values)[1])
        best["checked"] = min(best["checked"], decode_values(values, verifier, signed)[1])
        best["alone"] = min(best["alone"], check_only())
    per = 1e6 / len(values)
    return [
        Figure("decode worker per event, signatures not checked", best["unchecked"] * per, "µs"),
        Figure("decode worker per event, signatures checked", best["checked"] * per, "µs"),
        Figure("  the signature check alone, per event", best["alone"] * per, "µs"),
    ]


def _engine_rate(events: list[dict], true_time: bool = False) -> float:
    """Per-event rate of the Engine; broker time is the event's own clock, or with
    `true_time` the moment it was captured (its clock minus its host's skew)."""
    skews = {host: skew for host, skew, _ in HOSTS}
    engine = Engine()
    start = time.perf_counter()
    for event in events:
        utc = event["clock"]["utc"]
        engine.apply(event, utc - skews[event["host"]] if true_time else utc)
    return len(events) / (time.perf_counter() - start)


def _instances(
    settings: Settings, topic: str, tree: Path | None = None, suffix: str = ""
) -> list[Figure]:
    """1 and 2 processor instances in one consumer group over `topic` (of this tree, or of
    the import tree `tree`): their rates and the ratio, CPU time per event per part, and
    what makes them wait for each other (bench/instances.py)."""
    figures, rates = [], {}
    for k in INSTANCES:
        r = run_group(settings, topic, k, GROUP_BATCH, tree)
        label = f"{k} instance{'s' if k > 1 else ''}"
        rates[k] = r.events / r.seconds
        figures.append(
            Figure(f"processor, {label} in one consumer group{suffix}", rates[k], "events/s")
        )
        cpu = {**r.cpu, "all three": sum(r.cpu.values())}
        figures.extend(
            Figure(f"  CPU time per event, {label}: {part}{suffix}", 1e6 * s / r.events, "µs")
            for part, s in cpu.items()
        )
        figures.append(
            Figure(f"  cores busy, {label} (the whole machine){suffix}", r.busy_cores, "cores")
        )
        figures.append(
            Figure(
                f"  events taken by the busiest instance, {label}{suffix}",
                100 * max(r.records) / sum(r.records),
                "%",
            )
        )
        figures.extend(
            Figure(f"  PostgreSQL backends, {label}: {state}{suffix}", 100 * share, "% of samples")
            for state, share in sorted(r.backends.items(), key=lambda kv: -kv[1])
        )
        batches = max(r.batches, 1)
        figures.extend(
            Figure(f"  per batch, {label}: {name}{suffix}", n / batches, "")
            for name, n in sorted(r.counts.items())
        )
        figures.extend(
            Figure(f"  per batch, {label}: {phase}{suffix}", r.timings[phase] / batches, "s")
            for phase in ("load groups", "recompute groups")
        )
    figures.append(Figure(f"  2 instances vs 1{suffix}", rates[2] / rates[1], "x"))
    return figures


def run(settings: Settings, quick: bool = False, baseline: str | None = None) -> list[Figure]:
    # The baseline's checkout first: a ref that does not resolve fails before any measurement.
    with checkout(baseline) if baseline is not None else nullcontext() as tree:
        return _run(settings, quick, baseline, tree)


def _run(settings: Settings, quick: bool, baseline: str | None, tree: Path | None) -> list[Figure]:
    n = N_QUICK if quick else N_FULL
    kafka = ceilings.kafka_produce_consume(settings, n=min(n, 100_000))
    postgres = ceilings.postgres_copy_upsert(settings, n=n)
    consume = next(f for f in kafka if f.name.startswith("kafka consume"))
    ceiling = min(consume.value, postgres[0].value)

    fill = partial(produce_timeline, n_events=n)
    with _topic(settings, fill, timeline=True) as (topic, produced):
        main = _process_topic(settings, topic, produced, timeline=True)
        scaled = _instances(settings, topic)
        if tree is not None:
            scaled += _instances(settings, topic, tree, f" (baseline {baseline})")
    rate = main.events / main.seconds
    sample = generate_events(20_000, base=time.time())
    figures = [
        consume,
        *postgres,
        Figure(f"processor, {main.events:,} events of 3 hosts", rate, "events/s", ceiling),
        Figure("raw-event schema validation alone", _validation_rate(sample), "events/s"),
        *_signature_cost(settings, sample),
    ]
    timings = main.processor.store.timings
    for phase, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
        figures.append(Figure(f"  share of time: {phase}", 100 * seconds / main.seconds, "%"))
    figures.extend(Figure(f"  CPU time: {part}", s, "s") for part, s in main.cpu.items())
    # What the target leaves: at half the ceiling, with every core busy all the time.
    cores = os.cpu_count() or 1
    figures += [
        Figure("  CPU time per event, all three", 1e6 * sum(main.cpu.values()) / main.events, "µs"),
        Figure(
            f"  CPU time per event at half the ceiling, {cores} cores all busy",
            1e6 * cores / (ceiling / 2),
            "µs",
        ),
        *scaled,
    ]
    dense = generate_events(n // 5, base=time.time(), step_s=1.0 / n)
    seconds = _process(settings, _produced(dense)).seconds
    figures.append(
        Figure(f"{len(dense):,} events posted within one second", len(dense) / seconds, "events/s")
    )

    # One author in one chat: every batch recomputes the whole group.
    sizes = (n // 10, n // 5)
    for size in sizes:
        one = generate_events(
            size, base=time.time(), step_s=1.0 / size, chats=1, authors=1, bot_share=0
        )
        seconds = _process(settings, _produced(one), batch=2_000).seconds
        figures.append(
            Figure(
                f"one group, {len(one):,} events, batches of 2,000", len(one) / seconds, "events/s"
            )
        )
    for size in (1_000, 2_000):
        one = generate_events(
            size, base=time.time(), step_s=1.0 / size, chats=1, authors=1, bot_share=0
        )
        figures.append(
            Figure(
                f"Engine (per event), one group, {len(one):,} events", _engine_rate(one), "events/s"
            )
        )
    # The same, with a message every 150 s (more than the matching tolerance apart): each
    # change re-clusters its own time segment only, so the cost per event stays flat.
    for size in (1_000, 2_000):
        span = size / 3.2 * SPREAD_STEP_S
        one = generate_events(
            size,
            base=time.time() - span - 60,
            step_s=SPREAD_STEP_S,
            chats=1,
            authors=1,
            bot_share=0,
        )
        figures.append(
            Figure(
                f"Engine (per event), one group, {len(one):,} events, {SPREAD_STEP_S:.0f} s apart",
                _engine_rate(one, true_time=True),
                "events/s",
            )
        )
    report(f"processor ({'quick' if quick else 'full'})", figures)
    return figures


def main() -> None:
    baseline = {
        "metavar": "GIT_REF",
        "help": "also run the timeline through this commit's processor, figures beside ours",
    }
    bench_main(__doc__, run, f"{N_QUICK:,} events", arguments={"--baseline": baseline})


if __name__ == "__main__":
    main()
