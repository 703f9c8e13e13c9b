"""The processor's Prometheus metrics, updated once per committed batch.

The processor's throughput is its work per event, so nothing here runs per event but
`host_progress`, one pass over the batch's (host, seq, broker time) with a few comparisons
each; every counter and gauge moves once per batch.

Per host, a sequence gap is a seq more than one past the last seq this instance saw of that
host (hosts' events are keyed to one partition, in the order the host sent them). It is
counted when seen, so it says "events are missing" within seconds; `chatchannels
completeness` names the ranges from the store. After a restart or a rebalance the first
event of each host is the new reference: a gap straddling that moment is only in the store's
view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chatchannels.processors.batch import Decoded
from chatchannels.processors.pg.store import BatchResult

BATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class HostProgress:
    """One host's part of a batch."""

    last_seq: int = 0
    gap_events: int = 0
    last_heard_utc: float | None = None
    events: int = 0


def host_progress(decoded: Iterable[Decoded], last_seq: dict[str, int]) -> dict[str, HostProgress]:
    """Each host's progress over a batch, from the last seq seen of it before (`last_seq`,
    updated in place). Events with no host or seq (unreadable) count for nothing; a seq at
    or below the last one is a re-delivery, not a gap."""
    # Plain dicts in the loop: it is the one thing here that runs per event.
    events: dict[str, int] = {}
    gaps: dict[str, int] = {}
    heard: dict[str, float] = {}
    for d in decoded:
        result = d.result
        host, seq = result.host, result.seq
        if host is None or seq is None:
            continue
        events[host] = events.get(host, 0) + 1
        before = last_seq.get(host)
        if before is None:
            last_seq[host] = seq
        elif seq > before:
            if seq > before + 1:
                gaps[host] = gaps.get(host, 0) + seq - before - 1
            last_seq[host] = seq
        broker = d.record.broker_utc
        if broker is not None and broker > heard.get(host, 0.0):
            heard[host] = broker
    return {
        host: HostProgress(last_seq[host], gaps.get(host, 0), heard.get(host), n)
        for host, n in events.items()
    }


class ProcessorMetrics:
    """The processor's metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "chatchannels_processor_events", "Raw events applied and committed.", registry=r
        )
        self.batches = Counter("chatchannels_processor_batches", "Batches committed.", registry=r)
        self.changes = Counter(
            "chatchannels_processor_changes", "Changes written to the change stream.", registry=r
        )
        self.conflicts = Counter(
            "chatchannels_processor_batch_conflicts",
            "Batches dropped and read again (another instance or a redrive got there first).",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "chatchannels_processor_batch_duration_seconds",
            "Time to apply and commit one batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "chatchannels_processor_dead_letters",
            "Events kept as dead letters, by reason (schema, line, value, unsupported;"
            " signature: written by someone who may not, chatchannels/event_signing.py).",
            ["reason"],
            registry=r,
        )
        self.lag = Gauge(
            "chatchannels_processor_lag_records",
            "Records in the partition after the last committed batch (high watermark minus"
            " position).",
            ["partition"],
            registry=r,
        )
        self.clock_offset = Gauge(
            "chatchannels_processor_clock_offset_seconds",
            "The host's clock minus true time, as corrected (positive: the host is ahead).",
            ["host"],
            registry=r,
        )
        self.host_events = Counter(
            "chatchannels_processor_host_events", "Events applied, by host.", ["host"], registry=r
        )
        self.last_seq = Gauge(
            "chatchannels_processor_host_last_seq",
            "The highest sequence number applied of the host.",
            ["host"],
            registry=r,
        )
        self.gaps = Counter(
            "chatchannels_processor_sequence_gap_events",
            "Sequence numbers of the host skipped in the log: events lost between its spool"
            " and Kafka.",
            ["host"],
            registry=r,
        )
        self.last_heard = Gauge(
            "chatchannels_processor_host_last_heard_timestamp_seconds",
            "Broker time (LogAppendTime) of the host's newest event applied.",
            ["host"],
            registry=r,
        )
        self._last_seq: dict[str, int] = {}

    def batch_applied(
        self,
        decoded: Iterable[Decoded],
        result: BatchResult,
        seconds: float,
    ) -> None:
        """Count one committed batch: its records `decoded`, what the store reported, and
        the seconds it took."""
        hosts = host_progress(decoded, self._last_seq)
        self.batches.inc()
        self.events.inc(result.records)
        self.changes.inc(result.changes)
        self.batch_seconds.observe(seconds)
        for reason, n in result.dead_reasons.items():
            self.dead_letters.labels(reason).inc(n)
        for host, offset in result.clock_offsets.items():
            self.clock_offset.labels(host).set(offset)
        for host, p in hosts.items():
            self.host_events.labels(host).inc(p.events)
            self.last_seq.labels(host).set(p.last_seq)
            if p.gap_events:
                self.gaps.labels(host).inc(p.gap_events)
            if p.last_heard_utc is not None:
                self.last_heard.labels(host).set(p.last_heard_utc)

    def lag_seen(self, lag: Mapping[int, int]) -> None:
        """Records after the committed position, per partition (the loop's every poll)."""
        for partition, records in lag.items():
            self.lag.labels(str(partition)).set(records)

    def batch_dropped(self) -> None:
        self.conflicts.inc()
