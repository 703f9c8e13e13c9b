"""`chatchannels serve`: the site's files and /search, read-only, over HTTP.

A stdlib ThreadingHTTPServer: the static pages need nothing more, and /search is one Whoosh
lookup. Only GET and HEAD exist; dot-files (the index, the publishers' state) are never served.
Archived media (`/media/..`, the site's link to the media folder) are served as downloads,
but for a few image formats, and sandboxed: nothing someone sent runs in the site's origin.
`/search` answers HTML and `/search.json` the same results as JSON (datasette's habit: every
page has a JSON twin); JSON errors share one shape: {"error": {"status": .., "message": ..}}.

`/metrics` is the Prometheus scrape of this server (publishers/metrics.py, ServeMetrics), on
its own port rather than a second one: the server is there already, and the intranet's web
server passes only /search and /media through (deploy/nginx), so the archive's readers never
see it.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import time
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatchannels.publishers.metrics import ServeMetrics
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.publishing import index_dir
from chatchannels.publishers.search_index import (
    SORTS,
    IndexMissingError,
    SearchBackend,
    SearchResults,
    WhooshBackend,
)
from chatchannels.publishers.search_query import QueryError
from chatchannels.publishers.site import site_time_zone

log = logging.getLogger(__name__)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'",
    "Referrer-Policy": "no-referrer",
}
MAX_LIMIT = 200
DEFAULT_LIMIT = 20
# Paging deeper than this is not a way anyone reads results; it only costs the server.
MAX_OFFSET = 10_000
# Archived media (site.link_media): `media/<sha256[:2]>/<sha256>`, nothing else under it.
MEDIA_PATH = re.compile(r"media/([0-9a-f]{2})/(\1[0-9a-f]{62})")
# An archived file is whatever someone sent: served in the site's origin as HTML or SVG it
# could run script there. Only these image formats, told by their first bytes (the export's
# declared type is not evidence), are shown inline; every other file is a download.
INLINE_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
DOWNLOAD_TYPE = "application/octet-stream"


def media_type(path: str) -> str:
    """The content type an archived file is served with (INLINE_IMAGES, else a download)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return DOWNLOAD_TYPE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, ctype in INLINE_IMAGES:
        if head.startswith(magic):
            return ctype
    return DOWNLOAD_TYPE


class SearchService:
    """Opens the index lazily, so `serve` starts before the first `publish` finished."""

    def __init__(self, site_dir: Path) -> None:
        self.site_dir = site_dir
        self.backend: SearchBackend | None = None
        # Times on the search page in the zone the site's pages use (its state says which).
        self.renderer = PageRenderer(site_time_zone(site_dir) or "UTC")

    def search(self, query: str, sort: str, limit: int, offset: int = 0):
        if self.backend is None:
            self.backend = WhooshBackend(index_dir(self.site_dir), create=False)
        return self.backend.search(query, sort=sort, limit=limit, offset=offset)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


class SiteHandler(SimpleHTTPRequestHandler):
    server_version = "chatchannels"
    sys_version = ""

    def __init__(self, *args, service: SearchService, metrics: ServeMetrics, **kwargs) -> None:
        self.service = service
        self.metrics = metrics
        self.route = "static"
        self.media = False
        self.media_download = False
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            if self.media and name == "Content-Security-Policy":
                value += "; sandbox"
            self.send_header(name, value)
        if self.media_download:
            self.send_header("Content-Disposition", "attachment")
        super().end_headers()

    def guess_type(self, path):  # type: ignore[no-untyped-def]
        if not self.media:
            return super().guess_type(path)
        ctype = media_type(path)
        self.media_download = ctype == DOWNLOAD_TYPE
        return ctype

    def log_request(self, code="-", size="-") -> None:  # type: ignore[no-untyped-def]
        # Every answer passes here once (send_response), errors included.
        if isinstance(code, int):
            self.metrics.answered(self.route, int(code))
        super().log_request(code, size)

    def log_message(self, format: str, *args) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def list_directory(self, path):  # type: ignore[no-untyped-def]
        # Like the nginx snippet: pages link to each other; folders are not browsable.
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        if url.path in ("/search", "/search.json"):
            self.route = "search_json" if url.path.endswith(".json") else "search"
            started = time.perf_counter()
            self._search(url.query, as_json=url.path.endswith(".json"), head=head)
            self.metrics.search_seconds.labels(
                "json" if url.path.endswith(".json") else "html"
            ).observe(time.perf_counter() - started)
            return
        if url.path == "/metrics":
            self.route = "metrics"
            self._send(
                HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry), head
            )
            return
        parts = [p for p in posixpath.normpath(unquote(url.path)).split("/") if p]
        self.media = parts[:1] == ["media"]
        self.route = "media" if self.media else "static"
        self.media_download = False
        if any(p.startswith(".") for p in parts) or (
            self.media and not MEDIA_PATH.fullmatch("/".join(parts))
        ):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        if head:
            super().do_HEAD()
        else:
            super().do_GET()

    def _search(self, query_string: str, as_json: bool, head: bool) -> None:
        params = parse_qs(query_string)
        query = params.get("q", [""])[0]
        sort = params.get("sort", ["relevance"])[0]
        status, results, error = HTTPStatus.OK, None, ""
        limit, offset = DEFAULT_LIMIT, 0
        try:
            limit = min(max(int(params.get("limit", [str(DEFAULT_LIMIT)])[0]), 1), MAX_LIMIT)
            offset = int(params.get("offset", ["0"])[0])
            if not 0 <= offset <= MAX_OFFSET:
                raise QueryError(f"offset must be between 0 and {MAX_OFFSET}")
            if sort not in SORTS:
                raise QueryError(f"sort must be one of {', '.join(SORTS)}")
            if query.strip():
                results = self.service.search(query, sort, limit, offset)
        except (QueryError, ValueError) as exc:
            status, error = HTTPStatus.BAD_REQUEST, str(exc)
        except IndexMissingError as exc:
            status, error = HTTPStatus.SERVICE_UNAVAILABLE, str(exc)
        if as_json:
            if error:
                payload = {"error": {"status": int(status), "message": error}}
            else:
                payload = (results or SearchResults(query, sort, 0, (), offset, limit)).as_json()
            body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
            ctype = "application/json; charset=utf-8"
        else:
            page = self.service.renderer.search_page(query, sort, results, error, DEFAULT_LIMIT)
            body = page.encode()
            ctype = "text/html; charset=utf-8"
        self._send(status, ctype, body, head)

    def _send(self, status: HTTPStatus, ctype: str, body: bytes, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)


def make_server(
    site_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    metrics: ServeMetrics | None = None,
) -> ThreadingHTTPServer:
    """A server for the site (not yet serving: call serve_forever). Bound to localhost unless
    told otherwise, since the archive is for the intranet's web server to put in front."""
    service = SearchService(site_dir)
    handler = partial(
        SiteHandler, service=service, metrics=metrics or ServeMetrics(), directory=str(site_dir)
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
