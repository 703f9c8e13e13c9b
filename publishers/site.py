"""The static site publisher: HTML pages and Atom feeds under the site folder.

A batch of changes names the pages it touches: a message change touches its (chat, month)
page and archive, its chat's index page (the calendar of months), statistics page and current
feed. Every page of a chat carries its title (names.chat_title: its topic, else its people's
names), so a chat change, or a user change of someone the title may name
(store.chats_titled_by), touches all of that chat's pages. The site index, the whole-archive
feed and statistics follow every batch; the statistics are counted again only for the touched
chats (tallies.py). When a month appears or disappears, its neighbouring months are
re-rendered too, because their prev/next links changed. Nothing else is re-rendered, and
every page is a function of the store alone, so publishing incrementally and publishing from
zero give the same files (tests/integration/publishers/test_site.py).

Beside each month page lies its manifest (`<month>.manifest.json`, manifests.py): the
digest of the month's canonical history, written and removed with the page.

Where each message was published is kept in `.chatchannels-pages.db` (placements.py), so a
message that moves leaves its old page. The watermark lives in the site
(`.chatchannels-site.json`), written after the pages and placements, with the time zone the
pages tell their times in: a site is in one zone, so another zone needs --rebuild.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

from chatchannels.publishers import feeds, manifests, paths, store
from chatchannels.publishers.charts import CHART_CSS
from chatchannels.publishers.files import (
    file_exists,
    remove_file,
    remove_stale_temps,
    sync_to_disk,
    write_atomic,
)
from chatchannels.publishers.model import Change, Chat, MonthCount
from chatchannels.publishers.pages import STYLE_CSS, PageRenderer
from chatchannels.publishers.placements import ALL_MONTHS, Placements
from chatchannels.publishers.tallies import Tallies
from chatchannels.publishers.thumbnails import ensure_thumbnails

STATE_FILE = ".chatchannels-site.json"
# While the store is moving, a render waits this many times as long as the last one took
# since it ended: a month touched by every batch of an import would be rendered once per
# batch (an import of 200,000 messages: 8,647 renders of its 1,752 months, four fifths of
# the publisher's work). So rendering takes at most a quarter of the time while the store
# moves, and a quiet store is rendered at once.
RENDER_SPACING = 3
# The site's link to the archive of imported media (settings' media_dir), which lives
# outside the site: pages link `media/<sha256[:2]>/<sha256>` relative to themselves.
MEDIA_LINK = "media"


class SiteStateError(ValueError):
    """The site's recorded state cannot be read; the message says which file and what to do."""


