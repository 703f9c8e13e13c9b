"""Re-attach backoff: grows by the factor, stays under the cap, jitter stays within bounds."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.retry import Backoff


@given(
    initial=st.floats(0.01, 5),
    factor=st.floats(1, 4),
    maximum=st.floats(5, 60),
    jitter=st.floats(0, 0.5),
)
def test_delays_grow_and_are_capped(initial, factor, maximum, jitter):
    backoff = Backoff(initial=initial, factor=factor, maximum=maximum, jitter=jitter)
    nominal = initial
    for delay in itertools.islice(backoff.delays(), 40):
        assert nominal * (1 - jitter) <= delay <= nominal * (1 + jitter)
        assert delay <= max(initial, maximum) * (1 + jitter)
        nominal = min(nominal * factor, maximum)
