"""The Kafka loop around the store: batches of records, positions from PostgreSQL, SIGTERM.

Kafka's own offset commits are never used: the position of every partition is a row of the
store, written in the batch's transaction (pg/offsets.py). On assignment the consumer seeks to
those rows, so whatever was committed is never applied twice and whatever was not is read
again; an OffsetConflict (another instance moved a partition during a rebalance) or a lost
database connection rolls the batch back and seeks again. The loop stops between batches when
`stop` is set (the CLI sets it on SIGTERM), so a batch is always either committed or dropped.

A batch is taken in broker-time order across the partitions (batch.take_in_time_order), and
the next one is read, and decoded in a worker process, while the store applies this one.

`once=True` (replay, tests, demo) assigns every partition of the topic to itself without a
consumer group and returns when it has caught up with the end offsets read at its start.
Otherwise the instance joins consumer group `group` and runs until stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from chatchannels.kafka_auth import PROCESSOR, client_options
from chatchannels.processors.batch import (
    Decoded,
    RawRecord,
    count_until,
    decode_values,
    signed_parts,
    take_in_time_order,
    time_horizon,
)
from chatchannels.processors.metrics import ProcessorMetrics
from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER, OffsetConflict
from chatchannels.processors.pg.store import Store
from chatchannels.retry import Backoff, Stopped, first_line, wait_for_service
from chatchannels.settings import Settings
from chatchannels.signing_secrets import load_verifier
from chatchannels.stack.processes import pid_alive

log = logging.getLogger(__name__)

LOG_APPEND_TIME = 1
# Waiting for PostgreSQL: soon again after a blip, every 10 s during a long outage.
STORE_BACKOFF = Backoff(initial=0.5, maximum=10.0)
# Records held in memory while waiting for every partition to reach a batch's time horizon.
_BUFFERED_BATCHES = 6


class ProcessorError(Exception):
    """The processor cannot go on (e.g. the topic does not exist); the message says why."""


@dataclass(frozen=True)
class ProcessOptions:
    topic: str
    group: str = DEFAULT_CONSUMER
    schema: str = "public"
    once: bool = False
    batch_records: int = 5000
    # How long a batch may wait to fill up; a quiet topic still commits promptly.
    batch_wait_s: float = 0.5
    # With `once`: stop at these next offsets (partition -> offset; unnamed partitions: 0)
    # instead of the end offsets read at the start, leaving later records unapplied. A
    # replay uses it to rebuild exactly the position of the store it is checked against.
    stop_at: Mapping[int, int] | None = None
    # A copy of the raw topic (processors/replay/topic_copy.py) carries each record's original
    # LogAppendTime as its CreateTime, and only the copier produces to it.
    create_time_is_append_time: bool = False
    # Off for a replay, which nobody reads until its swap (pg/store.py, Store.connect).
    synchronous_commit: bool = True


@dataclass(frozen=True)
class _Batch:
    records: list[RawRecord]
    decoded: Future[tuple[list, float]]

    def result(self, timings: Counter[str]) -> list[Decoded]:
        results, seconds = self.decoded.result()
        timings["decode (ahead, in a worker process)"] += seconds
        return [Decoded(r, *d) for r, d in zip(self.records, results, strict=True)]


@dataclass
class ProcessSummary:
    records: int = 0
    dead_letters: int = 0
    changes: int = 0
    batches: int = 0
    conflicts: int = 0


def raw_record(record, create_time_is_append_time: bool = False) -> RawRecord:
    """A kafka-python ConsumerRecord as the store's RawRecord; only LogAppendTime is clock
    evidence (a producer's CreateTime is the host's own clock), or CreateTime in a copy of
    the raw topic that kept the original append times."""
    trusted = record.timestamp_type == LOG_APPEND_TIME or create_time_is_append_time
    broker_utc = record.timestamp / 1000 if trusted else None
    return RawRecord(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        broker_utc,
        tuple(record.headers or ()),
    )


class Processor:
    """One processor instance: a Kafka consumer and a Store connection."""

    def __init__(
        self,
        settings: Settings,
        options: ProcessOptions,
        stop: threading.Event | None = None,
        on_batch: Callable[[ProcessSummary], None] | None = None,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.stop = stop or threading.Event()
        self.on_batch = on_batch
        self.metrics = metrics
        self.summary = ProcessSummary()
        self.expected: dict[int, int] = {}
        self.generation = 0
        # Read before anything connects: without the master key no record can be let in.
        self.verifier = load_verifier(settings)
        self.store = self._connect_store()
        self.consumer = KafkaConsumer(
            **client_options(settings, PROCESSOR),
            group_id=None if options.once else options.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=options.batch_records,
            fetch_max_bytes=64 * 1024 * 1024,
            # Small per partition, so that each fetch brings some of every partition and a
            # batch can be taken in time order across them (batch.take_in_time_order).
            max_partition_fetch_bytes=1024 * 1024,
        )
        # Records polled but not yet applied, per partition, in offset order.
        self.pending: dict[int, deque[RawRecord]] = {}
        self._decoder = _decoder()

    def _connect_store(self) -> Store:
        return Store.connect(
            self.settings.processor_postgres_dsn,
            self.options.schema,
            consumer=self.options.group,
            tolerance_s=float(self.settings.match_tolerance_s),
            cache_members=self.settings.processor_cache_members,
            synchronous_commit=self.options.synchronous_commit,
        )

    def _reconnect_store(self) -> None:
        """Wait for PostgreSQL, however long it is away (a running service has nothing
        better to do), then seek to the stored offsets: the lost batch's commit may or may
        not have happened, and they say which."""
        self.store.close()

        def connect_and_seek() -> None:
            self.store = self._connect_store()
            try:
                self._seek_to_stored(self.consumer.assignment())
            except BaseException:
                self.store.close()
                raise

        wait_for_service(
            "PostgreSQL",
            connect_and_seek,
            transient=(psycopg.OperationalError,),
            log=log,
            backoff=STORE_BACKOFF,
            stop=self.stop,
        )

    def close(self) -> None:
        self._decoder.shutdown(cancel_futures=True)
        self.consumer.close()
        self.store.close()

    # -- positions --------------------------------------------------------------------------

    def _seek_to_stored(self, partitions) -> None:
        stored = self.store.stored_offsets(self.options.topic)
        for tp in partitions:
            self.pending.pop(tp.partition, None)
            offset = stored.get(tp.partition, 0)
            self.consumer.seek(tp, offset)
            self.expected[tp.partition] = offset

    def _partitions(self) -> list[TopicPartition]:
        deadline = time.monotonic() + 30
        while True:
            found = self.consumer.partitions_for_topic(self.options.topic)
            if found:
                return [TopicPartition(self.options.topic, p) for p in sorted(found)]
            if time.monotonic() > deadline:
                raise ProcessorError(f"topic {self.options.topic!r} does not exist")
            time.sleep(0.2)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> ProcessSummary:
        """Consume until caught up (`once`) or until `stop` is set; returns what was done."""
        end: dict[TopicPartition, int] | None = None
        if self.options.once:
            partitions = self._partitions()
            self.consumer.assign(partitions)
            self._seek_to_stored(partitions)
            end = self.consumer.end_offsets(partitions)
            if self.options.stop_at is not None:
                end = {tp: self.options.stop_at.get(tp.partition, 0) for tp in partitions}
        else:
            # Subscribed first, then the topic's partitions known, before the first poll
            # joins the group: kafka-python's leader compares its assignment with the
            # metadata it held for the subscription when it assigned, and metadata fetched
            # before the subscription count for nothing. A member that joined without them
            # was assigned nothing until its next metadata refresh, minutes later, or
            # rejoined at once, and that second join sometimes got no assignment for a
            # minute.
            self.consumer.subscribe([self.options.topic], listener=_Rebalance(self))
            self._partitions()
        ahead: _Batch | None = None
        while not self.stop.is_set():
            generation = self.generation
            batch = ahead or self._read()
            # The next batch is read, and decoded in a worker process, while this one is
            # applied.
            ahead = self._read() if batch is not None else None
            if self.generation != generation:
                # A rebalance happened inside poll(): drop what was gathered and read again
                # from the stored offsets (a poll after the assignment's seek may already
                # have moved the positions past records dropped here).
                ahead = None
                self._seek_to_stored(self.consumer.assignment())
                continue
            if batch is not None:
                if not self._apply(batch.records, batch.result(self.store.timings)):
                    ahead = None  # read from positions that are no longer the stored ones
            elif end is not None and all(self.consumer.position(tp) >= o for tp, o in end.items()):
                break
        return self.summary

    def _read(self) -> _Batch | None:
        records = self._gather()
        if self.metrics:
            # Here, not after a batch: a processor that cannot commit still polls, and its
            # lag must show that it falls behind.
            self.metrics.lag_seen(self._lag())
        if not records:
            return None
        values = [r.value for r in records]
        decoding = self._decoder.submit(decode_values, values, self.verifier, signed_parts(records))
        return _Batch(records, decoding)

    def _gather(self) -> list[RawRecord]:
        """The next batch, in time order across partitions: polls until a batch's worth of
        records lies before the time horizon of the partitions with more to read (a
        partition holding more hosts than another is further behind in time for as many
        records), or the topic is quiet, the wait over, or the buffer full; then takes it."""
        want = self.options.batch_records
        deadline = time.monotonic() + self.options.batch_wait_s
        trusted = self.options.create_time_is_append_time
        stop_at = self.options.stop_at
        while not self.stop.is_set():
            horizon = time_horizon(self.pending, self._unread())
            if count_until(self.pending, horizon, want) >= want:
                return take_in_time_order(self.pending, want, horizon)
            if sum(map(len, self.pending.values())) >= _BUFFERED_BATCHES * want:
                break
            polled = self.consumer.poll(timeout_ms=100, max_records=want)
            for tp, batch in polled.items():
                records = (raw_record(r, trusted) for r in batch)
                if stop_at is not None:
                    # Read past the stop (a fetch returns whole batches): those stay unapplied.
                    end = stop_at.get(tp.partition, 0)
                    records = (r for r in records if r.offset < end)
                self.pending.setdefault(tp.partition, deque()).extend(records)
            if not polled or time.monotonic() > deadline:
                break
        return take_in_time_order(self.pending, want)

    def _unread(self) -> list[int]:
        """Partitions whose position is short of their end (`once`: the stop) or of the
        high watermark last fetched (unknown: assume more)."""
        unread = []
        stop_at = self.options.stop_at
        for tp in self.consumer.assignment():
            end = stop_at.get(tp.partition, 0) if stop_at is not None else None
            end = self.consumer.highwater(tp) if end is None else end
            if end is None or self.consumer.position(tp) < end:
                unread.append(tp.partition)
        return unread

    def _apply(self, records: list[RawRecord], decoded: list[Decoded]) -> bool:
        """Apply one batch; False if it was dropped and the positions were reset."""
        started = time.perf_counter()
        try:
            result = self.store.apply_batch(self.options.topic, records, self.expected, decoded)
        except (OffsetConflict, psycopg.errors.UniqueViolation) as exc:
            # Another transaction got there first: another instance moved a partition, or a
            # dead-letter redrive stored a host message this batch saw first (pg/state.py).
            # Read again, the batch applies to what they committed.
            log.warning("batch dropped, %s; seeking to the stored offsets", exc)
            self.summary.conflicts += 1
            if self.metrics:
                self.metrics.batch_dropped()
            self._seek_to_stored(self.consumer.assignment())
            return False
        except psycopg.OperationalError as exc:
            log.warning("batch dropped, the store is away (%s)", first_line(exc))
            with contextlib.suppress(Stopped):  # then the loop ends: `stop` is set
                self._reconnect_store()
            return False
        self.generation = 0
        self.expected.update(result.next_offsets)
        s = self.summary
        s.records += result.records
        s.dead_letters += result.dead_letters
        s.changes += result.changes
        s.batches += 1
        if self.metrics:
            self.metrics.batch_applied(decoded, result, time.perf_counter() - started)
        if self.on_batch:
            self.on_batch(s)
        return True

    def _lag(self) -> dict[int, int]:
        """Records after the committed position, per assigned partition whose high watermark
        the last fetch told."""
        lag = {}
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None and tp.partition in self.expected:
                lag[tp.partition] = max(high - self.expected[tp.partition], 0)
        return lag


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    def on_partitions_revoked(self, revoked) -> None:
        self.processor.generation += 1
        for tp in revoked:
            self.processor.expected.pop(tp.partition, None)
            self.processor.pending.pop(tp.partition, None)

    def on_partitions_assigned(self, assigned) -> None:
        self.processor.generation += 1
        self.processor._seek_to_stored(assigned)


def _decoder() -> ProcessPoolExecutor:
    """One worker process that decodes batches. Decoding (JSON, the schema, the Desktop API
    lines) is a third of the processor's Python work: in a thread it holds the interpreter
    lock the store's work needs, in a process it runs on the other core. A forkserver, so
    that no worker is forked from a process with threads (Kafka's, the publishers' in tests),
    and one that has imported the decoder already."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["chatchannels.processors.batch"])
    return ProcessPoolExecutor(
        1, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
    )


def _worker_start(processor: int) -> None:
    """In the worker: Ctrl-C and SIGTERM reach the whole process group, but the processor
    decides when to stop (and closes the pool); and the worker exits when the processor
    does, however it ends. Blocked on its call queue it would never notice (it holds both
    ends of the queue's pipe), and it would keep the forkserver alive with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(processor,), name="exit-with", daemon=True).start()


def _exit_with(pid: int) -> None:
    try:
        select.select([os.pidfd_open(pid)], [], [])
    except OSError:  # gone already, or no pidfd (Linux < 5.3)
        # Without a pidfd nothing can wait for a process that is not one's child: polled.
        while pid_alive(pid):
            time.sleep(1)
    os._exit(0)


def run_processor(
    settings: Settings,
    options: ProcessOptions,
    stop: threading.Event | None = None,
    metrics: ProcessorMetrics | None = None,
) -> ProcessSummary:
    processor = Processor(settings, options, stop, metrics=metrics)
    try:
        return processor.run()
    finally:
        processor.close()
