"""`publish` as a library call: which publishers, where their output lives, and --rebuild."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from chatchannels.publishers.changes import CatchUp, Publisher, run_publishers
from chatchannels.publishers.files import output_full_as_error
from chatchannels.publishers.metrics import PublisherMetrics
from chatchannels.publishers.paths import STATS_PATH
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.search_index import (
    PARALLEL_BATCH,
    PROCS,
    SearchPublisher,
    WhooshBackend,
)
from chatchannels.publishers.site import STATE_FILE, SitePublisher, link_media

# Inside the site so that one volume carries both, and a dot-folder so neither `serve` nor
# the nginx snippet ever serves it.
INDEX_DIR = ".search-index"
# Changes per batch: as many as make the search index use its parallel writer (--once).
DEFAULT_BATCH = PARALLEL_BATCH
# What each publisher owns; --rebuild removes exactly these.
OUTPUTS = {
    "site": (
        "chats",
        "feeds",
        "thumbs",
        "index.html",
        "style.css",
        STATS_PATH,
        STATE_FILE,
        DB_FILE,
    ),
    "search": (INDEX_DIR,),
}
PUBLISHERS = tuple(OUTPUTS)


def index_dir(site_dir: Path) -> Path:
    return site_dir / INDEX_DIR


def clear_outputs(site_dir: Path, publishers: Sequence[str] = PUBLISHERS) -> None:
    """Remove what these publishers wrote, so their next run rebuilds from change_seq 0."""
    for name in (name for publisher in publishers for name in OUTPUTS[publisher]):
        target = site_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def publish(
    dsn: str,
    site_dir: Path,
    *,
    once: bool,
    rebuild: bool = False,
    batch_size: int = DEFAULT_BATCH,
    poll_s: float = 5.0,
    stop: threading.Event | None = None,
    media_dir: Path | None = None,
    metrics: PublisherMetrics | None = None,
    time_zone: str = "UTC",
    only: Sequence[str] = PUBLISHERS,
) -> list[CatchUp]:
    """Bring the site, feeds and search index up to date; with `once` return, else follow.
    With `media_dir`, the site's `media` link points at it (site.link_media). A full disk
    under the site raises OutputFull (following, the catch-ups wait for space instead).
    `time_zone` is where the pages tell their times (a site already published in another
    zone is an error unless `rebuild`). `only` names the publishers to run (PUBLISHERS):
    the site and the index can be kept by two processes, so that on a machine with cores to
    spare the pages never wait for the index."""
    with output_full_as_error(), contextlib.ExitStack() as opened:
        if rebuild:
            clear_outputs(site_dir, only)
        site_dir.mkdir(parents=True, exist_ok=True)
        if media_dir is not None:
            link_media(site_dir, media_dir)
        # Each is closed even when opening the next one fails (a stale index, bad state).
        openers: dict[str, Callable[[], Publisher]] = {
            "site": lambda: SitePublisher(site_dir, time_zone),
            # Following the store, the machine is shared: one writer process
            # (search_index.PARALLEL_BATCH).
            "search": lambda: SearchPublisher(
                WhooshBackend(index_dir(site_dir), procs=PROCS if once else 1)
            ),
        }
        publishers: list[Publisher] = []
        for name in PUBLISHERS:
            if name in only:
                publishers.append(openers[name]())
                opened.callback(publishers[-1].close)
        return run_publishers(
            dsn,
            publishers,
            once=once,
            batch_size=batch_size,
            poll_s=poll_s,
            stop=stop,
            metrics=metrics,
        )
