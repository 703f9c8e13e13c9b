"""GroupIndex: a group updated batch by batch equals the group recomputed from scratch."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from chatchannels.processors.engine import recompute_group
from chatchannels.processors.group_index import GroupIndex
from tests.support.host_messages import POSTS, host_messages


def _changes(messages, cuts, moves):
    """Batches of host messages: the messages in the order given, cut at `cuts`, then some of
    them again with their time moved (a host's clock estimate corrected)."""
    batches, start = [], 0
    for cut in [*sorted({c % (len(messages) + 1) for c in cuts}), len(messages)]:
        batches.append(messages[start:cut])
        start = cut
    for n, shift in moves:
        m = messages[n % len(messages)]
        batches.append([dataclasses.replace(m, skew_s=(m.skew_s or 0.0) - shift)])
    return batches


@settings(max_examples=300, deadline=None)
@given(
    POSTS,
    st.lists(st.integers(0, 80), max_size=6),
    st.lists(st.tuples(st.integers(0, 80), st.integers(-400, 400)), max_size=4),
    st.randoms(use_true_random=False),
)
def test_updates_equal_recomputing_the_whole_group(posts, cuts, moves, rng):
    messages = host_messages(posts)
    rng.shuffle(messages)
    index = GroupIndex("#c", "alice", 120.0)
    members: dict = {}
    whole: list = []
    for batch in _changes(messages, cuts, moves):
        change, before = index.update({m.key: m for m in batch})
        members.update({m.key: m for m in batch})
        fresh, expected = recompute_group(members.values(), whole)
        assert index.messages == {m.id: m for m in fresh}
        assert set(change.upserted) == set(expected.upserted)
        assert change.removed == expected.removed
        assert set(change.aliases) == set(expected.aliases)
        assert {i: m for i, m in before.items() if i in change.removed} == {
            m.id: m for m in whole if m.id in change.removed
        }
        whole = fresh


def test_a_change_far_from_the_rest_rebuilds_nothing_else():
    messages = host_messages([(0, "ok", {"a", "b"}, None), (5_000, "hi", {"a"}, None)])
    index = GroupIndex("#c", "alice", 120.0)
    index.update({m.key: m for m in messages[:2]})
    change, before = index.update({messages[2].key: messages[2]})
    assert [m.body for m in change.upserted] == ["hi"]
    assert before == {} and change.removed == ()
