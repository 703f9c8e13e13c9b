"""UTC times as text: what strftime writes, for every moment (utc.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers.paths import month_of
from chatchannels.publishers.utc import utc_iso

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-11))])
MOMENTS = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES
)


@given(MOMENTS)
def test_utc_iso_is_what_strftime_writes(moment):
    utc = moment.astimezone(UTC)
    assert utc_iso(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert utc_iso(moment)[:-7] == utc.strftime("%Y-%m-%dT%H:%M:%S")
    assert month_of(moment) == utc.strftime("%Y-%m")
