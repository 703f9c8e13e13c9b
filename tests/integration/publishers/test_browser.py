"""Hostile text in every field the site shows, published, then loaded in headless Chromium:
no payload runs, and nothing is written outside the site folder.

Each payload, if it ever ran, would set the page's title to `FIRED-<n>`. The marker is built
at run time (`['FIRED',n].join('-')`), so the escaped source of a payload never contains it:
finding it in Chromium's dumped DOM means code ran. Each dump must also hold the page's own
content, so a page that failed to load cannot pass.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import feedparser
import pytest

from chatchannels.publishers import paths
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.publishing import INDEX_DIR, index_dir, publish
from chatchannels.publishers.search_index import WhooshBackend
from tests.support.chromium import dump_dom
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

TEMPLATES = [
    "<script>{js}</script>",
    '<img src=x onerror="{js}">',
    '<svg onload="{js}">',
    '<a href="javascript:{js}">click</a>',
    '<a href="JaVaScRiPt:{js}">x</a>',
    '<a href=" java&#x09;script:{js}">x</a>',
    '<iframe src="javascript:{js}"></iframe>',
    '<body onload="{js}">',
    '"><script>{js}</script>',
    "'><img src=x onerror={js}>",
    "</title><script>{js}</script>",
    "</textarea><script>{js}</script>",
    '<style>@import "x";</style><img src=x onerror="{js}">',
    '<details open ontoggle="{js}">',
    '<math><mtext><table><mglyph><style><img src=x onerror="{js}">',
    '<noscript><p title="</noscript><img src=x onerror={js}>">',
    "&lt;img src=x onerror={js}&gt;",
    "&#60;script&#62;{js}&#60;/script&#62;",
    '<ss type="x&quot; onmouseover=&quot;{js}">:)</ss>',
    '<quote authorname="&quot;&gt;&lt;img src=x onerror={js}&gt;">q</quote>',
    '<a href="https://ok.example/&quot; onclick=&quot;{js}">ok</a>',
    '<object data="javascript:{js}"></object>',
    '<embed src="javascript:{js}">',
    '<input autofocus onfocus="{js}">',
    '<video><source onerror="{js}"></video>',
    '<!--<img src="--><img src=x onerror={js}//">',
    "<![CDATA[<img src=x onerror={js}>]]>",
    '<a href="data:text/html,<script>{js}</script>">d</a>',
    '<meta http-equiv="refresh" content="0;url=javascript:{js}">',
    '<base href="javascript:{js}//">',
    '<form action="javascript:{js}"><button>go</button></form>',
    '<marquee onstart="{js}">x</marquee>',
    '<b onmouseover="{js}">bold</b>',
    '<at id="x" onclick="{js}">bob</at>',
    '<URIObject alt="<img src=x onerror={js}>">f</URIObject>',
    '<flag country="x" alt="&lt;script&gt;{js}&lt;/script&gt;">x</flag>',
    "\u202e<script>{js}</script>\u202c",
    "../../../<script>{js}</script>/index.html",
    "<scr<script>ipt>{js}</scr</script>ipt>",
    "javascript:{js}",
    "{{{{7*7}}}}<script>{js}</script>",
    "<svg><script>{js}</script></svg>",
    "<xmp><img src=x onerror={js}></xmp>",
    '<a href="&#106;avascript:{js}">e</a>',
    "<img src=x onerror=&#x27;{js}&#x27;>",
]
VARIANTS = [
    "{p}",
    "<b>{p}</b>",
    "#..%2f..%2f$x;{p}",
    "\x00\u202e{p}\u2066",
    "<I>{p}",
]


def hostile_corpus() -> list[str]:
    corpus = []
    for variant in VARIANTS:
        for template in TEMPLATES:
            js = f"document.title=['FIRED',{len(corpus)}].join('-')"
            # PostgreSQL text cannot hold NUL; the store never has it, so neither does this.
            corpus.append(variant.format(p=template.format(js=js)).replace("\x00", "\x01"))
    return corpus


CORPUS = hostile_corpus()
BODIES_CHAT = "hostile bodies"
CHUNK = 45


def test_the_corpus_is_large_and_distinct():
    assert len(CORPUS) >= 200 and len(set(CORPUS)) == len(CORPUS)


def seed(seeder: StoreSeeder) -> list[str]:
    start = datetime(2006, 5, 1, tzinfo=UTC)
    handles = [f"u{i}" for i in range(len(CORPUS))]
    for handle, name in zip(handles, CORPUS, strict=True):
        seeder.user(handle, name)
    seeder.chat(BODIES_CHAT, CORPUS[0], handles)
    for i, text in enumerate(CORPUS):
        when = start + timedelta(minutes=i)
        # The author handle and the host are hostile too: they show as a title and a list.
        seeder.message(
            f"m{i}", BODIES_CHAT, text, when, text, author_name=text, hosts=(text[:200],)
        )
        if i % 3 == 0:
            other = CORPUS[(i + 7) % len(CORPUS)]
            seeder.edit(f"m{i}", other, other, when + timedelta(seconds=30))
        if i % 7 == 0:
            seeder.delete(f"m{i}", CORPUS[(i + 11) % len(CORPUS)], when + timedelta(seconds=40))
    chats = [BODIES_CHAT]
    for c in range(0, len(CORPUS), CHUNK):
        name = "".join(CORPUS[c : c + CHUNK])
        topic = "".join(CORPUS[(c + 5) % len(CORPUS) :][:CHUNK])
        seeder.chat(name, topic, handles[c : c + CHUNK])
        seeder.message(f"c{c}", name, handles[c], start, CORPUS[c], author_name=CORPUS[c + 1])
        chats.append(name)
    return chats


def test_no_payload_runs_in_a_real_browser(pg_dsn, tmp_path):
    seeder = StoreSeeder(pg_dsn)
    try:
        chats = seed(seeder)
    finally:
        seeder.close()
    site = tmp_path / "site"
    publish(pg_dsn, site, once=True)

    # Nothing outside the site; inside it, every file where the paths module puts files.
    assert [p.name for p in tmp_path.iterdir()] == ["site"]
    expected = {"index.html", "style.css", ".chatchannels-site.json", paths.ALL_FEED_PATH, DB_FILE}
    for chat in chats:
        expected |= {paths.chat_index_path(chat), paths.chat_feed_path(chat)}
        expected |= {
            paths.month_page_path(chat, "2006-05"),
            paths.archive_feed_path(chat, "2006-05"),
            paths.month_manifest_path(chat, "2006-05"),
        }
    written = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    written = {name for name in written if not name.startswith(INDEX_DIR + "/")}
    assert written == expected

    for feed in site.rglob("*.atom"):
        parsed = feedparser.parse(feed.read_bytes())
        assert not parsed.bozo, (feed, parsed.get("bozo_exception"))

    pages = [site / "index.html"]
    for chat in chats:
        pages += [site / paths.chat_index_path(chat), site / paths.month_page_path(chat, "2006-05")]
    # The search results page, with hostile authors, chats and snippets.
    backend = WhooshBackend(index_dir(site), create=False)
    try:
        results = backend.search("FIRED OR script OR img", limit=200)
    finally:
        backend.close()
    assert results.total > 100
    search_page = tmp_path / "search" / "search.html"
    search_page.parent.mkdir()
    search_page.write_text(PageRenderer().search_page("<b>FIRED", "relevance", results, ""))
    pages.append(search_page)
    with ThreadPoolExecutor(max_workers=2) as pool:
        dumps = list(
            pool.map(
                lambda n_page: dump_dom(n_page[1], tmp_path / f"chromium-{n_page[0]}"),
                enumerate(pages),
            )
        )
    for page, dom in zip(pages, dumps, strict=True):
        assert "FIRED-" not in dom, f"a payload ran in {page}"
        assert '<nav class="top">' in dom, f"{page} did not render: {dom[:500]}"
        assert "</main>" in dom
    bodies_page = dumps[2]
    assert bodies_page.count('<article class="message') == len(CORPUS)
    # Skype's XML of a script tag shows its text; a typed one (escaped) shows as typed.
    assert (
        """<div class="body" dir="auto">document.title=['FIRED',0].join('-')</div>""" in bodies_page
    )
    typed = TEMPLATES.index("&#60;script&#62;{js}&#60;/script&#62;")
    assert f"&lt;script&gt;document.title=['FIRED',{typed}].join('-')&lt;/script&gt;" in bodies_page
