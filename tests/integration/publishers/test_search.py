"""Search, the publish/search/serve commands and following the change stream, on a real
PostgreSQL."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import psycopg
import pytest
from click.testing import CliRunner
from whoosh import index
from whoosh.fields import ID, Schema

from chatchannels.cli import main
from chatchannels.publishers import paths
from chatchannels.publishers.publishing import index_dir, publish
from chatchannels.publishers.search_index import WhooshBackend
from chatchannels.publishers.serve import make_server
from chatchannels.store_contract import NOTIFY_CHANNEL
from tests.support.open_site import OPEN_SITE
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

CHAT = "#alice/$bob;a7ab1234"
QUERIES = ["meeting", '"the meeting"', "lunch OR noon", "author:bob", "date:2006-05", "-lunch"]


def t(month, day, hour=12):
    return datetime(2006, month, day, hour, tzinfo=UTC)


@pytest.fixture
def seeder(pg_dsn):
    seeder = StoreSeeder(pg_dsn)
    seeder.chat(CHAT, "Planning", ["alice", "bob"])
    seeder.message("m1", CHAT, "alice", t(5, 1), "The meeting moved to <b>Tuesday</b>", "Alice")
    seeder.message("m2", CHAT, "bob", t(5, 2), "lunch at noon?", "Bob")
    seeder.message("m3", CHAT, "bob", t(6, 1), "the meeting is <i>long</i>", "Bob")
    yield seeder
    seeder.close()


def results(site, query, sort="relevance"):
    backend = WhooshBackend(index_dir(site), create=False)
    try:
        return backend.search(query, sort=sort, limit=50).as_json()
    finally:
        backend.close()


def comparable(answer):
    hits = [{k: v for k, v in hit.items() if k != "score"} for hit in answer["hits"]]
    return hits, answer["facets"]


def cli(*args, dsn=""):
    env = {"CHATCHANNELS_DSN": dsn} if dsn else {}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_index_built_incrementally_answers_like_one_built_from_zero(seeder, pg_dsn, tmp_path):
    incremental, full = tmp_path / "inc", tmp_path / "full"
    publish(pg_dsn, incremental, once=True, batch_size=2)
    seeder.edit("m1", "The gathering moved to Tuesday", "alice", t(5, 3))
    seeder.delete("m2", "bob", t(5, 4))
    seeder.message("m4", CHAT, "alice", t(7, 1), "lunch tomorrow", "Alice")
    seeder.remove("m3")
    publish(pg_dsn, incremental, once=True, batch_size=2)
    publish(pg_dsn, full, once=True)
    for query in [*QUERIES, "gathering", "tuesday"]:
        # Same hits, links and snippets in the same time order; scores may differ, since an
        # index that saw edits keeps the replaced documents' statistics until it merges.
        assert comparable(results(incremental, query, "time")) == comparable(
            results(full, query, "time")
        ), query
    assert [h["id"] for h in results(full, "meeting")["hits"]] == []
    assert [h["id"] for h in results(full, "lunch")["hits"]] == ["m4"]


def titles(site, query):
    return {hit["chat"]: hit["chat_title"] for hit in results(site, query)["hits"]}


def test_hits_carry_the_chats_title_as_the_store_has_it_now(seeder, pg_dsn, tmp_path):
    dialog = "#carol/$dave;ff00"
    seeder.user("dave", "Dave Davies")
    seeder.message("d1", dialog, "carol", t(5, 3), "noon plans?", "")
    incremental, full = tmp_path / "inc", tmp_path / "full"
    publish(pg_dsn, incremental, once=True, batch_size=2)
    assert titles(incremental, "meeting OR plans") == {
        CHAT: "Planning",
        dialog: "carol & Dave Davies",
    }
    # A new topic and a display name: the chats' titles follow, not the messages.
    seeder.chat(CHAT, "Roadmap", ["alice", "bob"])
    seeder.user("carol", "Carol Cole")
    publish(pg_dsn, incremental, once=True, batch_size=2)
    publish(pg_dsn, full, once=True)
    for site in (incremental, full):
        assert titles(site, "meeting OR plans") == {
            CHAT: "Roadmap",
            dialog: "Carol Cole & Dave Davies",
        }
    facets = results(full, "meeting OR plans")["facets"]
    assert facets["chat"] == [
        {"value": CHAT, "label": "Roadmap", "count": 2},
        {"value": dialog, "label": "Carol Cole & Dave Davies", "count": 1},
    ]


def test_search_command_prints_links_and_json(seeder, pg_dsn, tmp_path):
    result = cli("publish", "--once", "--site-dir", str(tmp_path), dsn=pg_dsn)
    assert result.exit_code == 0, result.output
    result = cli("search", "--json", "--site-dir", str(tmp_path), "meeting", "author:alice")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    [hit] = payload["hits"]
    assert hit["url"] == paths.message_link(CHAT, "2006-05", "m1")
    assert (tmp_path / hit["url"].split("#")[0]).is_file()
    assert f'id="{hit["url"].split("#")[1]}"' in (tmp_path / hit["url"].split("#")[0]).read_text()
    assert {"text": "meeting", "match": True} in hit["snippet"]
    assert hit["posted_utc"] == "2006-05-01T12:00:00Z"

    text = cli("search", "--site-dir", str(tmp_path), "--sort", "time", "meeting")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("2006-06-01 12:00 UTC") and str(tmp_path) in lines[2]
    assert f"Planning ({CHAT})" in lines[0]

    bad = cli("search", "--site-dir", str(tmp_path), "date:2006-13")
    assert bad.exit_code == 2 and "date:2006-13 is not a date" in bad.output
    bad_json = cli("search", "--json", "--site-dir", str(tmp_path), "date:2006-13")
    assert bad_json.exit_code == 2
    assert "is not a date" in json.loads(bad_json.stdout)["error"]["message"]
    missing = cli("search", "--site-dir", str(tmp_path / "nowhere"), "x")
    assert missing.exit_code == 2 and "chatchannels publish --once" in missing.output


def test_publish_twice_is_harmless_and_rebuild_starts_over(seeder, pg_dsn, tmp_path):
    first = cli("publish", "--once", "--site-dir", str(tmp_path), dsn=pg_dsn)
    again = cli("publish", "--once", "--site-dir", str(tmp_path), dsn=pg_dsn)
    assert "site: 4 changes" in first.stderr and "site: 0 changes" in again.stderr
    rebuilt = cli("publish", "--once", "--rebuild", "--site-dir", str(tmp_path), dsn=pg_dsn)
    assert "search: 4 changes" in rebuilt.stderr
    (tmp_path / ".chatchannels-site.json").write_text("{broken")
    broken = cli("publish", "--once", "--site-dir", str(tmp_path), dsn=pg_dsn)
    assert broken.exit_code == 2 and "publish with --rebuild to start over" in broken.output
    cli("publish", "--once", "--rebuild", "--site-dir", str(tmp_path), dsn=pg_dsn)
    # An index written by an older version (other fields): one line asking for a rebuild.
    shutil.rmtree(index_dir(tmp_path))
    index_dir(tmp_path).mkdir()
    index.create_in(str(index_dir(tmp_path)), Schema(id=ID(stored=True, unique=True))).close()
    stale = cli("publish", "--once", "--site-dir", str(tmp_path), dsn=pg_dsn)
    assert stale.exit_code == 2 and "publish --rebuild" in stale.output
    assert "Traceback" not in stale.output
    assert (
        cli("publish", "--once", "--rebuild", "--site-dir", str(tmp_path), dsn=pg_dsn).exit_code
        == 0
    )


def test_following_wakes_on_notify(seeder, pg_dsn, tmp_path):
    stop = threading.Event()
    # A poll interval far beyond the deadline below: only NOTIFY can wake the loop in time.
    follower = threading.Thread(
        target=publish, args=(pg_dsn, tmp_path), kwargs={"once": False, "poll_s": 600, "stop": stop}
    )
    follower.start()
    try:
        wait_for(lambda: results_or_none(tmp_path, "meeting"), "the first catch-up")
        seeder.message("m9", CHAT, "alice", t(8, 1), "a notified message", "Alice")
        seeder.conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        wait_for(lambda: results_or_none(tmp_path, "notified"), "m9 in the index after NOTIFY")
    finally:
        stop.set()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        follower.join(timeout=60)
    assert not follower.is_alive()


def results_or_none(site, query):
    try:
        return results(site, query)["total"] or None
    except LookupError:
        return None


def wait_for(condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


@pytest.fixture
def server(seeder, pg_dsn, tmp_path):
    publish(pg_dsn, tmp_path, once=True)
    server = make_server(tmp_path, "127.0.0.1", 0, access=OPEN_SITE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(url, method="GET"):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_serve_site_and_search(server):
    status, headers, body = fetch(f"{server}/index.html")
    assert status == 200 and "Planning" in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'none'" in headers["Content-Security-Policy"]

    status, _, body = fetch(f"{server}/search?q=meeting+-tuesday&sort=time")
    assert status == 200 and "<mark>meeting</mark>" in body
    assert 'href="' + paths.message_link(CHAT, "2006-06", "m3") + '"' in body

    status, headers, body = fetch(f"{server}/search.json?q=meeting")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["total"] == 2

    # The JSON keeps its shape and gains paging and facets.
    status, _, body = fetch(f"{server}/search.json?q=meeting&sort=time&limit=1&offset=1")
    answer = json.loads(body)
    assert {"query", "sort", "total", "hits", "offset", "limit", "facets"} == set(answer)
    assert (answer["total"], answer["offset"], answer["limit"]) == (2, 1, 1)
    [hit] = answer["hits"]
    assert (hit["id"], hit["chat_title"], hit["after"]["id"]) == ("m1", "Planning", "m2")
    assert answer["facets"]["author"] == [
        {"value": "alice", "label": "Alice", "count": 1},
        {"value": "bob", "label": "Bob", "count": 1},
    ]
    status, _, body = fetch(f"{server}/search.json")
    assert json.loads(body)["facets"] == {"chat": [], "author": []}
    assert fetch(f"{server}/search.json?q=meeting&offset=-1")[0] == 400

    status, _, body = fetch(f"{server}/search.json?q=date:2006-13")
    assert status == 400 and json.loads(body)["error"]["status"] == 400

    status, _, body = fetch(f"{server}/search?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert status == 200 and "<script>" not in body and "&lt;script&gt;" in body

    assert fetch(f"{server}/.search-index/")[0] == 404
    assert fetch(f"{server}/chats/")[0] == 404
    assert fetch(f"{server}/.chatchannels-site.json")[0] == 404
    assert fetch(f"{server}/chats/%2e%2e/%2e%2e/etc/passwd")[0] == 404
    # Only /login and /logout take a POST; the site's files are read-only.
    status, headers, _ = fetch(f"{server}/index.html", method="POST")
    assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_the_site_and_the_index_can_be_kept_by_two_processes(seeder, pg_dsn, tmp_path):
    together, apart = tmp_path / "together", tmp_path / "apart"
    publish(pg_dsn, together, once=True)
    [site] = publish(pg_dsn, apart, once=True, only=("site",))
    assert site.publisher == "site" and not index_dir(apart).exists()
    [search] = publish(pg_dsn, apart, once=True, only=("search",))
    assert search.publisher == "search" and search.watermark == site.watermark
    assert comparable(results(apart, "meeting")) == comparable(results(together, "meeting"))
    # A rebuild of one leaves the other's output alone.
    page = apart / "index.html"
    page.write_text("kept")
    publish(pg_dsn, apart, once=True, rebuild=True, only=("search",))
    assert page.read_text() == "kept"
    assert comparable(results(apart, "lunch")) == comparable(results(together, "lunch"))
    # From the command line too.
    answer = cli(
        "publish", "--once", "--only", "site", "--json", "--site-dir", str(apart), dsn=pg_dsn
    )
    assert answer.exit_code == 0, answer.output
    assert [p["publisher"] for p in json.loads(answer.output)["publishers"]] == ["site"]
