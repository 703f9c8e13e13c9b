"""`chatchannels serve`: the site's files, /search and the readers' sign-in, over HTTP.

Werkzeug for the application and waitress to serve it, rather than the standard library's
`http.server`, which this module used until readers had to sign in:
- sign-in needs forms, cookies with every flag, redirects and CSRF; Werkzeug parses requests
  and builds responses (cookies, conditional GET with ETag and Last-Modified, HEAD, ranges)
  the way a maintained toolkit does, without a framework's routing and globals on top;
- waitress is a pure-Python production WSGI server, maintained by the Pylons project, with
  no C extension to build on the intranet's machine. It parses HTTP itself and answers a
  malformed request (bad request line, bad header, oversized body) with a 4xx; the
  application never sees it. `http.server` handed such requests to our code, and
  `GET /%00` became a traceback and a dropped connection;
- an ASGI stack would buy concurrency this server does not need: every request is a file,
  one Whoosh lookup or one small query.

Who reads (access/identity.py) is resolved per request; what that reader may see is the
Gate's answer (PERM: `visible_chats`, `can_fetch`). A file the reader may not fetch answers
404 exactly like a missing one, with the same body. The site-wide pages that list chats
(the index, feeds/all.atom, stats.html) come from the per-reader renderers, not the static
files, which list everything. Only GET and HEAD exist, and POST for /login and /logout;
dot-files (the index, the publishers' state) are never served, nor folders as listings.
Archived media (`/media/..`) are served as downloads, but for a few image formats, and
sandboxed: nothing someone sent runs in the site's origin. `/search` answers HTML and
`/search.json` the same results as JSON (datasette's habit); JSON errors share one shape:
{"error": {"status": .., "message": ..}}. `/_auth` answers nginx's auth_request for the
static files it serves itself (deploy/nginx): 204 may read, 403 may not.

`/metrics` is the Prometheus scrape of this server (publishers/metrics.py, ServeMetrics), on
its own port rather than a second one: the intranet's web server does not pass it through.

The access log names the client, method, path and status, never a query string (feed
tokens travel there) nor a cookie.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from waitress import create_server, wasyncore
from werkzeug.exceptions import HTTPException
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

# SITE_WIDE: the pages that list every chat, which readers get from the renderers.
from chatchannels.publishers.access.gate import SITE_WIDE
from chatchannels.publishers.access.identity import Identity
from chatchannels.publishers.access.reader_pages import Page
from chatchannels.publishers.access.readers import ANONYMOUS, Reader
from chatchannels.publishers.access.signin import SignIn
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
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none';"
    " form-action 'self'; frame-ancestors 'none'",
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
# Every name the site writes (paths.py: encoded chat names, months, media digests, the
# site's own pages) is made of these, and never starts with a dot. A path segment of
# anything else names no file: `..`, dot-files, NUL, `%`, backslashes are all 404.
SEGMENT = re.compile(r"[A-Za-z0-9_~()-][A-Za-z0-9._~()-]*")
# Feed tokens count only where Atom readers go.
FEEDS = "feeds/"
TYPES = {".atom": "application/atom+xml", ".css": "text/css", ".html": "text/html"}
# A POST is a sign-in form: anything larger is not one.
MAX_FORM_BYTES = 16 * 1024


class Gate(Protocol):
    """What a reader may see (PERM, publishers/access/gate.py)."""

    def visible_chats(self, reader: Reader) -> frozenset[str] | None: ...

    def can_fetch(self, reader: Reader, site_path: str) -> bool: ...


class ReaderPages(Protocol):
    """The site-wide pages as one reader may see them (PERM's renderers); None: no such page
    for this reader."""

    def render(self, reader: Reader, site_path: str) -> Page | None: ...


@dataclass(frozen=True)
class Access:
    """Who reads (None: nobody signs in, every request is ANONYMOUS) and what they see."""

    gate: Gate
    identity: Identity | None = None
    pages: ReaderPages | None = None
    signin: SignIn | None = None


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


def site_path_of(url_path: str) -> str | None:
    """The site file a decoded URL path names (`/` and folders: their index.html), or None
    when it cannot name one. The same check serves files and answers nginx (/_auth), so both
    agree on what a URL is."""
    parts = url_path.split("/")
    if parts[:1] != [""]:
        return None
    parts = parts[1:]
    if parts and parts[-1] == "":
        parts[-1] = "index.html"
    if not parts:
        parts = ["index.html"]
    if not all(SEGMENT.fullmatch(p) for p in parts):
        return None
    path = "/".join(parts)
    if parts[0] == "media" and not MEDIA_PATH.fullmatch(path):
        return None
    return path


class SearchService:
    """Opens the index lazily, so `serve` starts before the first `publish` finished."""

    def __init__(self, site_dir: Path) -> None:
        self.site_dir = site_dir
        self.backend: SearchBackend | None = None
        self._lock = threading.Lock()
        # Times on the search page in the zone the site's pages use (its state says which).
        self.renderer = PageRenderer(site_time_zone(site_dir) or "UTC")

    def search(
        self, query: str, sort: str, limit: int, offset: int, chats: frozenset[str] | None
    ) -> SearchResults:
        with self._lock:
            if self.backend is None:
                self.backend = WhooshBackend(index_dir(self.site_dir), create=False)
        return self.backend.search(query, sort=sort, limit=limit, offset=offset, chats=chats)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


class SiteApp:
    """The WSGI application: one reader per request, then the route."""

    def __init__(
        self, site_dir: Path, access: Access, metrics: ServeMetrics, search: SearchService
    ) -> None:
        self.site_dir = site_dir.absolute()
        self.access = access
        self.metrics = metrics
        self.search_service = search

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
        request = Request(environ)
        request.max_content_length = MAX_FORM_BYTES
        request.max_form_memory_size = MAX_FORM_BYTES
        route = "static"
        try:
            route, response = self.dispatch(request)
        except HTTPException as exc:
            response = exc.get_response(environ)
        except psycopg.OperationalError as exc:
            log.error("the readers' store cannot be read: %s", str(exc).splitlines()[0])
            response = Response("The archive cannot tell who you are right now.\n", 503)
        except Exception:
            log.exception("%s %s failed", request.method, _printable(request.path))
            response = Response("Internal error.\n", 500)
        for name, value in SECURITY_HEADERS.items():
            if route == "media" and name == "Content-Security-Policy":
                value += "; sandbox"
            response.headers.setdefault(name, value)
        self.metrics.answered(route, response.status_code)
        identity = self.access.identity
        log.info(
            "%s %s %s %s",
            identity.client_address(request.remote_addr, request.headers)
            if identity
            else request.remote_addr,
            request.method,
            _printable(request.path),
            response.status_code,
        )
        return response(environ, start_response)

    def dispatch(self, request: Request) -> tuple[str, Response]:
        # waitress takes a request target without its leading slash (`GET x`) as `/x`: HTTP
        # has no such request (RFC 9112, origin-form), so it is refused, not guessed at.
        if not request.environ.get("REQUEST_URI", "/").startswith("/"):
            return "static", Response("Bad request target.\n", 400, content_type="text/plain")
        path = request.path
        if path == "/metrics":
            body = generate_latest(self.metrics.registry)
            return "metrics", _only_reads(request) or _bytes(body, CONTENT_TYPE_LATEST)
        signin = self.access.signin
        if path in ("/login", "/logout"):
            if signin is None:
                return "signin", self.not_found(request, ANONYMOUS)
            refused = _only(request, ("GET", "HEAD", "POST"))
            if refused:
                return "signin", refused
            reader = self.reader(request, None)
            if path == "/login":
                return "signin", signin.login(request, reader)
            return "signin", signin.logout(request, reader)
        refused = _only_reads(request)
        if refused:
            return "static", refused
        if path == "/_auth":
            return "auth", self.auth(request)
        if path in ("/search", "/search.json"):
            as_json = path.endswith(".json")
            started = time.perf_counter()
            response = self.search(request, self.reader(request, None), as_json)
            self.metrics.search_seconds.labels("json" if as_json else "html").observe(
                time.perf_counter() - started
            )
            return ("search_json" if as_json else "search"), response
        site_path = site_path_of(path)
        route = "media" if site_path and site_path.startswith("media/") else "static"
        token = request.args.get("token") if site_path and site_path.startswith(FEEDS) else None
        reader = self.reader(request, token)
        if site_path is None:
            return route, self.not_found(request, reader)
        if site_path in SITE_WIDE and self.access.pages is not None:
            page = self.access.pages.render(reader, site_path)
            if page is None:
                return "page", self.not_found(request, reader)
            response = _bytes(page.body, page.content_type)
            response.headers["Cache-Control"] = "private, no-store"
            return "page", response
        return route, self.static(request, reader, site_path)

    def reader(self, request: Request, token: str | None) -> Reader:
        identity = self.access.identity
        if identity is None:
            return ANONYMOUS
        return identity.resolve(request.remote_addr, request.headers, request.cookies, token)

    def static(self, request: Request, reader: Reader, site_path: str) -> Response:
        file = self.site_dir / site_path
        if not file.is_file():
            folder_index = f"{site_path}/index.html"
            # A folder without its slash: where its index is, if the reader may see it.
            if (
                file.is_dir()
                and (file / "index.html").is_file()
                and self.access.gate.can_fetch(reader, folder_index)
            ):
                return Response(status=301, headers={"Location": request.path + "/"})
            return self.not_found(request, reader)
        if not self.access.gate.can_fetch(reader, site_path):
            return self.not_found(request, reader)
        media = site_path.startswith("media/")
        ctype = media_type(str(file)) if media else _file_type(site_path)
        response = send_file(
            file, request.environ, mimetype=ctype, conditional=True, etag=True, max_age=None
        )
        # Answers differ by reader: no shared cache may keep one for another.
        response.headers["Cache-Control"] = "private, no-cache"
        # send_file names the file inline; only a download is told to be one.
        del response.headers["Content-Disposition"]
        if media and ctype == DOWNLOAD_TYPE:
            response.headers["Content-Disposition"] = "attachment"
        return response

    def auth(self, request: Request) -> Response:
        """nginx's auth_request: may the request's reader fetch X-Original-URI?"""
        original = urlsplit(request.headers.get("X-Original-URI", ""))
        try:
            site_path = site_path_of(unquote(original.path, errors="strict"))
        except UnicodeDecodeError:
            site_path = None
        token = None
        if site_path and site_path.startswith(FEEDS):
            token = parse_qs(original.query).get("token", [None])[0]
        reader = self.reader(request, token)
        allowed = (
            site_path is not None
            and site_path not in SITE_WIDE
            and self.access.gate.can_fetch(reader, site_path)
        )
        response = Response(status=204 if allowed else 403)
        response.headers["Cache-Control"] = "no-store"
        return response

    def not_found(self, request: Request, reader: Reader) -> Response:
        page = self.search_service.renderer.env.get_template("not_found.html").render(
            root="/",
            reader=reader.name,
            next_query=urlencode({"next": request.path}),
        )
        response = _bytes(page.encode(), "text/html; charset=utf-8", status=404)
        return response

    def search(self, request: Request, reader: Reader, as_json: bool) -> Response:
        params = request.args
        query = params.get("q", "")
        sort = params.get("sort", "relevance")
        status, results, error = 200, None, ""
        limit, offset = DEFAULT_LIMIT, 0
        try:
            limit = min(max(int(params.get("limit", str(DEFAULT_LIMIT))), 1), MAX_LIMIT)
            offset = int(params.get("offset", "0"))
            if not 0 <= offset <= MAX_OFFSET:
                raise QueryError(f"offset must be between 0 and {MAX_OFFSET}")
            if sort not in SORTS:
                raise QueryError(f"sort must be one of {', '.join(SORTS)}")
            if query.strip():
                chats = self.access.gate.visible_chats(reader)
                results = self.search_service.search(query, sort, limit, offset, chats)
        except (QueryError, ValueError) as exc:
            status, error = 400, str(exc)
        except IndexMissingError as exc:
            status, error = 503, str(exc)
        if as_json:
            if error:
                payload = {"error": {"status": status, "message": error}}
            else:
                payload = (results or SearchResults(query, sort, 0, (), offset, limit)).as_json()
            body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
            return _bytes(body, "application/json; charset=utf-8", status)
        renderer = self.search_service.renderer
        page = renderer.search_page(query, sort, results, error, DEFAULT_LIMIT)
        return _bytes(page.encode(), "text/html; charset=utf-8", status)


def _file_type(site_path: str) -> str:
    suffix = Path(site_path).suffix
    return TYPES.get(suffix) or mimetypes.guess_type(site_path)[0] or DOWNLOAD_TYPE


def _bytes(body: bytes, ctype: str, status: int = 200) -> Response:
    response = Response(body, status=status, content_type=ctype)
    response.headers["Cache-Control"] = "no-store"
    return response


def _only(request: Request, methods: tuple[str, ...]) -> Response | None:
    if request.method in methods:
        return None
    response = Response("Method not allowed.\n", 405, content_type="text/plain")
    response.headers["Allow"] = ", ".join(methods)
    return response


def _only_reads(request: Request) -> Response | None:
    return _only(request, ("GET", "HEAD"))


def _printable(text: str) -> str:
    """A path fit for one log line: control and odd characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


class SiteServer:
    """waitress serving the app, with the stop and close of socketserver's servers (so a
    test or the command runs it in a thread and stops it the same way)."""

    def __init__(self, app: SiteApp, host: str, port: int, threads: int = 8) -> None:
        self.app = app
        self._map: dict = {}
        self._server = create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            ident="chatchannels",
            # Which proxies to believe is identity's call (`trusted_proxies`, networks);
            # waitress's own takes one address and would drop X-Forwarded-For first.
            clear_untrusted_proxy_headers=False,
        )
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def server_address(self) -> tuple[str, int]:
        return self._server.effective_host, int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.5, map=self._map, count=1)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stops serve_forever (running in another thread) and waits until it returned."""
        self._stop.set()
        self._server.pull_trigger()
        self._stopped.wait()

    def server_close(self) -> None:
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)
        self.app.search_service.close()
        identity = self.app.access.identity
        if identity is not None:
            identity.directory.close()


def make_server(
    site_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    metrics: ServeMetrics | None = None,
    *,
    access: Access,
) -> SiteServer:
    """A server for the site (not yet serving: call serve_forever). Bound to localhost unless
    told otherwise, since the archive is for the intranet's web server to put in front."""
    app = SiteApp(site_dir, access, metrics or ServeMetrics(), SearchService(site_dir))
    return SiteServer(app, host, port)
