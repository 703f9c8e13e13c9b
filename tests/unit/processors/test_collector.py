import gc
import weakref

from chatchannels.processors.pg.session import PausedCollector


class _Node:
    pass


def _cycle() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_cyclic_garbage_of_a_batch_goes_at_the_next_full_collection() -> None:
    collector = PausedCollector(full_every=2)
    try:
        with collector.paused():
            assert not gc.isenabled()
            garbage = _cycle()
        assert gc.isenabled() and garbage() is not None
        with collector.paused():
            pass
        assert garbage() is None
    finally:
        gc.unfreeze()


def test_the_state_a_batch_leaves_is_frozen_out_of_later_passes() -> None:
    collector = PausedCollector(full_every=100)
    try:
        with collector.paused():
            state = [_Node() for _ in range(10)]
        assert gc.get_freeze_count() >= len(state)
    finally:
        gc.unfreeze()
