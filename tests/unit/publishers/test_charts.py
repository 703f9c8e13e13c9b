"""Charts and statistics as values: inline SVG that names itself, escapes everything and
carries its numbers in a table too; the figures derived from the tallies."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from chatchannels.publishers.charts import Bar, Series, bars, columns, nice_ceiling
from chatchannels.publishers.statistics import (
    DayTally,
    PersonTally,
    Statistics,
    busiest,
    by_hour,
    by_month,
    by_weekday,
    charts,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>\"'&"


def parse(markup: str) -> ET.Element:
    """The figure as XML: a chart that is not well-formed fails here."""
    return ET.fromstring(str(markup))


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (4321, 5000)],
)
def test_the_axis_ends_at_a_round_number_at_or_above_the_largest_value(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_columns_name_themselves_and_carry_their_numbers_in_a_table():
    figure = parse(
        columns(
            "hours",
            "By hour",
            "Messages per hour",
            "Hour",
            ["00", "01", "02"],
            [Series("messages", (3, 0, 7))],
        )
    )
    svg = figure.find(f"{SVG}svg")
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "hours-title hours-desc"
    assert svg.find(f"{SVG}title").get("id") == "hours-title"
    assert svg.find(f"{SVG}title").text == "By hour"
    assert svg.find(f"{SVG}desc").text == "Messages per hour"
    rects = svg.findall(f"{SVG}rect")
    assert [r.find(f"{SVG}title").text for r in rects] == [
        "00: 3 messages",
        "01: 0 messages",
        "02: 7 messages",
    ]
    # The tallest column fills the plot up to the round maximum (10), the empty one is flat.
    heights = [float(r.get("height")) for r in rects]
    assert heights[1] == 0 and heights[2] == pytest.approx(0.7 * 140) and heights[0] < heights[2]
    table = figure.find("details/table")
    assert [th.text for th in table.findall("thead/tr/th")] == ["Hour", "messages"]
    rows = [[c.text for c in tr] for tr in table.findall("tbody/tr")]
    assert rows == [["00", "3"], ["01", "0"], ["02", "7"]]
    assert figure.find("details/summary").text == "By hour: the numbers"


def test_columns_draw_one_column_per_series_and_label_at_most_fourteen_points():
    labels = [f"2006-{m:02}" for m in range(1, 13)] + [f"2007-{m:02}" for m in range(1, 13)]
    figure = parse(
        columns(
            "changes",
            "Edits",
            "d",
            "Month",
            labels,
            [Series("edited", tuple(range(24))), Series("deleted", (1,) * 24, "s1")],
        )
    )
    svg = figure.find(f"{SVG}svg")
    rects = svg.findall(f"{SVG}rect")
    assert len(rects) == 48
    assert {r.get("class") for r in rects} == {"s0", "s1"}
    written = [t.text for t in svg.findall(f"{SVG}text") if t.text and t.text.startswith("20")]
    assert 0 < len(written) <= 14 and written[0] == "2006-01"
    assert len(figure.findall("details/table/tbody/tr")) == 24


def test_everything_shown_is_escaped_in_the_chart_and_the_table():
    markup = str(
        bars(
            "people",
            HOSTILE,
            HOSTILE,
            HOSTILE,
            HOSTILE,
            [Bar(HOSTILE, 5, href='x" onclick="y'), Bar("b", 2)],
        )
    )
    assert "<script>" not in markup and 'x" onclick' not in markup
    figure = parse(markup)
    svg = figure.find(f"{SVG}svg")
    assert svg.find(f"{SVG}title").text == HOSTILE
    assert figure.find("details/table/tbody/tr/th/a").get("href") == 'x" onclick="y'
    assert figure.find("details/table/tbody/tr/th/a/bdi").text == HOSTILE


def test_bars_draw_the_charted_rows_and_table_them_all():
    rows = [Bar(f"person {i}", 100 - i) for i in range(30)]
    figure = parse(bars("people", "People", "d", "Person", "messages", rows, charted=25))
    svg = figure.find(f"{SVG}svg")
    rects = svg.findall(f"{SVG}rect")
    assert len(rects) == 25
    assert float(rects[0].get("width")) == 240  # the longest bar is the full width
    assert len(figure.findall("details/table/tbody/tr")) == 30
    long_name = parse(bars("p", "t", "d", "h", "u", [Bar("x" * 80, 1)]))
    shown = [t.text for t in long_name.find(f"{SVG}svg").findall(f"{SVG}text")]
    assert shown[0].endswith("…") and len(shown[0]) == 26


def test_empty_charts_are_still_well_formed():
    parse(bars("b", "t", "d", "h", "u", []))
    parse(columns("c", "t", "d", "h", [], [Series("messages", ())]))


def day(d: str, n: int, edited: int = 0, deleted: int = 0) -> DayTally:
    return DayTally(d, n, edited, deleted)


def test_months_include_quiet_ones_and_cross_the_year():
    days = (day("2006-11-03", 2, 1), day("2006-11-20", 1, 0, 1), day("2007-02-01", 4))
    assert by_month(days) == [
        day("2006-11", 3, 1, 1),
        day("2006-12", 0),
        day("2007-01", 0),
        day("2007-02", 4),
    ]
    assert by_month(()) == []


def test_busiest_days_are_the_fullest_the_earlier_first_among_equals():
    days = tuple(day(f"2006-04-{d:02}", n) for d, n in [(1, 5), (2, 9), (3, 5), (4, 1)])
    assert [d.day for d in busiest(days, 3)] == ["2006-04-02", "2006-04-01", "2006-04-03"]


def test_hours_and_weekdays_sum_the_weekday_hour_grid():
    grid = ((1, 0, 2), (1, 23, 1), (7, 23, 4))
    assert by_hour(grid) == [2] + [0] * 22 + [5]
    assert by_weekday(grid) == [3, 0, 0, 0, 0, 0, 4]


def test_a_statistics_page_has_every_section_and_links_busiest_days_to_their_month():
    stats = Statistics(
        people=(PersonTally("alice", "Alice", 3, 1, 0), PersonTally("bob", "", 1, 0, 1)),
        days=(day("2006-04-03", 3, 1), day("2006-05-01", 1, 0, 1)),
        hours=((1, 12, 4),),
    )
    assert (stats.messages, stats.edited, stats.deleted) == (4, 1, 1)
    made = charts(stats, lambda d: f"{d[:7]}.html")
    assert list(made) == ["people", "months", "hours", "weekdays", "busiest", "changes"]
    people = parse(made["people"])
    assert [th.find("bdi").text for th in people.findall("details/table/tbody/tr/th")] == [
        "Alice (alice)",
        "bob",
    ]
    busy = parse(made["busiest"])
    assert [a.get("href") for a in busy.findall("details/table/tbody/tr/th/a")] == [
        "2006-04.html",
        "2006-05.html",
    ]
    assert not parse(charts(stats, lambda d: None)["busiest"]).findall(".//a")
