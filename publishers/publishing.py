"""`publish` as a library call: which publishers, where their output lives, and --rebuild."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from chatchannels.publishers.changes import CatchUp, Publisher, run_publishers
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.search_index import SearchPublisher, WhooshBackend
from chatchannels.publishers.site import STATE_FILE, SitePublisher

# Inside the site so that one volume carries both, and a dot-folder so neither `serve` nor
# the nginx snippet ever serves it.
INDEX_DIR = ".search-index"
# Everything the site publisher owns; --rebuild removes exactly these.
SITE_OUTPUTS = ("chats", "feeds", "index.html", "style.css", STATE_FILE, DB_FILE, INDEX_DIR)


def index_dir(site_dir: Path) -> Path:
    return site_dir / INDEX_DIR


def clear_outputs(site_dir: Path) -> None:
    """Remove what the publishers wrote, so the next run rebuilds from change_seq 0."""
    for name in SITE_OUTPUTS:
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
    batch_size: int = 5000,
    poll_s: float = 5.0,
    stop: threading.Event | None = None,
) -> list[CatchUp]:
    """Bring the site, feeds and search index up to date; with `once` return, else follow."""
    if rebuild:
        clear_outputs(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    publishers: list[Publisher] = [
        SitePublisher(site_dir),
        SearchPublisher(WhooshBackend(index_dir(site_dir))),
    ]
    try:
        return run_publishers(
            dsn, publishers, once=once, batch_size=batch_size, poll_s=poll_s, stop=stop
        )
    finally:
        for publisher in publishers:
            publisher.close()
