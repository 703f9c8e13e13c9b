"""A month page as Chromium builds it: runs of one person's messages under one header, day
breaks in the organisation's time zone, system lines, quotes with who and when, right-to-left
text, thumbnails; and screenshots of the index and the month, at desktop and phone widths,
light and dark, written to test-artifacts/screenshots/ for people to look at.

The store is real PostgreSQL and the site is published by `publish`, as in production; the
checks read the DOM Chromium dumped (what the parser made of the page), not our HTML text.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from PIL import Image, ImageStat

from chatchannels.publishers import paths
from chatchannels.publishers.publishing import publish
from tests.support.chromium import SCREENSHOTS, WIDTHS, dump_dom, screenshot
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

GROUP = "19:design0review@thread.skype"
DIALOG = "#alice/$bob;a7ab1234"
ZONE = "Europe/Tallinn"  # UTC+3 in May
PICTURE_DOCID = "0-weu-d1-" + "ab" * 16
MISSING_DOCID = "0-weu-d2-" + "cd" * 16


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2006, 5, day, hour, minute, tzinfo=UTC)


def picture_bytes() -> bytes:
    image = Image.new("RGB", (640, 400), (40, 110, 200))
    for x in range(0, 640, 80):
        image.paste((250, 200, 40), (x, 0, x + 40, 400))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def seed(s: StoreSeeder, media_dir: Path) -> None:
    for handle, name in [
        ("alice", "Alice Liddell"),
        ("bob", "Bob Builder"),
        ("dana", "דנה"),
        ("cecil", "Cecil"),
    ]:
        s.user(handle, name)
    s.chat(GROUP, "Design review ✏️", ["alice", "bob", "cecil", "dana"])
    s.chat(DIALOG, "", ["alice", "bob"])
    s.message("d1", DIALOG, "alice", at(1, 8), "just us two", "Alice Liddell")
    s.message("p1", GROUP, "bob", datetime(2006, 4, 28, 10, tzinfo=UTC), "April", "Bob Builder")
    s.message("n1", GROUP, "bob", datetime(2006, 6, 2, 10, tzinfo=UTC), "June", "Bob Builder")
    alice, bob, dana = "Alice Liddell", "Bob Builder", "דנה"
    # 2 May, in Tallinn 12:00-12:30.
    s.message(
        "a1",
        GROUP,
        "alice",
        at(2, 9),
        'Morning! <ss type="smile">:)</ss> Agenda: '
        '<a href="https://example.org/agenda">https://example.org/agenda</a>',
        alice,
        hosts=("alice-pc", "bob-laptop"),
    )
    s.message("a2", GROUP, "alice", at(2, 9, 1), "<b>Bold</b> plan, <i>italic</i> notes", alice)
    s.message(
        "a3",
        GROUP,
        "alice",
        at(2, 9, 2),
        "<addmember><eventtime>1</eventtime><initiator>8:alice</initiator>"
        "<target>8:dana</target></addmember>",
        alice,
        type="ADDEDMEMBERS",
    )
    s.message(
        "a4",
        GROUP,
        "bob",
        at(2, 9, 3),
        f'<quote author="alice" authorname="{alice}" timestamp="{int(at(2, 9).timestamp())}">'
        f"<legacyquote>[12:00] {alice}: </legacyquote>Morning!"
        "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>"
        'Morning to you, <at id="8:alice">Alice</at>',
        bob,
    )
    s.message(
        "a5",
        GROUP,
        "bob",
        at(2, 9, 4),
        'waves from <flag country="ee" alt="EE">ee</flag>',
        bob,
        type="EMOTED",
    )
    s.message("a6", GROUP, "dana", at(2, 9, 10), "שלום לכולם, the build is green", dana)
    s.message("a7", GROUP, "dana", at(2, 9, 11), "مرحبا بالجميع", dana)
    s.message(
        "a8",
        GROUP,
        "bob",
        at(2, 9, 30),
        '<partlist type="ended" alt="" callId="9"><part identity="8:bob"><name>Bob</name>'
        '<duration>125</duration></part><part identity="8:alice"><name>Alice</name>'
        "<duration>120</duration></part></partlist>",
        bob,
        type="CALL",
    )
    # 22:30 UTC on 2 May is 01:30 on 3 May in Tallinn: it opens the next day.
    s.message("b1", GROUP, "alice", at(2, 22, 30), "Late night thought", alice)
    s.message("b2", GROUP, "bob", at(3, 6), "Design review ✏️", bob, type="SETTOPIC")
    data = picture_bytes()
    sha = hashlib.sha256(data).hexdigest()
    (media_dir / sha[:2]).mkdir(parents=True)
    (media_dir / sha[:2] / sha).write_bytes(data)
    s.media_file(PICTURE_DOCID, sha, "whiteboard.png", len(data))
    s.media_file(MISSING_DOCID, None, "specs.pdf", 48_213)
    s.message(
        "b3",
        GROUP,
        "bob",
        at(3, 6, 1),
        f'<URIObject type="Picture.1" doc_id="{PICTURE_DOCID}">'
        f'<OriginalName v="whiteboard.png"/><FileSize v="{len(data)}"/></URIObject>',
        bob,
        type="MEDIA",
        media=(PICTURE_DOCID,),
    )
    s.message(
        "b4",
        GROUP,
        "bob",
        at(3, 6, 2),
        f'<URIObject type="File.1" doc_id="{MISSING_DOCID}">'
        '<OriginalName v="specs.pdf"/><FileSize v="48213"/></URIObject>',
        bob,
        type="MEDIA",
        media=(MISSING_DOCID,),
    )
    s.message("b5", GROUP, "alice", at(3, 6, 5), "first draft", alice)
    s.edit("b5", "second draft", "alice", at(3, 6, 6))
    s.message("b6", GROUP, "alice", at(3, 6, 7), "oops, wrong chat", alice)
    s.delete("b6", "alice", at(3, 6, 8))
    s.message("b7", GROUP, "cecil", at(3, 7), "", "Cecil", type="LEFT")
    # 10 May: a kind this archive does not know.
    s.message("c1", GROUP, "alice", at(10, 12), "<x>kept</x> as it was", alice, type="OTHER:x-1")
    for n in range(12):  # enough to make the page longer than a phone screen
        s.message(
            f"c{n + 2}",
            GROUP,
            ("alice", "bob")[n % 2],
            at(10, 12, 10 + 3 * n),
            f"Point {n + 1}: " + "a longer line that wraps on a phone " * (n % 3 + 1),
            (alice, bob)[n % 2],
        )


def items(day) -> list[tuple[str, list[str]]]:
    """A day's runs and system lines, in order: ('run by <name>', ids) or ('system', [id])."""
    found = []
    for child in day:
        if child.tag == "div" and "run" in child.classes:
            author = child.xpath("string(.//span[@class='author'])")
            found.append((f"run by {author}", [a.get("id") for a in child.iter("article")]))
        elif child.tag == "article" and "system" in child.classes:
            found.append(("system", [child.get("id")]))
    return found


