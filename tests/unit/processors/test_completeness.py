"""Sequence runs, gaps and silence (processors/completeness.py): properties over any set of
seqs, in any order and batching, and the examples `completeness` reports."""

from __future__ import annotations

from itertools import pairwise

import orjson
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.batch import decode_value
from chatchannels.processors.completeness import (
    ChatCapture,
    Gap,
    Position,
    Run,
    assess,
    batch_runs,
    find_gaps,
    merge_runs,
    silent_hosts,
)

S1, S2 = "a" * 32, "b" * 32


def position(value: bytes) -> Position | None:
    """As the processor reads it: in the decoder's parse of the record."""
    return decode_value(value)[1]


def record(host: str, session: str, seq: int, at: float | None = None, **extra):
    """(position, broker time) of a record that is not a valid raw event otherwise."""
    event = {"host": host, "session": session, "seq": seq, "source": "skype-api", **extra}
    return position(orjson.dumps(event)), at


def point(host: str, seq: int, session: str = S1, at: float | None = None) -> Run:
    return Run(host, session, seq, seq, at, at, "skype-api")


def covered(runs: list[Run]) -> set[tuple[str, str, int]]:
    return {(r.host, r.session, s) for r in runs for s in range(r.first_seq, r.last_seq + 1)}


seqs = st.lists(st.integers(1, 60), max_size=80)


@given(seqs)
def test_merged_runs_cover_exactly_the_seqs_and_are_maximal(values: list[int]) -> None:
    runs = merge_runs(point("h", s) for s in values)
    assert covered(runs) == {("h", S1, s) for s in values}
    for a, b in pairwise(runs):
        assert b.first_seq > a.last_seq + 1  # neither overlapping nor adjacent


@given(seqs, st.lists(st.integers(0, 80), max_size=5), st.randoms())
def test_runs_do_not_depend_on_batching_or_order(values, cuts, rnd) -> None:
    """What the store does batch by batch (merge a batch's runs into the stored ones) ends
    where merging everything at once ends, as a replay with other batches must."""
    shuffled = values[:]
    rnd.shuffle(shuffled)
    points = [point("h", s, at=float(s)) for s in shuffled]
    bounds = sorted({0, len(points), *(min(c, len(points)) for c in cuts)})
    stored: list[Run] = []
    for lo, hi in pairwise(bounds):
        stored = merge_runs([*stored, *merge_runs(points[lo:hi])])
    assert stored == merge_runs(points)


@given(seqs)
def test_gaps_are_exactly_the_seqs_missing_up_to_the_last(values: list[int]) -> None:
    runs = merge_runs(point("h", s) for s in values)
    missing = {s for g in find_gaps(runs) for s in range(g.first_seq, g.last_seq + 1)}
    assert missing == set(range(1, max(values, default=0) + 1)) - set(values)


def test_a_gap_names_its_host_session_and_range() -> None:
    runs = merge_runs([point("alice-pc", s) for s in (1, 2, 3, 7, 8)])
    assert find_gaps(runs) == [Gap("alice-pc", 4, 6, S1, S1)]
    assert str(find_gaps(runs)[0]) == (
        f"host alice-pc session {S1}: seq 4-6 missing (3 events lost between a spool and the log)"
    )


def test_a_gap_between_sessions_names_both_and_one_before_the_first_seq_its_session() -> None:
    runs = merge_runs([point("bob-pc", 3, S1), point("bob-pc", 4, S1), point("bob-pc", 6, S2)])
    assert find_gaps(runs) == [Gap("bob-pc", 1, 2, None, S1), Gap("bob-pc", 5, 5, S1, S2)]
    assert str(find_gaps(runs)[1]) == (
        f"host bob-pc between session {S1} and session {S2}: seq 5 missing"
        " (1 event lost between a spool and the log)"
    )


def test_sessions_that_continue_each_other_leave_no_gap() -> None:
    runs = merge_runs([point("h", 1, S1), point("h", 2, S1), point("h", 3, S2)])
    assert len(runs) == 2 and find_gaps(runs) == []


def test_batch_runs_keep_the_broker_times_of_each_runs_ends_and_count_dead_letters() -> None:
    records = [
        record("h", S1, 2, 20.0),
        record("h", S1, 1, 10.0, payload="not what the schema wants"),
        record("h", S1, 3, None),
        record("h", S1, 5, 50.0),
    ]
    assert batch_runs(records) == [
        Run("h", S1, 1, 3, 10.0, 20.0, "skype-api"),
        Run("h", S1, 5, 5, 50.0, 50.0, "skype-api"),
    ]


@given(st.binary(max_size=40))
def test_any_bytes_give_a_position_or_none(value: bytes) -> None:
    assert position(value) is None or isinstance(position(value), Position)


def test_a_position_needs_every_part_in_its_type() -> None:
    good = {"host": "h", "session": S1, "seq": 1, "source": "skype-api"}
    assert position(orjson.dumps(good)) == Position("h", S1, 1, "skype-api")
    for bad in ({"seq": True}, {"seq": 0}, {"seq": "1"}, {"host": None}, {"session": 5}):
        assert position(orjson.dumps({**good, **bad})) is None
    assert position(b"[1, 2]") is None
    assert position(b"{") is None


def test_only_live_hosts_silent_longer_than_the_setting_are_silent() -> None:
    runs = [
        point("quiet-pc", 1, at=1000.0),
        point("busy-pc", 1, at=1990.0),
        point("never-timed", 1, at=None),
        Run("file-0123", S1, 1, 9, 100.0, 100.0, "skype-maindb"),
    ]
    found = silent_hosts(runs, now_utc=2000.0, silent_after_s=600)
    assert [(s.host, s.silent_s) for s in found] == [("quiet-pc", 1000.0)]


def test_the_report_as_json() -> None:
    runs = [point("h", 1, at=5.0), point("h", 2, at=6.0), point("h", 4, S2, at=9.0)]
    chats = [ChatCapture("#c", "h", 1.0, 2.0, 2)]
    report = assess(runs, chats, now_utc=10.0, silent_after_s=3600).as_json()
    assert report["complete"] is False
    assert [g["message"] for g in report["gaps"]] == [
        f"host h between session {S1} and session {S2}: seq 3 missing"
        " (1 event lost between a spool and the log)"
    ]
    (host,) = report["hosts"]
    assert (host["first_seq"], host["last_seq"], host["last_heard_utc"]) == (1, 4, 9.0)
    assert [(s["session"], s["first_seq"], s["last_seq"]) for s in host["sessions"]] == [
        (S1, 1, 2),
        (S2, 4, 4),
    ]
    assert report["chats"] == [
        {"chat": "#c", "hosts": [{"host": "h", "first_utc": 1.0, "last_utc": 2.0, "messages": 2}]}
    ]
    assert assess(runs[:2], [], 10.0, 3600).complete
