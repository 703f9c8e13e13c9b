"""batch.py, the store's pure half: folding in batches of any size, from state loaded the way
the store loads it, then recomputing each touched group once, ends where the Engine ends."""

from __future__ import annotations

import math
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from chatchannels.processors.batch import (
    RawRecord,
    clock_track,
    count_until,
    decode_record,
    fold_records,
    needed_keys,
    refreshing_hosts,
    take_in_time_order,
    time_horizon,
)
from chatchannels.processors.canonical import CanonicalMessage
from chatchannels.processors.engine import Engine, recompute_group
from chatchannels.processors.matching import group_key
from chatchannels.rawevents import encode_raw_event
from tests.support.processor_events import T0, Host, Record, interleave


def scenario() -> list[Host]:
    """Skews +0, +47, -83; edits, a deletion, two equal bot posts, a late backfill, and
    clock evidence that improves mid-way (smaller delays later), so step 2 refreshes."""
    hosts = [Host("a", skew=0, delay=9), Host("b", skew=47, delay=6), Host("c", skew=-83)]
    a, b, c = hosts
    for h, first in ((a, 10), (b, 20)):
        h.read(str(first), posted=T0, body="hello")
        h.read(str(first + 1), posted=T0 + 5, body="ping", author="bot")
        h.edit(str(first), edited=T0 + 8, body="hello world")
        h.delay = 0.1  # live from here on: the estimates rise by 6-9 s
        h.read(str(first + 2), posted=T0 + 9, body="ping", author="bot")
        h.read(str(first + 3), posted=T0 + 12, body="oops")
        h.edit(str(first + 3), edited=T0 + 14, body="")
    c.read(
        "30",
        posted=T0,
        body="hello world",
        edited=T0 + 8,
        edited_by="bob",
        at=T0 + 20,
        reason="backfill",
    )
    c.read("31", posted=T0 + 5, body="ping", author="bot", at=T0 + 21, reason="backfill")
    c.read(
        "33",
        posted=T0 + 12,
        body="",
        edited=T0 + 14,
        edited_by="bob",
        at=T0 + 22,
        reason="backfill",
    )
    return hosts


def as_raw(records: list[Record]) -> list[RawRecord]:
    return [
        RawRecord("t", 0, offset, event["host"].encode(), encode_raw_event(event), broker)
        for offset, (event, broker) in enumerate(records)
    ]


def run_batches(records: list[RawRecord], sizes: list[int]) -> list[CanonicalMessage]:
    """What the store does, with dictionaries standing in for its tables."""
    clocks, host_messages, objects = {}, {}, {}
    stored: dict[tuple[str, str], dict[str, CanonicalMessage]] = {}
    start, k = 0, 0
    while start < len(records):
        size = sizes[k % len(sizes)]
        decoded = [decode_record(r) for r in records[start : start + size]]
        start, k = start + size, k + 1
        _hosts, keys, _objects = needed_keys(decoded)
        track = clock_track(decoded, clocks)
        refreshing = refreshing_hosts(track, clocks)
        loaded = {key: m for key, m in host_messages.items() if key in keys or key[0] in refreshing}
        folded = fold_records(decoded, track, clocks, loaded, objects)
        clocks.update(folded.clocks)
        host_messages.update(folded.host_messages)
        objects.update(folded.objects)
        for group in sorted(folded.groups):
            members = [m for m in host_messages.values() if m.is_complete and group_key(m) == group]
            messages, _ = recompute_group(members, list(stored.get(group, {}).values()))
            stored[group] = {m.id: m for m in messages}
    return sorted(
        (m for ms in stored.values() for m in ms.values()), key=lambda m: (m.chat, m.utc, m.id)
    )


def engine_messages(records: list[Record]) -> list[CanonicalMessage]:
    engine = Engine()
    for event, broker in records:
        engine.apply(event, broker)
    return engine.canonical_messages()


@settings(max_examples=40, deadline=None)
@given(
    order=st.lists(st.integers(min_value=0, max_value=2), max_size=20),
    sizes=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=5),
)
def test_any_batching_of_any_interleaving_ends_where_the_engine_ends(order, sizes) -> None:
    hosts = scenario()
    counts = [len(h.records) for h in hosts]
    usable = []
    for i in order:
        if counts[i]:
            counts[i] -= 1
            usable.append(i)
    records = interleave(hosts, usable)
    expected = engine_messages(records)
    assert len(expected) == 4
    assert run_batches(as_raw(records), sizes) == expected


def test_the_scenario_moves_the_clocks_mid_way() -> None:
    """Guards the property test above: step 2 (refresh) must happen after messages exist."""
    hosts = scenario()
    records = [r for h in hosts for r in h.records]
    engine = Engine()
    moved = set()
    for event, broker in records:
        before = engine.clocks.get(event["host"])
        engine.apply(event, broker)
        after = engine.clocks[event["host"]]
        if before is not None and before.has_evidence and after.skew_s != before.skew_s:
            moved.add(event["host"])
    assert moved == {"a", "b"}


_QUEUES = st.dictionaries(
    st.integers(0, 3),
    st.lists(st.one_of(st.none(), st.integers(0, 50)), max_size=12).map(
        lambda times: sorted(times, key=lambda t: t or 0)
    ),
)


@given(_QUEUES, st.integers(0, 30), st.sets(st.integers(0, 3)))
def test_batches_are_prefixes_taken_in_time_order_up_to_the_horizon(queues, n, unread):
    pending = {
        p: deque(RawRecord("t", p, o, None, b"", t) for o, t in enumerate(times))
        for p, times in queues.items()
    }
    horizon = time_horizon(pending, unread)
    # No partition with more to read has a record past the horizon yet.
    for p in unread:
        last = pending[p][-1].broker_utc or 0 if pending.get(p) else -math.inf
        assert horizon <= last
    ready = count_until(pending, horizon, n)
    batch = take_in_time_order(pending, n, horizon)
    assert len(batch) == ready <= n
    for p, times in queues.items():
        offsets = [r.offset for r in batch if r.partition == p]
        assert offsets == list(range(len(offsets)))  # a prefix, in order
        assert [r.offset for r in pending[p]] == list(range(len(offsets), len(times)))
    when = [r.broker_utc or 0 for r in batch]
    assert when == sorted(when)
    assert all(t <= horizon for t in when)
    # Stopped early only for the size or the horizon.
    heads = [q[0].broker_utc or 0 for q in pending.values() if q]
    assert len(batch) == n or not heads or min(heads) > horizon
