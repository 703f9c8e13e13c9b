"""The site-wide pages as one reader may see them: the index of chats, the feed of all chats
(`feeds/all.atom`) and the archive's statistics (`stats.html`).

The static files list every chat, so only administrators get those (gate.py); everyone else
gets these, rendered by the publishers' own renderers from the chats they may read: the
index lists them, the feed holds their latest messages, and the statistics are the sums of
their tallies (the rows the site publisher keeps per chat, tallies.py), exactly as the
static page sums every chat's. Nothing else of the site is per reader: a chat's own pages
are static files, which the Gate lets a reader fetch or not.

Each page is kept per set of visible chats until the store (or, for the statistics, the
site's tallies) changes, so readers who see the same chats share one rendering.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from chatchannels.publishers import feeds, paths, store
from chatchannels.publishers.access.connection import KeptConnection
from chatchannels.publishers.access.gate import Gate
from chatchannels.publishers.access.readers import Reader
from chatchannels.publishers.model import ChatSummary
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.site import site_time_zone
from chatchannels.publishers.statistics import Statistics
from chatchannels.publishers.tallies import read_statistics

HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml"


@dataclass(frozen=True)
class Page:
    content_type: str
    body: bytes


# Renderings kept (per page and set of visible chats) while the store is unchanged.
REMEMBERED_PAGES = 256


class ReaderPages:
    """`time_zone`: the one the site was published in (its state file says it; this is the
    fallback for a site not yet published)."""

    def __init__(
        self, gate: Gate, conn: KeptConnection, site_dir: Path, time_zone: str = "UTC"
    ) -> None:
        self.gate = gate
        self.conn = conn
        self.site_dir = site_dir
        self.time_zone = site_time_zone(site_dir) or time_zone
        self.renderer = PageRenderer(self.time_zone)
        self._lock = threading.Lock()
        self._pages: dict[tuple, bytes] = {}
        self._summaries: tuple[tuple, list[ChatSummary]] | None = None

    def render(self, reader: Reader, site_path: str) -> Page | None:
        """The page at a site-wide path (`""` is the index), None for any other path."""
        found = {
            "": (self.index, HTML),
            "index.html": (self.index, HTML),
            paths.ALL_FEED_PATH: (self.all_feed, ATOM),
            paths.STATS_PATH: (self.stats, HTML),
        }.get(site_path)
        if found is None:
            return None
        render, content_type = found
        return Page(content_type, render(reader))

    def index(self, reader: Reader) -> bytes:
        """The index of the chats the reader may read."""

        def render(visible: frozenset[str] | None) -> bytes:
            chats = [s for s in self._every_summary() if visible is None or s.name in visible]
            return self.renderer.site_index(chats).encode()

        return self._kept("index", reader, (), render)

    def all_feed(self, reader: Reader) -> bytes:
        """The latest messages of the chats the reader may read."""

        def render(visible: frozenset[str] | None) -> bytes:
            def read(conn):
                if visible is None:
                    latest = store.read_latest(conn, None, feeds.CURRENT_ENTRIES)
                else:
                    latest = store.read_latest_in(conn, visible, feeds.CURRENT_ENTRIES)
                return latest, store.read_media(conn, latest)

            latest, media = self.conn.run(read)
            chats = self.gate.catalog.current().chats
            titles = {m.chat: chats[m.chat].title for m in latest if m.chat in chats}
            return feeds.all_feed(latest, media, titles)

        return self._kept("feed", reader, (), render)

    def stats(self, reader: Reader) -> bytes:
        """The statistics of the chats the reader may read, summed from their tallies."""
        db_path = self.site_dir / DB_FILE
        try:
            stat = db_path.stat()
            tallies_version = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            tallies_version = None

        def render(visible: frozenset[str] | None) -> bytes:
            stats = self._statistics(db_path, visible) if tallies_version else None
            stats = stats or Statistics((), (), (), self.time_zone)
            return self.renderer.stats_page(None, stats).encode()

        return self._kept("stats", reader, tallies_version, render)

    def _statistics(self, db_path: Path, visible: Collection[str] | None) -> Statistics:
        # Read-only: the site publisher owns the file; a missing table is a site published
        # before statistics existed, which has none to show yet.
        db = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            return read_statistics(db, visible, self.time_zone)
        except sqlite3.OperationalError:
            return Statistics((), (), (), self.time_zone)
        finally:
            db.close()

    def _every_summary(self) -> list[ChatSummary]:
        """Every chat's summary, read once per version of the store for every reader."""
        version = self.gate.catalog.current().version
        with self._lock:
            if self._summaries is not None and self._summaries[0] == version:
                return self._summaries[1]
        found = self.conn.run(store.read_chat_summaries)
        with self._lock:
            self._summaries = (version, found)
        return found

    def _kept(
        self,
        kind: str,
        reader: Reader,
        extra: object,
        render: Callable[[frozenset[str] | None], bytes],
    ) -> bytes:
        visible = self.gate.visible_chats(reader)
        key = (kind, self.gate.catalog.current().version, extra, visible)
        with self._lock:
            found = self._pages.get(key)
        if found is None:
            found = render(visible)
            with self._lock:
                if len(self._pages) >= REMEMBERED_PAGES:
                    self._pages.clear()
                self._pages[key] = found
        return found
