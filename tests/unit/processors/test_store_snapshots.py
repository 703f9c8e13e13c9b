"""The store's JSON snapshots give back exactly the pure core's values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.canonical import CanonicalMessage
from chatchannels.processors.clocks import HostClock
from chatchannels.processors.observations import HostMessage
from chatchannels.processors.snapshots import dump_value, load_value
from tests.support.processor_events import engine_after_edits_and_deletes


def test_every_value_of_an_engine_round_trips() -> None:
    engine = engine_after_edits_and_deletes()
    values = [
        *((HostClock, c) for c in engine.clocks.values()),
        *((HostMessage, m) for m in engine.host_messages.values()),
        *((CanonicalMessage, m) for m in engine.canonical_messages()),
    ]
    assert len(values) == 2 + 4 + 2
    for cls, value in values:
        assert load_value(cls, dump_value(value)) == value


@given(
    body=st.text(),
    users=st.lists(st.text(min_size=1), max_size=3).map(tuple),
    timestamp=st.none() | st.integers(min_value=0, max_value=2**40),
    skew=st.none() | st.floats(allow_nan=False, allow_infinity=False),
)
def test_host_messages_round_trip(body, users, timestamp, skew) -> None:
    message = HostMessage(
        "h",
        "1",
        3,
        chat="c",
        author="x",
        timestamp=timestamp,
        skew_s=skew,
        users=users,
        status=body,
    )
    assert load_value(HostMessage, dump_value(message)) == message
