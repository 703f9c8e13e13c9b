"""The store's JSON snapshots give back exactly the pure core's values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.canonical import CanonicalMessage
from chatchannels.processors.clocks import HostClock
from chatchannels.processors.engine import Engine
from chatchannels.processors.observations import HostMessage
from chatchannels.processors.snapshots import dump_value, load_value
from tests.unit.test_processor_support import T0, Host


def engine_after_edits_and_deletes() -> Engine:
    a, b = Host("a", skew=30.5), Host("b", skew=-83)
    for h in (a, b):
        h.read("1", posted=T0, body="hé <b>x</b>\r\n", at=T0 + 1)
        h.edit("1", edited=T0 + 5, body="edited")
        h.read("2", posted=T0 + 9, body="gone")
        h.edit("2", edited=T0 + 12, body="")
        h.status("2", "READ", at=T0 + 13)
    engine = Engine()
    for event, broker_utc in a.records + b.records:
        engine.apply(event, broker_utc)
    return engine


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
