"""The search page in real headless Chromium: each hit shows its chat's title, the matched
words marked, the messages before and after it, and a link to it in its month page; facets
link to narrower searches with exactly their counts; results are paged. Screenshots of the
page (desktop and phone, light and dark) go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import UTC, datetime, timedelta

import lxml.html
import pytest

from chatchannels.publishers import paths
from chatchannels.publishers.publishing import publish
from chatchannels.publishers.serve import make_server
from tests.support.chromium import WIDTHS, dump_dom, screenshot
from tests.support.open_site import OPEN_SITE
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

GROUP = "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.skype"
DIALOG = "#alice/$bob;a7ab1234"
TITLES = {GROUP: "Release planning", DIALOG: "Alice Liddell & Bob Builder"}
START = datetime(2006, 5, 1, 9, tzinfo=UTC)


def seed(seeder: StoreSeeder) -> dict[str, tuple[str, datetime, str]]:
    """id -> (chat, posted, body) of every message seeded."""
    seeder.chat(GROUP, "Release planning", ["alice", "bob", "carol"])
    seeder.user("alice", "Alice Liddell")
    seeder.user("bob", "Bob Builder")
    people = [("alice", "Alice Liddell"), ("bob", "Bob Builder"), ("carol", "Carol")]
    seeded = {}
    for n in range(24):
        handle, name = people[n % 3]
        body = (
            f"build {n} is at https://ci.example.com/job/{n}?tab=log"
            if n % 2
            else f"looks fine, shipping step {n} next"
        )
        posted = START + timedelta(minutes=7 * n)
        seeder.message(f"g{n:02d}", GROUP, handle, posted, body, name)
        seeded[f"g{n:02d}"] = (GROUP, posted, body)
    for n, body in enumerate(
        ["morning!", "the mirror is www.example.org/x now", "thanks, see you at lunch"]
    ):
        posted = START + timedelta(days=1, minutes=n)
        handle, name = people[n % 2]
        seeder.message(f"d{n}", DIALOG, handle, posted, body, name)
        seeded[f"d{n}"] = (DIALOG, posted, body)
    return seeded


@pytest.fixture
def site(pg_dsn, tmp_path):
    seeder = StoreSeeder(pg_dsn)
    try:
        seeded = seed(seeder)
    finally:
        seeder.close()
    publish(pg_dsn, tmp_path / "site", once=True)
    server = make_server(tmp_path / "site", "127.0.0.1", 0, access=OPEN_SITE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seeded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def text(element) -> str:
    return " ".join(element.text_content().split())


def test_search_pages_show_context_and_facets(site, tmp_path):
    base, seeded = site
    by_link = {
        paths.message_link(chat, paths.month_of(posted), id): id
        for id, (chat, posted, _) in seeded.items()
    }
    timeline = {
        chat: sorted((p, id) for id, (c, p, _) in seeded.items() if c == chat) for chat in TITLES
    }
    page = lxml.html.fromstring(dump_dom(f"{base}/search?q=example", tmp_path / "chromium"))
    assert "example" in page.xpath("//input[@name='q']/@value")
    assert page.xpath("//details[@class='syntax']//code"), "no syntax help next to the box"
    assert text(page.xpath("//p[@class='total']")[0]).startswith("13 messages match; 1–13")

    hits = page.xpath("//ol[@class='hits']/li[@class='hit']")
    assert len(hits) == 13
    for hit in hits:
        [link] = hit.xpath("./div[@class='match']/a/@href")
        id = by_link[link]
        chat = seeded[id][0]
        assert text(hit.xpath(".//a[@class='chat']")[0]) == TITLES[chat]
        marked = [m.text_content().lower() for m in hit.xpath(".//p[@class='snippet']/mark")]
        assert marked and set(marked) == {"example"}, marked
        ids = [i for _, i in timeline[chat]]
        at = ids.index(id)
        for where, neighbour in (("before", at - 1), ("after", at + 1)):
            shown = hit.xpath(f"./p[@class='context {where}']")
            if 0 <= neighbour < len(ids):
                assert text(shown[0].xpath("./span[@class='text']")[0]) == seeded[ids[neighbour]][2]
                assert by_link[shown[0].xpath("./a/@href")[0]] == ids[neighbour]
            else:
                assert not shown, (id, where)

    # The link opens the message in its month page, where `:target` marks it.
    month_page, anchor = hits[0].xpath("./div[@class='match']/a/@href")[0].split("#")
    assert f'id="{anchor}"' in fetch(f"{base}/{month_page}")
    assert ":target" in fetch(f"{base}/style.css")

    facets = {
        section.get("class").split()[-1].removeprefix("facet-"): [
            (text(li.xpath("./a")[0]), int(li.xpath("./span[@class='count']")[0].text), li)
            for li in section.xpath(".//li")
        ]
        for section in page.xpath("//aside[@class='facets']/section")
    }
    assert [(label, n) for label, n, _ in facets["chat"]] == [
        ("Release planning", 12),
        ("Alice Liddell & Bob Builder", 1),
    ]
    assert sorted((label, n) for label, n, _ in facets["author"]) == [
        ("Alice Liddell", 4),
        ("Bob Builder", 5),
        ("Carol", 4),
    ]
    # Each facet's link narrows the search to exactly its count.
    for entries in facets.values():
        for _, count, li in entries:
            href = li.xpath("./a/@href")[0]
            assert href.startswith("search?")
            answer = json.loads(fetch(f"{base}/search.json?{href.split('?', 1)[1]}"))
            assert answer["total"] == count, href


def test_results_are_paged(site, tmp_path):
    base, _ = site
    url = f"{base}/search?q=build+OR+shipping&limit=10&sort=time"
    first = lxml.html.fromstring(dump_dom(url, tmp_path / "chromium"))
    assert len(first.xpath("//li[@class='hit']")) == 10
    [next_link] = first.xpath("//nav[@class='pages']/a[@rel='next']/@href")
    assert not first.xpath("//nav[@class='pages']/a[@rel='prev']")
    second = lxml.html.fromstring(fetch(f"{base}/{next_link}"))
    assert second.xpath("//ol[@class='hits']/@start") == ["11"]
    assert second.xpath("//nav[@class='pages']/a[@rel='prev']")
    every = json.loads(fetch(f"{base}/search.json?q=build+OR+shipping&limit=200&sort=time"))
    pages = [
        json.loads(fetch(f"{base}/search.json?q=build+OR+shipping&limit=10&sort=time&offset={o}"))
        for o in (0, 10, 20)
    ]
    assert [h["id"] for p in pages for h in p["hits"]] == [h["id"] for h in every["hits"]]
    assert [(p["offset"], p["limit"], p["total"]) for p in pages] == [
        (0, 10, 24),
        (10, 10, 24),
        (20, 10, 24),
    ]


def test_screenshots_of_a_search_page(site, tmp_path):
    base, _ = site
    for kind, (width, height) in WIDTHS.items():
        for theme in ("light", "dark"):
            shot = screenshot(
                f"{base}/search?q=example",
                tmp_path / f"{kind}-{theme}",
                "search",
                width,
                height,
                theme,
            )
            assert shot.read_bytes().startswith(b"\x89PNG")
