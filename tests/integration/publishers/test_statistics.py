"""Statistics pages against a real PostgreSQL: the figures are the store's, and publishing
incrementally, batch by batch through moves, removals, edits and renames, gives the same
pages as publishing from zero."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from chatchannels.publishers import paths
from chatchannels.publishers.changes import run_publishers
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.site import SitePublisher
from chatchannels.publishers.statistics import charts
from chatchannels.publishers.tallies import TABLES, Tallies
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

ONE = "#alice/$bob;0101"
TWO = "19:team@thread.skype"


def t(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2006, month, day, hour, tzinfo=UTC)


def publish(dsn: str, site: Path) -> None:
    publisher = SitePublisher(site)
    try:
        run_publishers(dsn, [publisher], once=True, batch_size=2)
    finally:
        publisher.close()


def stats_pages(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text() for p in sorted(site.rglob("stats.html"))}


def table(page: str, chart: str) -> list[list[str]]:
    """The rows of a chart's table, as text, read back from the page."""
    start = page.index(f'<figure class="chart" id="{chart}">')
    figure = ET.fromstring(page[start : page.index("</figure>", start) + len("</figure>")])
    return [["".join(cell.itertext()) for cell in row] for row in figure.iter("tr")][1:]


@pytest.fixture
def seeder(pg_dsn):
    seeder = StoreSeeder(pg_dsn)
    yield seeder
    seeder.close()


def seed(s: StoreSeeder) -> None:
    s.user("alice", "Alice")
    s.user("bob", "Bob")
    s.chat(ONE, "", ["alice", "bob"])
    s.chat(TWO, "Team <b>talk</b>", ["alice", "carol"])
    s.message("a1", ONE, "alice", t(4, 3, 9), "one", "Alice")  # a Monday
    s.message("a2", ONE, "alice", t(4, 3, 10), "two", "Alice")
    s.message("a3", ONE, "bob", t(4, 3, 10), "three", "Bob")
    s.message("a4", ONE, "bob", t(6, 6, 23), "four", "Bob")  # a Tuesday
    s.message("b1", TWO, "alice", t(4, 4, 9), "five", "Alice")
    s.message("b2", TWO, "carol", t(4, 4, 9), "six", 'Carol <img src=x onerror="x">')


def change(s: StoreSeeder) -> None:
    s.edit("a1", "one, edited", "alice", t(4, 3, 11))
    s.delete("a3", "bob", t(4, 3, 12))
    s.message("b3", TWO, "alice", t(4, 4, 10), "seven", "Alice Renamed")
    s.move("a4", t(5, 6, 23))  # June empties: the months chart ends in May
    s.remove("b2")  # carol leaves the archive's figures
    s.chat(ONE, "Now with a topic", ["alice", "bob"])


def test_statistics_show_the_stores_figures_and_incremental_equals_from_zero(
    seeder, pg_dsn, tmp_path
):
    incremental, full = tmp_path / "incremental", tmp_path / "full"
    seed(seeder)
    publish(pg_dsn, incremental)
    first = stats_pages(incremental)
    one = first[paths.chat_stats_path(ONE)]
    assert "<title>Statistics: Alice &amp; Bob · Chat Channels</title>" in one
    assert "4 messages by 2 people, from 2006-04-03 to 2006-06-06 (UTC)" in one
    assert table(one, "people") == [["Alice (alice)", "2"], ["Bob (bob)", "2"]]
    assert table(one, "busiest") == [["2006-04-03", "3"], ["2006-06-06", "1"]]
    assert 'href="2006-04.html"' in one
    assert table(one, "months") == [["2006-04", "3"], ["2006-05", "0"], ["2006-06", "1"]]
    hours = dict(map(tuple, table(one, "hours")))
    assert (hours["09"], hours["10"], hours["23"], hours["12"]) == ("1", "2", "1", "0")
    assert table(one, "weekdays")[:2] == [["Mon", "3"], ["Tue", "1"]]
    archive = first[paths.STATS_PATH]
    assert "6 messages by 3 people" in archive
    assert table(archive, "people")[0] == ["Alice (alice)", "3"]
    assert ['Carol <img src=x onerror="x"> (carol)', "1"] in table(archive, "people")
    assert "<img" not in archive

    change(seeder)
    publish(pg_dsn, incremental)
    publish(pg_dsn, full)
    assert stats_pages(incremental) == stats_pages(full)
    after = stats_pages(full)
    one = after[paths.chat_stats_path(ONE)]
    assert "<title>Statistics: Now with a topic · Chat Channels</title>" in one
    assert "1 edited, 1 deleted" in one
    assert table(one, "months") == [["2006-04", "3"], ["2006-05", "1"]]
    assert table(one, "changes")[0] == ["2006-04", "1", "1"]
    archive = after[paths.STATS_PATH]
    # Alice's name is the one on her latest message in any chat.
    assert table(archive, "people") == [["Alice Renamed (alice)", "4"], ["Bob (bob)", "2"]]
    assert "carol" not in archive


def test_days_and_hours_are_counted_in_the_sites_time_zone(seeder, pg_dsn, tmp_path):
    seeder.message("late", ONE, "alice", t(4, 30, 23), "late in April, UTC", "Alice")
    tallies = Tallies(sqlite3.connect(tmp_path / "tallies.db"), "Asia/Tokyo")
    with psycopg.connect(pg_dsn) as conn:
        tallies.refresh(conn, [ONE])
    stats = tallies.read(ONE)
    # 23:00 UTC on Sunday 30 April is 08:00 on Monday 1 May in Tokyo.
    assert [d.day for d in stats.days] == ["2006-05-01"]
    assert stats.hours == ((1, 8, 1),)
    assert stats.time_zone == "Asia/Tokyo"
    assert "Messages by hour of day (Asia/Tokyo)" in charts(stats, lambda d: None)["hours"]


def test_a_site_published_before_statistics_gets_them_for_every_chat(seeder, pg_dsn, tmp_path):
    old, full = tmp_path / "old", tmp_path / "full"
    seed(seeder)
    publish(pg_dsn, old)
    # As a site published by the version before statistics: no tallies and no pages.
    with sqlite3.connect(old / DB_FILE) as db:
        for table in TABLES:
            db.execute(f"DROP TABLE {table}")
    for page in stats_pages(old):
        (old / page).unlink()
    seeder.message("b3", TWO, "alice", t(4, 4, 10), "seven", "Alice")  # one chat touched
    publish(pg_dsn, old)
    publish(pg_dsn, full)
    assert stats_pages(old) == stats_pages(full)
    assert set(stats_pages(full)) == {
        paths.STATS_PATH,
        paths.chat_stats_path(ONE),
        paths.chat_stats_path(TWO),
    }
