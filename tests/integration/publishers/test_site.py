"""The static site publisher against a real PostgreSQL: incremental equals full, and a
change re-renders only what it touches."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import psycopg
import pytest

from chatchannels.processors.replay.site import rebuild_site
from chatchannels.publishers import paths
from chatchannels.publishers.changes import catch_up, run_publishers
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.publishing import publish as run_publish
from chatchannels.publishers.site import STATE_FILE, SitePublisher, SiteStateError
from chatchannels.replay_wiring import PUBLISHED_SITE
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

LEGACY = "#alice/$bob;a7ab1234"
OTHER = "#carol/$dave;ff00"
NO_ROW = "#frank/$gina;beef"  # messages only: its title comes from the people its id names


def t(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2006, month, day, hour, minute, tzinfo=UTC)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the site but the placements database (SQLite's bytes are its own)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != DB_FILE
    }


def publish(dsn: str, site: Path) -> int:
    publisher = SitePublisher(site)
    try:
        [result] = run_publishers(dsn, [publisher], once=True, batch_size=3)
    finally:
        publisher.close()
    return result.changes


@pytest.fixture
def seeder(pg_dsn):
    seeder = StoreSeeder(pg_dsn)
    yield seeder
    seeder.close()


def seed_first_state(s: StoreSeeder) -> None:
    s.user("alice", "Alice A.")
    s.user("bob", "Bob <b>B</b>")
    s.chat(LEGACY, "Planning & <stuff>", ["alice", "bob"])
    s.message("m01", LEGACY, "alice", t(4, 3), "hello <b>bob</b> &amp; all", "Alice A.")
    s.message(
        "m02",
        LEGACY,
        "bob",
        t(4, 3, 13),
        '<ss type="smile">:)</ss> hi',
        "Bob",
        hosts=("bob-pc", "alice-pc"),
    )
    s.message("m03", LEGACY, "alice", t(5, 1), "May message", "Alice A.")
    # Typed on a desktop: stored as Skype's XML would hold it, and shown as typed.
    s.message("m04", OTHER, "carol", t(5, 2), "&lt;script&gt;alert(1)&lt;/script&gt;", "Carol")
    s.message("m09", NO_ROW, "frank", t(4, 9), "no row for this chat", "Frank")


def seed_more(s: StoreSeeder) -> None:
    s.edit("m01", "hello <i>bob</i>, edited", "alice", t(4, 4))
    s.delete("m02", "bob", t(4, 5))
    s.message("m05", LEGACY, "bob", t(7, 1), "July: a new month", "Bob")
    s.message("m06", LEGACY, "bob", t(3, 30), "March backfill", "Bob")
    s.message("m07", OTHER, "dave", t(6, 1), "only June message", "Dave")


def seed_even_more(s: StoreSeeder) -> None:
    s.remove("m07")  # June of OTHER disappears: May's and later pages lose their link
    s.message("m08", OTHER, "carol", t(8, 1), "August", "Carol")
    s.chat(LEGACY, "New topic", ["alice", "bob", "erin"])
    s.user("erin", "Erin")
    s.user("alice", "Alice Renamed")
    s.user("gina", "Gina G.")  # names a chat without a row: its pages' title changes
    s.chat("empty chat", "", [])
    s.edit("m03", "May message, edited", "alice", t(5, 9))
    s.move("m05", t(8, 2))  # a re-corrected clock moves July's only message into August


def test_incremental_publishing_equals_publishing_from_zero(seeder, pg_dsn, tmp_path):
    incremental, full = tmp_path / "incremental", tmp_path / "full"
    seed_first_state(seeder)
    assert publish(pg_dsn, incremental) > 0
    seed_more(seeder)
    publish(pg_dsn, incremental)
    seed_even_more(seeder)
    publish(pg_dsn, incremental)

    assert publish(pg_dsn, full) == seeder.seq
    assert snapshot(incremental) == snapshot(full)
    assert (full / paths.month_page_path(OTHER, "2006-06")).exists() is False
    may = (full / paths.month_page_path(OTHER, "2006-05")).read_text()
    assert 'href="2006-08.html"' in may and "2006-06" not in may
    assert not (full / paths.month_page_path(LEGACY, "2006-07")).exists()
    assert 'id="m-m05"' in (full / paths.month_page_path(LEGACY, "2006-08")).read_text()
    # Every page of a chat carries its title, and a closed month follows a title change.
    april = (full / paths.month_page_path(LEGACY, "2006-04")).read_text()
    assert "<title>New topic · April 2006 · Chat Channels</title>" in april
    no_row = (full / paths.month_page_path(NO_ROW, "2006-04")).read_text()
    assert "<h1><bdi>frank &amp; Gina G.</bdi>" in no_row
    assert "<bdi>frank &amp; Gina G.</bdi>" in (full / "index.html").read_text()
    other = (full / paths.chat_index_path(OTHER)).read_text()
    assert "<title>carol &amp; dave · Chat Channels</title>" in other


def test_publishing_again_with_nothing_new_changes_nothing(seeder, pg_dsn, tmp_path):
    seed_first_state(seeder)
    publish(pg_dsn, tmp_path)
    before = snapshot(tmp_path)
    assert publish(pg_dsn, tmp_path) == 0
    assert snapshot(tmp_path) == before


def test_a_change_rewrites_only_the_pages_it_touches(seeder, pg_dsn, tmp_path):
    seed_first_state(seeder)
    seeder.message("m10", LEGACY, "alice", t(5, 20), "another May message", "Alice A.")
    publish(pg_dsn, tmp_path)
    before = snapshot(tmp_path)
    seeder.edit("m10", "another May message, fixed", "alice", t(5, 21))
    publish(pg_dsn, tmp_path)
    after = snapshot(tmp_path)
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed == {
        paths.month_page_path(LEGACY, "2006-05"),
        paths.archive_feed_path(LEGACY, "2006-05"),
        paths.month_manifest_path(LEGACY, "2006-05"),
        paths.chat_index_path(LEGACY),  # unchanged text is not rewritten, but may differ
        paths.chat_feed_path(LEGACY),
        paths.ALL_FEED_PATH,
        # An edit changes the counts of edited messages: the chat's and the archive's.
        paths.chat_stats_path(LEGACY),
        paths.STATS_PATH,
        STATE_FILE,
    } - {paths.chat_index_path(LEGACY)}


def test_a_catch_up_in_many_batches_renders_each_page_once(seeder, pg_dsn, tmp_path, monkeypatch):
    seeder.user("alice", "Alice A.")
    seeder.chat(LEGACY, "Planning", ["alice"])
    for day in range(1, 13):
        seeder.message(f"a{day:02}", LEGACY, "alice", t(4, day), f"April {day}", "Alice A.")
    rendered = []
    render = SitePublisher._publish_month

    def counting(self, conn, chat, month, months):
        rendered.append((chat.name, month))
        render(self, conn, chat, month, months)

    monkeypatch.setattr(SitePublisher, "_publish_month", counting)
    publisher = SitePublisher(tmp_path)
    try:
        [result] = run_publishers(pg_dsn, [publisher], once=True, batch_size=3)
    finally:
        publisher.close()
    assert result.batches >= 4
    assert rendered == [(LEGACY, "2006-04")]
    assert (tmp_path / paths.month_page_path(LEGACY, "2006-04")).read_text().count('id="m-a') == 12


def test_renders_are_put_off_while_the_store_moves_and_done_once_it_is_quiet(
    seeder, pg_dsn, tmp_path, monkeypatch
):
    now = [100.0]
    rendered = []
    render = SitePublisher._publish_month

    def taking_two_seconds(self, conn, chat, month, months):
        rendered.append(month)
        now[0] += 2.0
        render(self, conn, chat, month, months)

    monkeypatch.setattr(SitePublisher, "_publish_month", taking_two_seconds)
    seeder.user("alice", "Alice A.")
    seeder.chat(LEGACY, "Planning", ["alice"])
    seeder.message("a01", LEGACY, "alice", t(4, 1), "April", "Alice A.")
    may = tmp_path / paths.month_page_path(LEGACY, "2006-05")
    publisher = SitePublisher(tmp_path, clock=lambda: now[0])
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:

            def following():
                return catch_up(conn, publisher, 100, finish=False)

            # The first changes are rendered at once: nothing was rendered lately.
            assert following().due_s is None and rendered == ["2006-04"]
            # More changes within three renders' time of the last: put off until then.
            seeder.message("a02", LEGACY, "alice", t(5, 1), "May", "Alice A.")
            assert following().due_s == pytest.approx(6.0)
            assert rendered == ["2006-04"] and not may.exists()
            # No new change since: the store is quiet, so it is rendered now.
            assert following().due_s is None and may.exists()
            # When due, the put-off render is done even while the store still moves. (May's
            # render took 4 s: April's page was rendered again for its link to May.)
            assert rendered == ["2006-04", "2006-04", "2006-05"]
            seeder.message("a03", LEGACY, "alice", t(5, 2), "May again", "Alice A.")
            assert following().due_s == pytest.approx(12.0)
            now[0] += 12.0
            seeder.message("a04", LEGACY, "alice", t(5, 3), "and again", "Alice A.")
            assert following().due_s is None and rendered[-1] == "2006-05"
            assert may.read_text().count('id="m-a') == 3
            # `finish` (publish --once) never puts anything off.
            seeder.message("a05", LEGACY, "alice", t(5, 4), "once more", "Alice A.")
            assert catch_up(conn, publisher, 100).due_s is None
            assert may.read_text().count('id="m-a') == 4
    finally:
        publisher.close()


def test_pages_show_history_deletions_hosts_and_escape_everything(seeder, pg_dsn, tmp_path):
    seed_first_state(seeder)
    seed_more(seeder)
    publish(pg_dsn, tmp_path)
    april = (tmp_path / paths.month_page_path(LEGACY, "2006-04")).read_text()
    assert 'id="m-m01"' in april and 'href="#m-m01"' in april
    assert (
        '<time datetime="2006-04-03T12:00:00Z" title="2006-04-03 12:00:00 UTC">12:00</time>'
    ) in april
    assert "hello <i>bob</i>, edited" in april and "hello <b>bob</b> &amp; all" in april
    assert "Message deleted by <bdi>bob</bdi>" in april
    # Provenance, folded: each desktop's copy with its local id.
    assert "<li><bdi>bob-pc</bdi>: local id <code><bdi>m02-0</bdi></code>" in april
    assert "<li><bdi>alice-pc</bdi>: local id <code><bdi>m02-1</bdi></code>" in april
    assert 'href="../../style.css"' in april and 'href="../../index.html"' in april
    may = (tmp_path / paths.month_page_path(OTHER, "2006-05")).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in may and "<script>" not in may
    index = (tmp_path / "index.html").read_text()
    assert "Planning &amp; &lt;stuff&gt;" in index
    chat_index = (tmp_path / paths.chat_index_path(LEGACY)).read_text()
    assert "Bob &lt;b&gt;B&lt;/b&gt;" in chat_index
    assert paths.chat_dir(LEGACY) == "chats/(alice)~24bob~3Ba7ab1234"


def test_feeds_parse_page_through_archives_and_move_updated_only_on_edits(seeder, pg_dsn, tmp_path):
    seed_first_state(seeder)
    seed_more(seeder)
    publish(pg_dsn, tmp_path)
    for feed_file in (tmp_path / "feeds").rglob("*.atom"):
        parsed = feedparser.parse(feed_file.read_bytes())
        assert not parsed.bozo, (feed_file, parsed.get("bozo_exception"))

    current = feedparser.parse((tmp_path / paths.chat_feed_path(LEGACY)).read_bytes())
    links = {link["rel"]: link["href"] for link in current.feed.links}
    assert links["prev-archive"] == "(alice)~24bob~3Ba7ab1234/2006-07.atom"
    july_path = tmp_path / paths.archive_feed_path(LEGACY, "2006-07")
    july = feedparser.parse(july_path.read_bytes())
    assert {lk["rel"]: lk["href"] for lk in july.feed.links}["prev-archive"] == "2006-05.atom"
    assert b"<fh:archive/>" in july_path.read_bytes()

    april_path = tmp_path / paths.archive_feed_path(LEGACY, "2006-04")
    april = {e.id: e for e in feedparser.parse(april_path.read_bytes()).entries}
    edited = april["tag:chatchannels.intranet,2006:message/m01"]
    assert edited.updated == "2006-04-04T00:00:00+00:00" or edited.updated.startswith("2006-04-04")
    assert "<i>bob</i>" in edited.content[0].value
    march = feedparser.parse(
        (tmp_path / paths.archive_feed_path(LEGACY, "2006-03")).read_bytes()
    ).entries
    assert march[0].updated.startswith("2006-03-30T12:00:00")

    # A new message in a later month leaves a closed month's archive byte for byte alone.
    before = april_path.read_bytes()
    seeder.message("m20", LEGACY, "alice", t(9, 1), "September", "Alice A.")
    publish(pg_dsn, tmp_path)
    assert april_path.read_bytes() == before


def test_a_replayed_site_keeps_the_media_link_of_the_live_one(seeder, pg_dsn, tmp_path):
    seed_first_state(seeder)
    media, site = tmp_path / "media", tmp_path / "site"
    run_publish(pg_dsn, site, once=True, media_dir=media)
    swap = rebuild_site(pg_dsn, "public", site, "s1", PUBLISHED_SITE)
    assert os.readlink(swap.built / "media") == str(media)
    swap.commit()
    assert (site / "media").is_symlink() and os.readlink(site / "media") == str(media)
    # A live publisher going on in the swapped site finds its link as it left it.
    run_publish(pg_dsn, site, once=True, media_dir=media)
    assert os.readlink(site / "media") == str(media)


def test_a_site_is_in_one_time_zone_and_another_needs_a_rebuild(seeder, pg_dsn, tmp_path):
    seed_first_state(seeder)
    run_publish(pg_dsn, tmp_path, once=True, time_zone="Europe/Tallinn")
    april = tmp_path / paths.month_page_path(LEGACY, "2006-04")
    assert 'title="2006-04-03 12:00:00 UTC">15:00</time>' in april.read_text()
    with pytest.raises(SiteStateError, match=r"'Europe/Tallinn'.*'UTC'.*--rebuild"):
        run_publish(pg_dsn, tmp_path, once=True)
    run_publish(pg_dsn, tmp_path, once=True, rebuild=True)
    assert 'title="2006-04-03 12:00:00 UTC">12:00</time>' in april.read_text()
    # A replay rebuilds the site in the live site's zone, so its swap changes no time.
    run_publish(pg_dsn, tmp_path, once=True, rebuild=True, time_zone="Asia/Tokyo")
    swap = rebuild_site(pg_dsn, "public", tmp_path, "s2", PUBLISHED_SITE)
    built = (swap.built / paths.month_page_path(LEGACY, "2006-04")).read_text()
    swap.commit()
    assert 'title="2006-04-03 12:00:00 UTC">21:00</time>' in built