class SitePublisher:
    name = "site"

    def __init__(
        self,
        site_dir: Path,
        time_zone: str = "UTC",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site_dir = site_dir
        self.time_zone = time_zone
        remove_stale_temps(site_dir)
        self.renderer = PageRenderer(time_zone)
        self.placements = Placements(site_dir)
        self.tallies = Tallies(self.placements.db, time_zone)
        # A site published before it had statistics: every chat is counted (and gets its
        # statistics page) once, at the first catch-up, as a rebuild would.
        self.count_every_chat = self.tallies.created and (site_dir / STATE_FILE).exists()
        self.pages_written = 0
        self.clock = clock
        # Whether changes were applied since the last caught_up; when the last render ended
        # and how long it took.
        self.moved = False
        self.rendered: tuple[float, float] | None = None

    def watermark(self) -> int:
        try:
            state = json.loads((self.site_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise SiteStateError(
                f"site state {self.site_dir / STATE_FILE} is unreadable ({exc});"
                " publish with --rebuild to start over"
            ) from exc
        try:
            seq = int(state["change_seq"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SiteStateError(
                f"site state {self.site_dir / STATE_FILE} has no change_seq;"
                " publish with --rebuild to start over"
            ) from exc
        rendered_in = state.get("time_zone", "UTC")
        if seq and rendered_in != self.time_zone:
            raise SiteStateError(
                f"the site {self.site_dir} tells its times in {rendered_in!r} and the time_zone"
                f" setting is {self.time_zone!r}; publish with --rebuild to re-render every page"
                " in the new zone"
            )
        return seq

    def idle(self) -> None:
        pass

    def close(self) -> None:
        self.placements.close()

    def apply(self, conn: psycopg.Connection, changes: Sequence[Change]) -> None:
        months: set[tuple[str, str]] = set()
        chats: set[str] = set()
        message_ids = sorted({c.key for c in changes if c.kind == "message"})
        retitled = {c.key for c in changes if c.kind == "chat"}
        retitled.update(store.chats_titled_by(conn, {c.key for c in changes if c.kind == "user"}))
        for change in changes:
            if change.kind == "message" and change.chat is not None:
                chats.add(change.chat)
                if change.posted_utc is not None:
                    months.add((change.chat, paths.month_of(change.posted_utc)))
        months.update((chat, ALL_MONTHS) for chat in retitled)
        # Where each changed message was published before and where it is now: a message
        # that moved month (or chat) must leave its old page.
        before = self.placements.lookup(message_ids)
        now = {
            id_: (chat, paths.month_of(posted))
            for id_, chat, posted in store.read_places(conn, message_ids)
        }
        for chat, month in [*before.values(), *now.values()]:
            chats.add(chat)
            months.add((chat, month))
        self.placements.record(
            ((id_, chat, month) for id_, (chat, month) in now.items()),
            (id_ for id_ in message_ids if id_ not in now),
            [*months, *((chat, "") for chat in chats)],
        )
        state = {"change_seq": changes[-1].seq, "time_zone": self.time_zone}
        self._write(STATE_FILE, json.dumps(state).encode() + b"\n")
        self.moved = True

    def caught_up(self, conn: psycopg.Connection, finish: bool = True) -> float | None:
        """Render the pages the batches since the last render touched (placements.py, which
        keeps them across restarts); unless `finish`, put that off while the store is moving
        (RENDER_SPACING): the seconds until it is due, None once rendered."""
        moved, self.moved = self.moved, False
        if self.count_every_chat:
            chats = [(c.name, "") for c in store.read_chat_summaries(conn)]
            self.placements.record((), (), chats)
            self.count_every_chat = False
        pending = self.placements.pending()
        if not pending:
            return None
        if not finish and moved and self.rendered is not None:
            ended, took = self.rendered
            due = ended + RENDER_SPACING * took - self.clock()
            if due > 0:
                return due
        started = self.clock()
        self.tallies.refresh(conn, list(pending))
        for chat, months in pending.items():
            self._publish_chat(conn, chat, [m for m in months if m])
        self._publish_top(conn)
        sync_to_disk()
        self.placements.clear_pending()
        ended = self.clock()
        self.rendered = (ended, ended - started)
        return None

    def _write(self, rel: str, data: bytes) -> None:
        self.pages_written += write_atomic(self.site_dir, rel, data)

    def _publish_chat(self, conn: psycopg.Connection, chat: str, touched: list[str]) -> None:
        counts = store.read_months(conn, chat)
        months = [c.month for c in counts]
        if ALL_MONTHS in touched:
            touched = sorted({*months, *(m for m in touched if m != ALL_MONTHS)})
        render = set(touched)
        for month in touched:
            if (month in months) != file_exists(self.site_dir, paths.month_page_path(chat, month)):
                render.update(m for m in _neighbours(months, month) if m is not None)
        row = store.read_chat(conn, chat)
        info = row or store.chat_without_row(conn, chat)
        for month in sorted(render):
            self._publish_month(conn, info, month, months)
        self._publish_chat_index(conn, info, row is not None, counts)

    def _publish_month(
        self, conn: psycopg.Connection, chat: Chat, month: str, months: list[str]
    ) -> None:
        page = paths.month_page_path(chat.name, month)
        archive = paths.archive_feed_path(chat.name, month)
        manifest = paths.month_manifest_path(chat.name, month)
        if month not in months:
            remove_file(self.site_dir, page)
            remove_file(self.site_dir, archive)
            remove_file(self.site_dir, manifest)
            return
        messages = store.read_month(conn, chat.name, month)
        media = store.read_media(conn, messages)
        thumbs = ensure_thumbnails(self.site_dir, self.site_dir / MEDIA_LINK, media.values())
        prev_month, next_month = _neighbours(months, month)
        html = self.renderer.month_page(
            chat, month, messages, prev_month, next_month, media, thumbs
        )
        self._write(page, html.encode())
        self._write(
            archive,
            feeds.archive_feed(chat.name, month, messages, prev_month, media, title=chat.title),
        )
        self._write(
            manifest,
            manifests.encode_manifest(manifests.month_manifest(chat.name, month, messages)),
        )

    def _publish_chat_index(
        self, conn: psycopg.Connection, chat: Chat, has_row: bool, counts: list[MonthCount]
    ) -> None:
        if not has_row and not counts:
            remove_file(self.site_dir, paths.chat_index_path(chat.name))
            remove_file(self.site_dir, paths.chat_feed_path(chat.name))
            remove_file(self.site_dir, paths.chat_stats_path(chat.name))
            return
        self._write(
            paths.chat_index_path(chat.name), self.renderer.chat_index(chat, counts).encode()
        )
        stats = self.tallies.read(chat.name)
        self._write(
            paths.chat_stats_path(chat.name), self.renderer.stats_page(chat, stats).encode()
        )
        latest = store.read_latest(conn, chat.name, feeds.CURRENT_ENTRIES)
        newest = counts[-1].month if counts else None
        media = store.read_media(conn, latest)
        self._write(
            paths.chat_feed_path(chat.name),
            feeds.chat_feed(chat.name, latest, newest, media, title=chat.title),
        )

    def _publish_top(self, conn: psycopg.Connection) -> None:
        self._write("style.css", (STYLE_CSS + CHART_CSS).encode())
        summaries = store.read_chat_summaries(conn)
        self._write("index.html", self.renderer.site_index(summaries).encode())
        stats = self.tallies.read(None)
        self._write(paths.STATS_PATH, self.renderer.stats_page(None, stats).encode())
        latest = store.read_latest(conn, None, feeds.CURRENT_ENTRIES)
        titles = {s.name: s.title for s in summaries}
        self._write(
            paths.ALL_FEED_PATH, feeds.all_feed(latest, store.read_media(conn, latest), titles)
        )


def site_time_zone(site_dir: Path) -> str | None:
    """The time zone a published site tells its times in; None if it has no readable state."""
    try:
        state = json.loads((site_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state.get("time_zone", "UTC") if isinstance(state, dict) else None


def read_site_manifests(site_dir: Path) -> dict[tuple[str, str], str]:
    """(chat, month) -> sha256 of every manifest in a site (chat names as the manifests
    spell them: a shortened file name cannot be decoded). Raises SiteStateError on a
    manifest that cannot be read."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted((site_dir / "chats").glob(f"*/*{paths.MANIFEST_SUFFIX}")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            found[(doc["chat"], doc["month"])] = doc["sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SiteStateError(f"manifest {path} is unreadable ({exc})") from exc
    return found


def store_manifests(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    """(chat, month) -> sha256 of every chat-month in the store: the manifests a site
    published from it holds once caught up."""
    found: dict[tuple[str, str], str] = {}
    for summary in store.read_chat_summaries(conn):
        for count in store.read_months(conn, summary.name):
            messages = store.read_month(conn, summary.name, count.month)
            found[(summary.name, count.month)] = manifests.month_manifest(
                summary.name, count.month, messages
            )["sha256"]
    return found


def link_media(site_dir: Path, media_dir: Path) -> None:
    """Make `<site>/media` a symlink to `media_dir`, unless it is one already. Replaced
    atomically when it points elsewhere; anything else in its place is the operator's, so
    it is an error rather than removed."""
    link = site_dir / MEDIA_LINK
    target = Path(os.path.abspath(media_dir))
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
    elif link.exists():
        raise SiteStateError(
            f"{link} is not a symlink: it is where the site links the media folder"
            f" {target}; move it away"
        )
    staged = site_dir / f".{MEDIA_LINK}.link-{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(target, target_is_directory=True)
    os.replace(staged, link)


def _neighbours(months: list[str], month: str) -> tuple[str | None, str | None]:
    """The months with messages just before and after `month` (which need not have any)."""
    left = bisect.bisect_left(months, month)
    right = bisect.bisect_right(months, month)
    return (months[left - 1] if left > 0 else None, months[right] if right < len(months) else None)
