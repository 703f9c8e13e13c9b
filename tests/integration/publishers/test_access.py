"""What each reader may see, against a real PostgreSQL and a published site: the catalog the
Gate reads, how soon a change to the handle map or a chat's members takes effect, and the
per-reader index, feed of all chats and statistics."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers import paths
from chatchannels.publishers.access.catalog import Catalog
from chatchannels.publishers.access.connection import KeptConnection
from chatchannels.publishers.access.gate import Gate
from chatchannels.publishers.access.reader_pages import ReaderPages
from chatchannels.publishers.access.readers import ANONYMOUS, Reader
from chatchannels.publishers.access.rules import parse_permissions
from chatchannels.publishers.changes import run_publishers
from chatchannels.publishers.site import SitePublisher
from chatchannels.stack import processes
from chatchannels.store_contract import schema_dsn
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

MINE = "dialog:ann.skype;bob.skype"
THEIRS = "19:secret@thread.skype"
# No row: its id names its people (ann and carol), who are therefore its members.
NAMED = "#ann.skype/$carol.skype;0101"
NEWS = "19:news@thread.skype"
SHA_THEIRS = "cd" + "1" * 62
SHA_MINE = "ab" + "0" * 62
PERMISSIONS = parse_permissions(
    {"rules": [{"allow": {"members": True}}, {"titles": "Company news", "allow": True}]}
)
ANN = Reader("ann", via="session")
CAROL = Reader("carol", via="session")
ADMIN = Reader("root", admin=True, via="session")
# The table WEB's migration 0009_readers creates (until it is merged, the test makes it).
READER_HANDLES = (
    "CREATE TABLE IF NOT EXISTS reader_handles (handle text PRIMARY KEY, reader text NOT NULL)"
)


def t(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def seed(s: StoreSeeder, chats: frozenset[str] | None = None) -> None:
    """The test's archive; with `chats`, only those chats' rows."""

    def wanted(chat: str) -> bool:
        return chats is None or chat in chats

    s.user("ann.skype", "Ann")
    s.user("carol.skype", "Carol")
    for chat, topic, members in (
        (MINE, "", ["ann.skype", "bob.skype"]),
        (THEIRS, "Reorganisation plans", ["carol.skype", "dave.skype"]),
        (NEWS, "Company news", ["dave.skype"]),
    ):
        if wanted(chat):
            s.chat(chat, topic, members)
    s.media_file("d-mine", SHA_MINE, "a.png", 10)
    s.media_file("d-theirs", SHA_THEIRS, "b.png", 10)
    for id_, chat, author, day, body, name, media in (
        ("m1", MINE, "ann.skype", 1, "hello bob", "Ann", []),
        ("m2", MINE, "bob.skype", 2, "look", "Bob", ["d-mine"]),
        ("s1", THEIRS, "carol.skype", 3, "layoffs on friday", "Carol", []),
        ("s2", THEIRS, "dave.skype", 4, "the plan", "Dave", ["d-theirs"]),
        ("n1", NAMED, "carol.skype", 5, "ann, a word", "Carol", []),
        ("p1", NEWS, "dave.skype", 6, "canteen closed", "Dave", []),
    ):
        if wanted(chat):
            s.message(id_, chat, author, t(day), body, name, media=media)


@pytest.fixture
def store(pg_dsn):
    s = StoreSeeder(pg_dsn)
    s.conn.execute(READER_HANDLES)
    s.conn.execute(
        "INSERT INTO reader_handles VALUES ('ann.skype', 'ann'), ('Carol.Skype', 'carol')"
    )
    seed(s)
    yield s
    s.close()


@pytest.fixture
def gate(store, pg_dsn):
    catalog = Catalog.of_dsn(pg_dsn)
    yield Gate(PERMISSIONS, catalog)
    catalog.close()


def test_each_reader_sees_the_chats_the_rules_give_them(gate):
    assert gate.visible_chats(ANN) == {MINE, NAMED, NEWS}
    # The handle map is matched whatever the case of the handle.
    assert gate.visible_chats(CAROL) == {THEIRS, NAMED, NEWS}
    assert gate.visible_chats(Reader("bob")) == {NEWS}  # bob.skype is mapped to no one
    assert gate.visible_chats(ANONYMOUS) == {NEWS}
    assert gate.visible_chats(ADMIN) is None
    theirs = paths.encode_chat_name(THEIRS)
    for path in (f"chats/{theirs}/2026-12.html", f"feeds/{theirs}/2026-12.atom"):
        assert gate.can_fetch(CAROL, path) and not gate.can_fetch(ANN, path)
    for sha, ann in ((SHA_MINE, True), (SHA_THEIRS, False)):
        assert gate.can_fetch(ANN, f"media/{sha[:2]}/{sha}") == ann
        assert gate.can_fetch(ANN, f"thumbs/{sha[:2]}/{sha}.jpg") == ann
        assert gate.can_fetch(CAROL, f"media/{sha[:2]}/{sha}") != ann


def wait_for(what: str, check, within_s: float = 2.0) -> None:
    """Until `check()` holds, failing naming `what` after `within_s`."""
    processes.wait_for(what, check, within_s, interval=0.02)


def test_a_change_in_the_store_takes_effect_within_a_second(gate, store, pg_dsn):
    assert not gate.can_read_chat(ANN, THEIRS)
    store.chat(THEIRS, "Reorganisation plans", ["carol.skype", "dave.skype", "ann.skype"])
    wait_for("ann added to the chat's members", lambda: gate.can_read_chat(ANN, THEIRS))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM reader_handles WHERE handle = 'ann.skype'")
    wait_for("ann's handle unmapped", lambda: not gate.can_read_chat(ANN, MINE))
    assert not gate.can_read_chat(ANN, THEIRS) and gate.can_read_chat(ANN, NEWS)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO reader_handles VALUES ('bob.skype', 'ann')")
    wait_for("bob's handle mapped to ann", lambda: gate.can_read_chat(ANN, MINE))


def test_without_the_handle_table_the_members_rule_admits_no_one(store, pg_dsn):
    store.conn.execute("DROP TABLE reader_handles")
    catalog = Catalog.of_dsn(pg_dsn)
    try:
        assert Gate(PERMISSIONS, catalog).visible_chats(ANN) == {NEWS}
    finally:
        catalog.close()


def publish(dsn: str, site: Path) -> None:
    publisher = SitePublisher(site)
    try:
        run_publishers(dsn, [publisher], once=True, batch_size=100)
    finally:
        publisher.close()


@pytest.fixture
def pages(gate, store, pg_dsn, tmp_path):
    site = tmp_path / "site"
    publish(pg_dsn, site)
    conn = KeptConnection.of_dsn(pg_dsn)
    yield ReaderPages(gate, conn, site), site
    conn.close()


def entries(feed: bytes) -> list[str]:
    atom = "{http://www.w3.org/2005/Atom}"
    return [
        e.findtext(f"{atom}id").rsplit("/", 1)[1] for e in ET.fromstring(feed).iter(f"{atom}entry")
    ]


def test_the_site_wide_pages_show_only_the_readers_chats(pages):
    reader_pages, site = pages
    # An administrator's pages are the static files.
    for path in ("index.html", paths.ALL_FEED_PATH, paths.STATS_PATH):
        assert reader_pages.render(ADMIN, path).body == (site / path).read_bytes(), path
    assert reader_pages.render(ADMIN, "").body == (site / "index.html").read_bytes()
    assert reader_pages.render(ANN, paths.ALL_FEED_PATH).content_type == "application/atom+xml"
    assert reader_pages.render(ANN, "chats/x/index.html") is None

    index = reader_pages.index(ANN).decode()
    for shown in ("Ann &amp; bob.skype", "Ann &amp; Carol", "Company news"):
        assert shown in index
    assert "Reorganisation" not in index and "secret" not in index
    assert sorted(entries(reader_pages.all_feed(ANN))) == ["m1", "m2", "n1", "p1"]
    stats = reader_pages.stats(ANN).decode()
    assert "4 messages by 4 people" in stats
    assert "Dave (dave.skype)" in stats and "layoffs" not in stats

    anonymous = reader_pages.index(ANONYMOUS).decode()
    assert "Company news" in anonymous and "Ann &amp;" not in anonymous
    assert entries(reader_pages.all_feed(ANONYMOUS)) == ["p1"]
    assert "1 messages by 1 person" in reader_pages.stats(ANONYMOUS).decode()
    nobody = parse_permissions({})
    closed = ReaderPages(Gate(nobody, reader_pages.gate.catalog), reader_pages.conn, site)
    assert entries(closed.all_feed(ANN)) == []
    assert "Ann" not in closed.index(ANN).decode().split("<tbody>")[1]


def test_a_readers_pages_are_those_of_a_site_of_their_chats_alone(pages, gate, pg_dsn, tmp_path):
    """The same archive with only ann's chats, in a schema of its own, published: its index,
    feed of all chats and statistics are, byte for byte, what ann is shown."""
    reader_pages, _ = pages
    migrate(pg_dsn, "only_ann")
    alone = StoreSeeder(schema_dsn(pg_dsn, "only_ann"))
    try:
        seed(alone, gate.visible_chats(ANN))
    finally:
        alone.close()
    site = tmp_path / "only-ann"
    publish(schema_dsn(pg_dsn, "only_ann"), site)
    for path in ("index.html", paths.ALL_FEED_PATH, paths.STATS_PATH):
        assert reader_pages.render(ANN, path).body == (site / path).read_bytes(), path


def test_a_reader_sees_the_pages_change_when_the_store_does(pages, store):
    reader_pages, _ = pages
    assert "m9" not in entries(reader_pages.all_feed(ANN))
    store.message("m9", MINE, "ann.skype", t(9), "later", "Ann")
    wait_for("the new message in ann's feed", lambda: "m9" in entries(reader_pages.all_feed(ANN)))


def test_a_site_not_yet_published_has_empty_statistics(gate, pg_dsn, tmp_path: Path):
    conn = KeptConnection.of_dsn(pg_dsn)
    try:
        stats = ReaderPages(gate, conn, tmp_path / "nothing").stats(ANN).decode()
    finally:
        conn.close()
    assert "Statistics" in stats
