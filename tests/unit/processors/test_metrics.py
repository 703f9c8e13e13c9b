"""The processor's metrics (processors/metrics.py): per-host progress and gaps, and what one
committed batch does to the registry."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chatchannels.processors.batch import Decoded, RawRecord
from chatchannels.processors.decode import DecodeError
from chatchannels.processors.metrics import ProcessorMetrics, host_progress
from chatchannels.processors.pg.store import BatchResult


def decoded(host: str | None, seq: int | None, broker: float | None = 100.0) -> Decoded:
    record = RawRecord("t", 0, seq or 0, (host or "").encode(), b"{}", broker)
    # Only host and seq are read of a result: a refused event carries them too.
    return Decoded(record, DecodeError("schema", "event", "test", host, seq))


def test_gaps_are_skipped_seqs_and_redeliveries_are_not():
    last: dict[str, int] = {}
    first = host_progress([decoded("a", 1), decoded("a", 2), decoded("b", 7)], last)
    assert (first["a"].last_seq, first["a"].gap_events, first["a"].events) == (2, 0, 2)
    # b's first event is its reference: nothing before it is known to this instance.
    assert first["b"].gap_events == 0
    second = host_progress(
        [decoded("a", 5, 130.0), decoded("a", 3, 120.0), decoded("b", 8), decoded(None, None)],
        last,
    )
    assert (second["a"].last_seq, second["a"].gap_events) == (5, 2)
    assert second["a"].last_heard_utc == 130.0
    assert second["b"].gap_events == 0
    assert last == {"a": 5, "b": 8}


def samples(metrics: ProcessorMetrics) -> dict[tuple[str, tuple], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_one_batch_moves_every_metric_once_and_registries_stay_apart():
    metrics, other = ProcessorMetrics(), ProcessorMetrics()
    metrics.batch_applied(
        [decoded("a", 1, 50.0), decoded("a", 4, 60.0)],
        BatchResult(2, 1, 3, {0: 2}, {"schema": 1}, {"a": 12.5}),
        0.2,
    )
    metrics.lag_seen({0: 40, 1: 0})
    found = samples(metrics)
    assert found[("chatchannels_processor_events_total", ())] == 2
    assert found[("chatchannels_processor_batches_total", ())] == 1
    assert found[("chatchannels_processor_changes_total", ())] == 3
    assert found[("chatchannels_processor_dead_letters_total", (("reason", "schema"),))] == 1
    assert found[("chatchannels_processor_lag_records", (("partition", "0"),))] == 40
    assert found[("chatchannels_processor_clock_offset_seconds", (("host", "a"),))] == 12.5
    assert found[("chatchannels_processor_host_last_seq", (("host", "a"),))] == 4
    assert found[("chatchannels_processor_sequence_gap_events_total", (("host", "a"),))] == 2
    assert found[("chatchannels_processor_host_events_total", (("host", "a"),))] == 2
    heard = ("chatchannels_processor_host_last_heard_timestamp_seconds", (("host", "a"),))
    assert found[heard] == 60.0
    assert found[("chatchannels_processor_batch_duration_seconds_count", ())] == 1
    assert samples(other)[("chatchannels_processor_events_total", ())] == 0
