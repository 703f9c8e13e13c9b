"""Groups split into time segments: clustering per segment, memoised, equals clustering anew."""

from __future__ import annotations

import itertools

from hypothesis import assume, given
from hypothesis import strategies as st

from chatchannels.processors import canonical, matching
from chatchannels.processors.canonical import build_messages
from chatchannels.processors.matching import cluster_messages, split_segments
from tests.support.host_messages import POSTS, TOL_US, host_message, host_messages


@given(st.lists(st.integers(0, 3_000), max_size=30))
def test_segments_cut_exactly_at_gaps_above_the_tolerance(seconds):
    messages = [host_message("a", n + 1, s, "x", None) for n, s in enumerate(seconds)]
    segments = split_segments(messages, TOL_US)
    assert sorted(m.key for s in segments for m in s) == sorted(m.key for m in messages)
    times = [[m.timestamp for m in s] for s in segments]
    for seg in times:
        assert all(0 <= b - a <= 120 for a, b in itertools.pairwise(seg))
    for before, after in itertools.pairwise(times):
        assert after[0] - before[-1] > 120


@given(POSTS)
def test_incremental_memoised_clustering_equals_a_fresh_one(posts):
    messages = host_messages(posts)
    # Grow the group one message at a time (gaps open and get bridged), as recomputation
    # after each change does; the memoised segments must give what a cold computation gives.
    for k in range(1, len(messages) + 1):
        warm = build_messages(cluster_messages(messages[:k]))
    for memo in (matching._SEGMENTS, matching._STRONG, canonical._BUILT):
        memo.entries.clear()
    cold = build_messages(cluster_messages(messages))
    assert warm == cold


@given(POSTS)
def test_no_cluster_spans_two_segments(posts):
    messages = host_messages(posts)
    segment_of = {
        m.key: i for i, segment in enumerate(split_segments(messages, TOL_US)) for m in segment
    }
    for cluster in cluster_messages(messages):
        assert len({segment_of[m.key] for m in cluster.members}) == 1
    ids = [m.id for m in build_messages(cluster_messages(messages))]
    assert len(ids) == len(set(ids))


@given(st.lists(st.integers(0, 120), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_one_copy_per_host_within_the_tolerance_is_what_the_alignment_makes(offsets, rng):
    messages = [host_message(f"h{i}", i + 1, at, "ok", None) for i, at in enumerate(offsets)]
    rng.shuffle(messages)
    key = matching.strong_key(messages[0])
    fast = matching._strong_clusters(key, messages, TOL_US)
    assert len(fast) == 1
    assert fast == matching._aligned_clusters(key, messages, TOL_US)


@given(POSTS, st.sampled_from("abc"), st.randoms(use_true_random=False))
def test_one_hosts_messages_are_clustered_as_the_alignment_clusters_them(posts, host, rng):
    # Host c reads edited posts only after the edit: its messages mix originals and orphans.
    messages = [m for m in host_messages(posts) if m.host == host]
    assume(messages)
    rng.shuffle(messages)
    one_host = matching._one_host_clusters("#c", "alice", messages)
    assert one_host == matching._aligned_segment("#c", "alice", messages, TOL_US)
    assert matching.cluster_segment("#c", "alice", messages, TOL_US) == one_host
