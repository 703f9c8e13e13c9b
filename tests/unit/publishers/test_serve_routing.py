"""serve's routing in-process (Werkzeug's test client, datasette's habit), with a Gate and
per-reader pages of the permissions' interface as small doubles: what the server does with
their answers. The real Gate and identity are tested against the running server."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from chatchannels.publishers.access.reader_pages import Page
from chatchannels.publishers.access.readers import Reader
from chatchannels.publishers.metrics import ServeMetrics
from chatchannels.publishers.search_index import SearchResults
from chatchannels.publishers.serve import Access, SearchService, SiteApp

SECRET = "chats/secret/index.html"


class OnlyThese:
    """A gate that lets everyone fetch these paths and see these chats."""

    def __init__(self, paths: set[str], chats: frozenset[str] | None) -> None:
        self.paths = paths
        self.chats = chats
        self.asked: list[tuple[Reader, str]] = []

    def visible_chats(self, reader):
        return self.chats

    def can_fetch(self, reader, site_path):
        self.asked.append((reader, site_path))
        return site_path in self.paths


class PerReaderPages:
    def render(self, reader, site_path):
        if site_path == "stats.html":
            return None
        return Page("text/html; charset=utf-8", f"<p>{site_path} for you</p>".encode())


class RecordingSearch(SearchService):
    def __init__(self, site_dir):
        super().__init__(site_dir)
        self.chats_asked = []

    def search(self, query, sort, limit, offset, chats):
        self.chats_asked.append(chats)
        return SearchResults(query, sort, 0, (), offset, limit)


@pytest.fixture
def site(tmp_path):
    for name in (SECRET, "chats/open/index.html", "index.html", "style.css"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    return tmp_path


def app_for(site, gate, pages=None):
    search = RecordingSearch(site)
    return Client(SiteApp(site, Access(gate=gate, pages=pages), ServeMetrics(), search)), search


def test_a_forbidden_file_is_the_same_404_as_a_missing_one(site):
    gate = OnlyThese({"chats/open/index.html", "style.css"}, frozenset({"open"}))
    client, _ = app_for(site, gate)
    assert client.get("/chats/open/index.html").status_code == 200
    hidden = client.get("/chats/secret/index.html")
    missing = client.get("/chats/nosuch/index.html")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.headers["Content-Type"] == missing.headers["Content-Type"]
    strip = lambda r, p: r.get_data(as_text=True).replace(p, "P")  # noqa: E731
    assert strip(hidden, "secret") == strip(missing, "nosuch")
    # A folder without its slash is redirected only where its index may be read.
    assert client.get("/chats/open").status_code == 301
    assert client.get("/chats/secret").status_code == 404


def test_the_gate_is_asked_with_the_reader_and_the_site_path(site):
    gate = OnlyThese(set(), None)
    client, _ = app_for(site, gate)
    client.get("/chats/secret/")
    assert gate.asked == [(Reader(None), SECRET)]


def test_site_wide_pages_come_from_the_per_reader_renderers(site):
    gate = OnlyThese({"index.html"}, None)
    client, _ = app_for(site, gate, PerReaderPages())
    answer = client.get("/")
    assert answer.get_data() == b"<p>index.html for you</p>"
    assert "no-store" in answer.headers["Cache-Control"]
    assert client.get("/stats.html").status_code == 404
    # Without renderers (no permissions), the static files, through the gate.
    plain, _ = app_for(site, gate)
    assert plain.get("/").get_data() == b"index.html"


def test_search_asks_only_for_the_readers_chats(site):
    client, search = app_for(site, OnlyThese(set(), frozenset({"open"})))
    answer = client.get("/search.json?q=hello")
    assert answer.status_code == 200 and json.loads(answer.get_data())["total"] == 0
    client.get("/search?q=hello")
    assert search.chats_asked == [frozenset({"open"}), frozenset({"open"})]


def test_without_identity_there_is_no_sign_in_and_only_reads(site):
    client, _ = app_for(site, OnlyThese({"style.css"}, None))
    assert client.get("/login").status_code == 404
    answer = client.post("/style.css")
    assert (answer.status_code, answer.headers["Allow"]) == (405, "GET, HEAD")
    assert client.delete("/search").status_code == 405
    head = client.head("/style.css")
    assert head.status_code == 200 and head.get_data() == b""
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert header in head.headers
