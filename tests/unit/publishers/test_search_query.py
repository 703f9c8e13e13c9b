"""The search language: parsing, date covers and snippets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers.search_query import (
    AllOf,
    AnyOf,
    Field,
    Not,
    QueryError,
    TimeRange,
    Words,
    cover_range,
    has_positive,
    highlight_words,
    make_snippet,
    narrowed,
    parse_query,
)


def d(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("hello world", (Words("hello"), Words("world"))),
        ('"exact phrase" -spam', (Words("exact phrase", True), Not(Words("spam")))),
        ("a OR b c", (AnyOf((Words("a"), Words("b"))), Words("c"))),
        ("x OR y OR z", (AnyOf((Words("x"), Words("y"), Words("z"))),)),
        ("NOT x author:alice", (Not(Words("x")), Field("author", "alice"))),
        ('chat:"#alice/$bob;1"', (Field("chat", "#alice/$bob;1"),)),
        ("-author:bob", (Not(Field("author", "bob")),)),
        ("date:2006-05", (TimeRange(d(2006, 5, 1), d(2006, 6, 1)),)),
        ("date:2006", (TimeRange(d(2006, 1, 1), d(2007, 1, 1)),)),
        ("date:2006-12-31", (TimeRange(d(2006, 12, 31), d(2007, 1, 1)),)),
        ("after:2006-05-03 before:2006-06", (TimeRange(d(2006, 5, 3), d(2006, 6, 1)),)),
        ("foo:bar", (Words("foo:bar"),)),
        ('"unclosed', (Words("unclosed", True),)),
        ("- OR NOT", ()),
        ("a OR", (Words("a"),)),
        ("after:9999-12-31", (TimeRange(d(9999, 12, 31), None),)),
    ],
)
def test_parse(text, clauses):
    assert parse_query(text) == AllOf(clauses)


@pytest.mark.parametrize("bad", ["date:2006-13", "after:yesterday", "before:06-05-03"])
def test_bad_dates_name_the_part(bad):
    with pytest.raises(QueryError, match=bad):
        parse_query(bad)


@given(st.text())
def test_any_text_parses_or_raises_query_error(text):
    try:
        tree = parse_query(text)
    except QueryError:
        return
    assert isinstance(tree, AllOf)
    has_positive(tree)
    assert all(isinstance(w, str) for w in highlight_words(tree))


def test_only_negative_queries_select_nothing_by_themselves():
    assert not has_positive(parse_query("-spam NOT eggs"))
    assert has_positive(parse_query("-spam ham"))
    assert highlight_words(parse_query('ham -spam "green eggs"')) == ("ham", "green eggs")


MONTHS = [f"{y}-{m:02d}" for y in (2006, 2007) for m in range(1, 13) if (y, m) != (2006, 8)]


@given(
    st.dates(min_value=datetime(2005, 6, 1).date(), max_value=datetime(2008, 6, 1).date()),
    st.integers(min_value=0, max_value=500),
    st.booleans(),
    st.booleans(),
)
def test_cover_range_is_exactly_the_known_days_in_range(start_day, length, open_start, open_end):
    start = None if open_start else d(start_day.year, start_day.month, start_day.day)
    end = (
        None
        if open_end
        else d(start_day.year, start_day.month, start_day.day) + timedelta(days=length)
    )
    months, days = cover_range(start, end, MONTHS)
    covered = set(days)
    for month in months:
        first = datetime.strptime(month, "%Y-%m")
        day = first
        while day.month == first.month:
            covered.add(day.strftime("%Y-%m-%d"))
            day += timedelta(days=1)
    expected = set()
    day = datetime(2006, 1, 1)
    while day < datetime(2008, 1, 1):
        aware = day.replace(tzinfo=UTC)
        if (
            day.strftime("%Y-%m") in MONTHS
            and (start is None or aware >= start)
            and (end is None or aware < end)
        ):
            expected.add(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    assert covered == expected
    assert len(days) <= 62


def test_cover_range_refuses_bounds_within_a_day():
    with pytest.raises(ValueError, match="not midnight"):
        cover_range(d(2006, 5, 1, 12), None, MONTHS)
    assert cover_range(None, None, []) == ([], [])


@given(st.text(max_size=400), st.data())
def test_snippets_are_pieces_of_the_text_with_the_marks_in_place(text, data):
    points = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=6)))
    spans = [(a, b) for a, b in zip(points[::2], points[1::2], strict=False) if a < b]
    pieces = make_snippet(text, spans, width=120)
    joined = "".join(p for p, _ in pieces).removeprefix("…").removesuffix("…")
    assert joined in text
    marked = [p for p, m in pieces if m]
    assert all(p in [text[a:b] for a, b in spans] for p in marked)


def test_snippet_windows_around_the_first_match():
    text = "word " * 100 + "needle " + "word " * 100
    start = text.index("needle")
    pieces = make_snippet(text, [(start, start + 6)], width=100)
    assert pieces[0] == ("…", False) and pieces[-1] == ("…", False)
    assert ("needle", True) in pieces


@given(st.text(max_size=30), st.sampled_from(["chat", "author"]), st.text(max_size=12))
def test_a_narrowed_query_is_the_query_and_the_field(text, field, value):
    query = narrowed(text, field, value)
    if '"' in value:
        assert query is None
        return
    try:
        before = parse_query(text)
    except QueryError:
        return
    after = parse_query(query)
    if value:
        assert after.clauses[-1] == Field(field, value)
    assert after.clauses[: len(before.clauses)] == before.clauses or '"' in text