def article(dom, message_id: str):
    [found] = dom.xpath(f"//article[@id='{paths.message_anchor(message_id)}']")
    return found


@pytest.fixture
def site(pg_dsn, tmp_path) -> Path:
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    seeder = StoreSeeder(pg_dsn)
    try:
        seed(seeder, media_dir)
    finally:
        seeder.close()
    site = tmp_path / "site"
    publish(pg_dsn, site, once=True, media_dir=media_dir, time_zone=ZONE)
    return site


def test_a_month_page_in_chromium_and_screenshots(site, tmp_path):
    month = site / paths.month_page_path(GROUP, "2006-05")
    index = site / "index.html"
    shots = [
        (page, name, width, height, scheme)
        for name, page in (("index", index), ("month", month))
        for width, height in WIDTHS.values()
        for scheme in ("light", "dark")
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        dom_text = pool.submit(dump_dom, month, tmp_path / "chromium-dom")
        taken = list(
            pool.map(
                lambda n_shot: screenshot(
                    n_shot[1][0], tmp_path / f"chromium-{n_shot[0]}", *n_shot[1][1:]
                ),
                enumerate(shots),
            )
        )
        dom = lxml.html.fromstring(dom_text.result())

    assert dom.get("lang") == "en" and not dom.xpath("//script")
    assert dom.xpath("string(//h1)").startswith("Design review ✏️")
    assert "times in Europe/Tallinn" in dom.xpath("string(//p[@class='chatname'])")
    [top_nav, _] = dom.xpath("//nav[@class='months']")
    assert top_nav.xpath("string(.//a[@rel='prev']/@href)") == "2006-04.html"
    assert top_nav.xpath("string(.//a[@rel='next']/@href)") == "2006-06.html"
    assert dom.xpath("//nav[@class='top']//form[@role='search']/@action") == ["../../search"]

    # Day breaks, in Tallinn's time: 22:30 UTC on 2 May opens 3 May.
    days = dom.xpath("//section[@class='day']")
    assert [d.xpath("string(h2/@id)") for d in days] == [
        "d-2006-05-02",
        "d-2006-05-03",
        "d-2006-05-10",
    ]
    assert days[0].xpath("string(h2)") == "Tuesday, 2 May 2006"
    # Runs of one person within minutes under one header; system lines on their own.
    anchor = paths.message_anchor
    assert items(days[0]) == [
        ("run by Alice Liddell", [anchor("a1"), anchor("a2")]),
        ("system", [anchor("a3")]),
        ("run by Bob Builder", [anchor("a4"), anchor("a5")]),
        ("run by דנה", [anchor("a6"), anchor("a7")]),
        ("system", [anchor("a8")]),
    ]
    assert items(days[1])[:3] == [
        ("run by Alice Liddell", [anchor("b1")]),
        ("system", [anchor("b2")]),
        ("run by Bob Builder", [anchor("b3"), anchor("b4")]),
    ]
    assert ("system", [anchor("b7")]) in items(days[1])

    def text(message_id: str) -> str:
        return " ".join(article(dom, message_id).xpath("string(div[@class='body'])").split())

    # System lines name people as the chat does.
    assert text("a3") == "Alice Liddell added דנה"
    assert text("a8") == "Call ended, 2:05 (Bob, Alice)"
    assert text("b2") == "Bob Builder set the topic to “Design review ✏️”"
    assert text("b7") == "Cecil left"
    # Local time shown, the exact UTC time in the title.
    [first] = days[0].xpath("div[@class='run'][1]/p[@class='byline']/a[@class='permalink']")
    assert first.get("href") == "#" + anchor("a1")
    assert (first[0].text, first[0].get("title")) == ("12:00", "2006-05-02 09:00:00 UTC")
    [stamp] = article(dom, "a2").xpath("a[@class='permalink']/time")
    assert (stamp.text, stamp.get("title")) == ("12:01:00", "2006-05-02 09:01:00 UTC")
    # A quote says who and when; a mention, an emoticon and a flag are what they are.
    [cite] = article(dom, "a4").xpath(".//blockquote[@class='quote']/cite")
    assert cite.xpath("string(bdi)") == "Alice Liddell"
    assert cite.xpath("string(time/@datetime)") == "2006-05-02T09:00:00Z"
    assert cite.xpath("string(time)") == "2006-05-02 12:00"
    assert article(dom, "a4").xpath("string(.//span[@class='mention'])") == "@Alice"
    assert article(dom, "a1").xpath("string(.//span[@title='smile'])") == "\U0001f642"
    assert "\U0001f1ea\U0001f1ea" in text("a5") and "emote" in article(dom, "a5").classes
    # Every message's text takes its own direction: right-to-left for Hebrew and Arabic.
    for message_id in ("a1", "a6", "a7", "b1"):
        assert article(dom, message_id).xpath("string(div[@class='body']/@dir)") == "auto"
    # Files: the picture as a server-made thumbnail that exists, the missing file marked.
    [thumb] = article(dom, "b3").xpath(".//img")
    assert (month.parent / thumb.get("src")).is_file() and thumb.get("alt") == "whiteboard.png"
    assert "specs.pdf (PDF file, 47.1 KB) (file not archived)" in text("b4")
    assert "second draft" in text("b5")
    assert article(dom, "b5").xpath("string(.//details[@class='history']/summary)") == (
        "History (2 versions)"
    )
    assert "Message deleted by alice" in article(dom, "b6").text_content()
    assert "does not know" in article(dom, "c1").text_content()
    # Provenance is folded away, one <details> a message, never open.
    [seen] = article(dom, "a1").xpath("details[@class='provenance']")
    assert seen.get("open") is None and "bob-laptop" in seen.text_content()

    # The screenshots: written, and the dark ones darker than the light ones.
    def brightness(png: Path) -> float:
        with Image.open(png) as image:
            return ImageStat.Stat(image.convert("L")).mean[0]

    assert len(taken) == 8 and all(p.stat().st_size > 5_000 for p in taken)
    for name in ("index", "month"):
        for width, _ in WIDTHS.values():
            light = brightness(SCREENSHOTS / f"{name}-{width}-light.png")
            dark = brightness(SCREENSHOTS / f"{name}-{width}-dark.png")
            assert light > 200 and dark < 80, (name, width, light, dark)


def test_the_index_titles_chats_by_their_people(site):
    dom = lxml.html.fromstring((site / "index.html").read_text())
    rows = {
        row.xpath("string(td[1]/a)"): row.xpath("string(td[1]/small)")
        for row in dom.xpath("//table[@class='chats']/tbody/tr")
    }
    assert rows == {"Alice Liddell & Bob Builder": DIALOG, "Design review ✏️": GROUP}
