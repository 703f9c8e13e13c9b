"""Issue 21 in real headless Chromium: two readers and a private chat. The other reader gets
nothing of it: not by direct URL, search (HTML and JSON), feeds and their month archives,
media, nor `..` and encoded-path tricks; a forged Remote-User from an address that is not a
proxy gets nothing; a revoked feed token stops working; the session cookie's flags are as
the browser keeps them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from chatchannels.publishers import paths
from chatchannels.publishers.access import readers_store
from chatchannels.publishers.access.passwords import hash_password
from chatchannels.publishers.publishing import publish
from chatchannels.settings import load_settings
from chatchannels.stack.processes import wait_for
from tests.support.axe import BLOCKING, axe_violations
from tests.support.cdp import Browser, Tab
from tests.support.chromium import SCREENSHOTS
from tests.support.publishers_seeding import StoreSeeder
from tests.support.reader_site import serving

pytestmark = pytest.mark.integration

SECRET = "#alice/$carol;5ec2e75ec2e7"
OPEN = "19:0a1b2c3d4e5f@thread.skype"
WORD = "zanzibar"
MONTH = "2006-05"
PICTURE = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PICTURE_SHA = "d" * 64
PASSWORDS = {"alice": "alice reads her chats", "bob": "bob reads the open one"}


# Everyone reads the chats they take part in; any signed-in reader reads the open one.
PERMISSIONS = {
    "rules": [
        {"allow": {"members": True}},
        {"titles": ["Open plans"], "allow": {"id": "*"}},
    ]
}


def seed(dsn: str) -> None:
    seeder = StoreSeeder(dsn)
    try:
        start = datetime(2006, 5, 3, 9, tzinfo=UTC)
        seeder.chat(SECRET, "", ["alice", "carol"])
        seeder.chat(OPEN, "Open plans", ["alice", "bob", "carol"])
        seeder.media_file("doc-1", PICTURE_SHA, "plan.png", len(PICTURE))
        for n in range(3):
            seeder.message(
                f"s{n}", SECRET, "alice", start + timedelta(minutes=n), f"the {WORD} plan, step {n}"
            )
        seeder.message(
            "s-pic", SECRET, "carol", start + timedelta(minutes=5), "the map", media=["doc-1"]
        )
        for n in range(3):
            seeder.message(
                f"o{n}", OPEN, "bob", start + timedelta(hours=1, minutes=n), f"lunch plan {n}"
            )
    finally:
        seeder.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, password in PASSWORDS.items():
            readers_store.add_reader(conn, name, hash_password(password))
        readers_store.set_handle(conn, "alice", "alice")
        readers_store.set_handle(conn, "bob", "bob")


@pytest.fixture
def archive(tmp_path, pg_dsn):
    media = tmp_path / "media"
    (media / PICTURE_SHA[:2]).mkdir(parents=True)
    (media / PICTURE_SHA[:2] / PICTURE_SHA).write_bytes(PICTURE)
    seed(pg_dsn)
    site = tmp_path / "site"
    publish(pg_dsn, site, once=True, media_dir=media)
    settings = load_settings(
        environ={},
        stack_dir=tmp_path,
        secrets_dir=str(tmp_path / "secrets"),
        dsn=pg_dsn,
        permissions=json.dumps(PERMISSIONS),
    )
    with serving(settings, site) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", pg_dsn


@pytest.fixture
def browsers(tmp_path):
    opened: list[Browser] = []

    def open_browser(name: str) -> Tab:
        browser = Browser(tmp_path / f"profile-{name}")
        opened.append(browser)
        return browser.tab()

    yield open_browser
    for browser in opened:
        browser.close()


def wait_location(tab: Tab, url: str, timeout: float = 30) -> None:
    # A BrowserError between two documents is one more miss (wait_for keeps polling).
    wait_for(
        f"the browser to reach {url}",
        lambda: tab.evaluate("document.readyState + ' ' + location.href") == f"complete {url}",
        timeout,
        interval=0.05,
    )


def sign_in(tab: Tab, base: str, name: str, password: str) -> None:
    tab.open(f"{base}/login?next=/search")
    tab.evaluate(
        f"document.querySelector('#name').value = {json.dumps(name)};"
        f"document.querySelector('#password').value = {json.dumps(password)};"
        "document.querySelector('form.signin').submit();"
    )
    wait_location(tab, f"{base}/search")


def fetch(tab: Tab, path: str, headers: dict | None = None) -> tuple[int, str]:
    """The status and text the page's own fetch gets (same origin, the browser's cookies)."""
    return tab.evaluate(
        f"fetch({json.dumps(path)}, {{headers: {json.dumps(headers or {})}, redirect: 'manual'}})"
        ".then(async r => [r.status, await r.text()])",
        await_promise=True,
    )


def private_urls() -> list[str]:
    chat_dir = "/" + paths.chat_dir(SECRET)
    return [
        "/" + paths.chat_index_path(SECRET),
        chat_dir + "/",
        "/" + paths.month_page_path(SECRET, MONTH),
        "/" + paths.month_manifest_path(SECRET, MONTH),
        "/" + paths.chat_stats_path(SECRET),
        "/" + paths.chat_feed_path(SECRET),
        "/" + paths.archive_feed_path(SECRET, MONTH),
        f"/media/{PICTURE_SHA[:2]}/{PICTURE_SHA}",
        f"/thumbs/{PICTURE_SHA[:2]}/{PICTURE_SHA}.jpg",
    ]


def test_the_other_reader_gets_nothing_of_a_private_chat(archive, browsers):
    base, dsn = archive
    alice, bob, stranger = browsers("alice"), browsers("bob"), browsers("stranger")
    sign_in(alice, base, "alice", PASSWORDS["alice"])
    sign_in(bob, base, "bob", PASSWORDS["bob"])
    stranger.open(f"{base}/style.css")

    # The session cookie, as Chromium keeps it.
    cookies = {c["name"]: c for c in alice.send("Network.getCookies", {"urls": [base]})["cookies"]}
    session = cookies["__Host-chatchannels"]
    assert (session["httpOnly"], session["secure"], session["sameSite"], session["path"]) == (
        True,
        True,
        "Lax",
        "/",
    )
    assert 0 < session["expires"] - time.time() <= 12 * 3600
    assert "chatchannels" not in alice.evaluate("document.cookie")

    # Direct URLs: the owner reads them; the other reader and a stranger get a 404.
    for url in private_urls():
        if url.startswith("/thumbs/") and fetch(alice, url)[0] == 404:
            continue  # no thumbnail made for this picture
        assert fetch(alice, url)[0] == 200, url
        for tab in (bob, stranger):
            status, text = fetch(tab, url)
            assert status == 404 and WORD not in text, url
    bob.open(f"{base}/" + paths.chat_index_path(SECRET))
    assert "Not found" in bob.evaluate("document.body.innerText")

    # Search, HTML and JSON: hits for the owner, nothing at all for the others.
    owner_hits = json.loads(fetch(alice, f"/search.json?q={WORD}")[1])
    assert owner_hits["total"] == 3
    for tab in (bob, stranger):
        found = json.loads(fetch(tab, f"/search.json?q={WORD}")[1])
        assert (found["total"], found["hits"]) == (0, [])
        status, page = fetch(tab, f"/search?q={WORD}+OR+plan")
        # The query is echoed; nothing of the chat is (its messages, its name).
        assert status == 200 and "plan, step" not in page and "5ec2e7" not in page

    # The pages that list chats, rendered for each reader: bob's list only the open chat.
    for tab, sees in ((alice, True), (bob, False), (stranger, False)):
        for page in ("/", "/index.html", "/feeds/all.atom", "/stats.html"):
            status, text = fetch(tab, page)
            assert status in (200, 404), page
            assert ("5ec2e7" in text or WORD in text) == (sees and page != "/stats.html"), page
    assert "Open plans" in fetch(bob, "/")[1] and "Open plans" not in fetch(stranger, "/")[1]
    # bob's search finds his chat's plans, and nothing of the private chat's.
    found = json.loads(fetch(bob, "/search.json?q=plan")[1])
    assert found["total"] == 3 and {hit["chat"] for hit in found["hits"]} == {OPEN}

    # `..` and encoded paths, as the browser sends them and as a client could.
    chat = paths.chat_dir(SECRET)
    for trick in (
        f"/style.css/../{chat}/index.html",
        f"/chats/x/..%2f{chat.split('/')[1]}/index.html",
        f"/chats/%2e%2e/{chat}/index.html",
        f"/{chat}%2findex.html",
        f"/{chat.replace('chats', 'CHATS')}/index.html",
        f"/media/{PICTURE_SHA[:2]}/..%2f{PICTURE_SHA[:2]}/{PICTURE_SHA}",
        f"/feeds/{chat.split('/')[1]}.atom%00",
    ):
        status, text = fetch(bob, trick)
        assert status in (400, 404) and WORD not in text, trick

    # A forged Remote-User, from 127.0.0.1, which is no trusted proxy.
    for url in private_urls()[:3]:
        assert fetch(stranger, url, {"Remote-User": "alice"})[0] == 404, url

    # A feed token: the stranger's feed reader reads alice's feed until she revokes it.
    with psycopg.connect(dsn, autocommit=True) as conn:
        record, token = readers_store.add_token(conn, "alice", "feed reader")
    feed = "/" + paths.chat_feed_path(SECRET)
    status, text = fetch(stranger, f"{feed}?token={token}")
    assert status == 200 and WORD in text
    assert fetch(stranger, "/" + paths.chat_index_path(SECRET) + f"?token={token}")[0] == 404
    with psycopg.connect(dsn, autocommit=True) as conn:
        readers_store.revoke_token(conn, record.id)
    wait_for(
        "the revoked token to stop opening the feed",
        lambda: fetch(stranger, f"{feed}?token={token}")[0] == 404,
        10,
    )

    # The sign-in form and the 404 are pages like the others: nothing serious for axe.
    tab = browsers("axe")
    tab.send("Page.setBypassCSP", {"enabled": True})
    for name, url in (
        ("signin", f"{base}/login"),
        ("not-found", f"{base}/{paths.chat_index_path(SECRET)}"),
        ("signout", f"{base}/logout"),
    ):
        tab.open(url)
        # For people to look at, beside the other pages' (test-artifacts/screenshots/).
        tab.screenshot(SCREENSHOTS / f"{name}-1280-light.png")
        blocking = [v for v in axe_violations(tab) if v["impact"] in BLOCKING]
        assert not blocking, (url, blocking)

    # Signing out in the browser closes the chat again.
    alice.open(f"{base}/logout")
    alice.evaluate("document.querySelector('form.signout').submit()")
    wait_location(alice, f"{base}/")
    assert fetch(alice, "/" + paths.chat_index_path(SECRET))[0] == 404
