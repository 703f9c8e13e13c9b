"""Accessibility in real headless Chromium: axe-core (from the npm registry, installed by
`make setup`) finds no serious or critical violation on the site index, a month page, the
search page and the statistics pages, in the light and the dark scheme; the keyboard reaches
every link, field and `<details>` summary in document order, each with a visible focus; and
the statistics page is photographed at desktop and phone widths, light and dark, for people
to look at (test-artifacts/screenshots/).

The pages are the ones `serve` serves, with its Content-Security-Policy `script-src 'none'`:
no script of the page's own may run, so axe is put in through the DevTools protocol with CSP
bypassed for that tab (Page.setBypassCSP) rather than through a copy of the pages that lacks
the policy. What axe checks is the served page itself, search results included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from chatchannels.publishers import paths
from chatchannels.publishers.publishing import publish
from chatchannels.publishers.serve import make_server
from tests.support.axe import AXE, BLOCKING, axe_violations
from tests.support.cdp import Browser, Tab
from tests.support.open_site import OPEN_SITE
from tests.support.paths import REPO
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
ONE = "#alice/$bob;a7ab1234"
GROUP = "19:release@thread.skype"
WIDTHS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
# What the keyboard must reach, in the document's order (but what is not shown, such as the
# content of a closed <details>).
FOCUSABLE = (
    "a[href], input:not([type=hidden]), select, textarea, button, summary,"
    " [tabindex]:not([tabindex='-1'])"
)


def t(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2006, month, day, hour, minute, tzinfo=UTC)


def seed(s: StoreSeeder) -> None:
    s.user("alice", "Alice Anders")
    s.user("bob", "Bob Brown")
    s.user("dalia", "داليا")
    s.chat(ONE, "", ["alice", "bob"])
    s.chat(GROUP, "Release planning", ["alice", "bob", "dalia"])
    for day in range(1, 20):
        s.message(f"a{day}", ONE, "alice", t(4, day, 9), f"hello bob, day {day}", "Alice Anders")
        s.message(f"b{day}", ONE, "bob", t(4, day, 9, 3), "hello alice", "Bob Brown")
    s.message(
        "q1",
        ONE,
        "bob",
        t(4, 20, 10),
        '<quote author="alice" authorname="Alice Anders" timestamp="1144231200">hello bob'
        "</quote>hello again, see https://example.org/release",
        "Bob Brown",
    )
    s.message("e1", ONE, "alice", t(4, 20, 11), "waves", "Alice Anders", type="EMOTED")
    s.edit("a3", "hello bob, day 3 (edited)", "alice", t(4, 3, 10))
    s.delete("b4", "bob", t(4, 4, 10))
    s.message("g1", GROUP, "dalia", t(5, 2, 8), "مرحبا بالجميع، hello release", "داليا")
    s.message("g2", GROUP, "alice", t(5, 2, 8, 5), "the release is on Friday", "Alice Anders")


@pytest.fixture
def site_url(pg_dsn, tmp_path) -> Iterator[str]:
    seeder = StoreSeeder(pg_dsn)
    try:
        seed(seeder)
    finally:
        seeder.close()
    publish(pg_dsn, tmp_path / "site", once=True)
    server = make_server(tmp_path / "site", "127.0.0.1", 0, access=OPEN_SITE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path) -> Iterator[Browser]:
    browser = Browser(tmp_path / "chromium")
    try:
        yield browser
    finally:
        browser.close()


def pages(site_url: str) -> dict[str, str]:
    return {
        "index": site_url + "index.html",
        "month": site_url + paths.month_page_path(ONE, "2006-04"),
        "search": site_url + "search?q=hello",
        "chat statistics": site_url + paths.chat_stats_path(ONE),
        "archive statistics": site_url + paths.STATS_PATH,
    }


def open_tab(browser: Browser, url: str, width: int, height: int, dark: bool, mobile: bool) -> Tab:
    tab = browser.tab()
    tab.emulate(width, height, dark, mobile)
    tab.send("Page.setBypassCSP", {"enabled": True})
    tab.open(url)
    return tab


def test_axe_finds_no_serious_or_critical_violation(site_url, browser):
    assert AXE.is_file(), f"{AXE} is missing: run `make setup` (it installs axe-core from npm)"
    report: dict[str, list[dict]] = {}
    for name, url in pages(site_url).items():
        for dark in (False, True):
            tab = open_tab(browser, url, 1280, 900, dark, False)
            # The page is the served one, and its own content is there to be checked.
            assert tab.evaluate("document.querySelector('main') !== null"), url
            report[f"{name} ({'dark' if dark else 'light'})"] = axe_violations(tab)
    print(json.dumps(report, indent=1, ensure_ascii=False))
    blocking = {
        page: [v for v in found if v["impact"] in BLOCKING] for page, found in report.items()
    }
    assert not any(blocking.values()), json.dumps(blocking, indent=1, ensure_ascii=False)


def test_axe_would_report_a_serious_violation(site_url, browser):
    """The check can fail: a page given an image without a text alternative and an unnamed
    field gets serious or critical violations from the same run."""
    tab = open_tab(browser, site_url + "index.html", 1280, 900, False, False)
    tab.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        ' \'<img src="style.css"><input type="text">\')'
    )
    assert {v["id"] for v in axe_violations(tab) if v["impact"] in BLOCKING} >= {
        "image-alt",
        "label",
    }


DESCRIBE = """(() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  const visible = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0
    || s.boxShadow !== 'none';
  const reachable = [...document.querySelectorAll(SELECTOR)].filter(x => x.checkVisibility());
  return {index: reachable.indexOf(e), tag: e.tagName,
          name: e.getAttribute('name'), text: (e.textContent || '').trim().slice(0, 40),
          focusVisible: e.matches(':focus-visible'), ring: visible};
})()"""


def tab_through(tab: Tab, presses: int) -> list[dict]:
    stops = []
    describe = DESCRIBE.replace("SELECTOR", json.dumps(FOCUSABLE))
    for _ in range(presses):
        tab.press("Tab", 9)
        stops.append(tab.evaluate(describe))
    return stops


def focusable_count(tab: Tab) -> int:
    return tab.evaluate(
        f"[...document.querySelectorAll({json.dumps(FOCUSABLE)})]"
        ".filter(e => e.checkVisibility()).length"
    )


def test_the_keyboard_reaches_every_control_in_order_with_a_visible_focus(site_url, browser):
    for name, url in pages(site_url).items():
        tab = open_tab(browser, url, 1280, 900, False, False)
        count = focusable_count(tab)
        assert count > 2, f"{name}: nothing to reach"
        stops = tab_through(tab, min(count, 60))
        where = f"{name}: {stops}"
        assert [s["index"] for s in stops] == list(range(len(stops))), where
        assert all(s["focusVisible"] and s["ring"] for s in stops), where
        if name in ("index", "search"):
            assert any(s["tag"] == "INPUT" and s["name"] == "q" for s in stops), where
        if name == "chat statistics":
            summaries = [i for i, s in enumerate(stops) if s["tag"] == "SUMMARY"]
            assert len(summaries) >= 6, where
            # A summary opens its table from the keyboard.
            tab = open_tab(browser, url, 1280, 900, False, False)
            for _ in range(summaries[0] + 1):
                tab.press("Tab", 9)
            assert tab.evaluate("document.activeElement.parentElement.open") is False
            tab.press("Enter", 13, "\r")
            assert tab.evaluate("document.activeElement.parentElement.open") is True


def test_statistics_screenshots_at_desktop_and_phone_widths_light_and_dark(site_url, browser):
    url = site_url + paths.chat_stats_path(ONE)
    for width_name, (width, height, mobile) in WIDTHS.items():
        for dark in (False, True):
            tab = open_tab(browser, url, width, height, dark, mobile)
            assert tab.evaluate("document.querySelectorAll('figure.chart svg').length") == 6
            # Nothing sticks out sideways at a phone's width.
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{width_name}: {overflow}px wider than the screen"
            shot = SCREENSHOTS / f"statistics-{width}-{'dark' if dark else 'light'}.png"
            shot.unlink(missing_ok=True)
            tab.screenshot(shot)
            assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
