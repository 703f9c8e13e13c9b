"""The mark rule: a chat's mark never claims a message whose full read is not written."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.ingest.agent.marks import MarkWalk


def test_the_mark_stops_below_the_first_id_not_captured():
    walk = MarkWalk([5, 3, 9, 7, 3], mark=None)
    assert walk.advance({3, 5, 9}) == 5
    assert walk.advance({3, 5, 9}) == 5
    assert walk.advance({3, 5, 7, 9}) == 9


def test_ids_at_or_below_the_old_mark_do_not_hold_it_back():
    walk = MarkWalk([1, 2, 3, 10, 11], mark=3)
    assert walk.advance(set()) is None
    assert walk.advance({10}) == 10


@given(
    listed=st.lists(st.integers(0, 60), max_size=40),
    mark=st.none() | st.integers(0, 60),
    rounds=st.lists(st.sets(st.integers(0, 60), max_size=20), max_size=6),
)
def test_every_listed_id_up_to_the_mark_is_captured_and_the_mark_only_rises(listed, mark, rounds):
    walk = MarkWalk(listed, mark)
    captured: set[int] = set()
    last = None
    for new in rounds:
        captured |= new
        top = walk.advance(captured)
        above = [i for i in listed if mark is None or i > mark]
        if top is None:
            assert not above or min(above) not in captured
            continue
        assert all(i in captured for i in above if i <= top)
        nxt = [i for i in above if i > top]
        assert not nxt or min(nxt) not in captured  # as far as it can go
        assert last is None or top >= last
        last = top
