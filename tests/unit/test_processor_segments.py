"""Groups split into time segments: clustering per segment, memoised, equals clustering anew."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors import canonical, matching
from chatchannels.processors.canonical import build_messages
from chatchannels.processors.matching import cluster_messages, split_segments
from chatchannels.processors.observations import BodySighting, HostMessage

TOL_US = 120_000_000
T0 = 1_700_000_000


def _message(host: str, n: int, at: int, body: str, edited: int | None) -> HostMessage:
    sighting = BodySighting(body, 0 if edited is None else at + edited, None, n, 0.0, 0)
    return HostMessage(
        host=host,
        local_id=str(n),
        last_seq=n,
        chat="#c",
        author="Alice",
        type="SAID",
        timestamp=T0 + at,
        skew_s=0.0,
        epoch=0,
        sightings=(sighting,),
    )


# Posts: (seconds after T0, body, which of three hosts read it, edit delay or None). Bodies
# from a small set so that equal texts repeat within and across segments.
_POSTS = st.lists(
    st.tuples(
        st.integers(0, 2_000),
        st.sampled_from(["ok", "hi", "lunch?", "ok!"]),
        st.sets(st.sampled_from("abc"), min_size=1),
        st.none() | st.integers(1, 300),
    ),
    min_size=1,
    max_size=25,
)


def _host_messages(posts) -> list[HostMessage]:
    out = []
    for n, (at, body, hosts, edited) in enumerate(posts):
        for host in sorted(hosts):
            # Host c reads edited messages only after the edit: an orphan in phase 2.
            orphan = edited is not None and host == "c"
            shown = body + " (edited)" if orphan else body
            out.append(_message(host, n + 1, at + ord(host) % 3, shown, edited if orphan else None))
    return out


@given(st.lists(st.integers(0, 3_000), max_size=30))
def test_segments_cut_exactly_at_gaps_above_the_tolerance(seconds):
    messages = [_message("a", n + 1, s, "x", None) for n, s in enumerate(seconds)]
    segments = split_segments(messages, TOL_US)
    assert sorted(m.key for s in segments for m in s) == sorted(m.key for m in messages)
    times = [[m.timestamp for m in s] for s in segments]
    for seg in times:
        assert all(0 <= b - a <= 120 for a, b in itertools.pairwise(seg))
    for before, after in itertools.pairwise(times):
        assert after[0] - before[-1] > 120


@given(_POSTS)
def test_incremental_memoised_clustering_equals_a_fresh_one(posts):
    messages = _host_messages(posts)
    # Grow the group one message at a time (gaps open and get bridged), as recomputation
    # after each change does; the memoised segments must give what a cold computation gives.
    for k in range(1, len(messages) + 1):
        warm = build_messages(cluster_messages(messages[:k]))
    for memo in (matching._SEGMENTS, matching._STRONG, canonical._BUILT):
        memo.entries.clear()
    cold = build_messages(cluster_messages(messages))
    assert warm == cold


@given(_POSTS)
def test_no_cluster_spans_two_segments(posts):
    messages = _host_messages(posts)
    segment_of = {
        m.key: i for i, segment in enumerate(split_segments(messages, TOL_US)) for m in segment
    }
    for cluster in cluster_messages(messages):
        assert len({segment_of[m.key] for m in cluster.members}) == 1
    ids = [m.id for m in build_messages(cluster_messages(messages))]
    assert len(ids) == len(set(ids))


@given(st.lists(st.integers(0, 120), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_one_copy_per_host_within_the_tolerance_is_what_the_alignment_makes(offsets, rng):
    messages = [_message(f"h{i}", i + 1, at, "ok", None) for i, at in enumerate(offsets)]
    rng.shuffle(messages)
    key = matching.strong_key(messages[0])
    fast = matching._strong_clusters(key, messages, TOL_US)
    assert len(fast) == 1
    assert fast == matching._aligned_clusters(key, messages, TOL_US)
