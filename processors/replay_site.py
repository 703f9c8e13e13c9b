"""The site after a replay: published from zero into a new folder, then swapped in.

The publishers number their position by change_seq, which a rebuilt store hands out anew,
so the live site cannot follow the swapped store; it is rebuilt beside it instead, from the
replay schema (the publishers' connection gets that schema as its search_path), before the
store is swapped, and put in place right after.

The swap is atomic when the site folder is a symlink (`site -> site.replay-<stamp>`): a new
link is renamed over the old one. A plain folder is renamed away, then the new one renamed
in: two renames, between which the folder is missing for an instant (deploy/operations.md
recommends the symlink).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chatchannels.publishers.publishing import publish
from chatchannels.publishers.site import MEDIA_LINK, STATE_FILE


@dataclass
class SiteSwap:
    """A site built in `built`, to be put at `site_dir`; `previous` is what it displaced."""

    site_dir: Path
    built: Path
    stamp: str
    previous: Path | None = None
    committed: bool = False

    def commit(self) -> None:
        """Put the built site in place of the current one."""
        site = self.site_dir
        if site.is_symlink():
            self.previous = site.resolve()
            link = site.with_name(f".{site.name}.link-{self.stamp}")
            # Relative when the built folder is a sibling, so the pair can move together.
            target = self.built.name if self.built.parent == site.parent else self.built
            link.symlink_to(target, target_is_directory=True)
            os.replace(link, site)
        elif site.exists():
            self.previous = site.with_name(f"{site.name}.previous-{self.stamp}")
            site.rename(self.previous)
            self.built.rename(site)
        else:
            self.built.rename(site)
        self.committed = True

    def as_json(self) -> dict[str, str | None]:
        live = self.site_dir.resolve() if self.committed else None
        return {
            "site_dir": str(self.site_dir),
            "serving": None if live is None else str(live),
            "previous": None if self.previous is None else str(self.previous),
        }


def check_site_dir(site_dir: Path) -> str | None:
    """Why the site folder cannot be swapped by renames, or None when it can."""
    site_dir = site_dir.absolute()
    if not site_dir.is_symlink() and os.path.ismount(site_dir):
        return (
            f"site folder {site_dir} is a mount point, which cannot be renamed: point site_dir"
            " at a symlink inside it (deploy/operations.md), or use --no-site"
        )
    if not os.access(site_dir.parent, os.W_OK):
        return f"cannot create folders beside the site folder {site_dir}: {site_dir.parent}"
    return None


def schema_dsn(dsn: str, schema: str) -> str:
    """The DSN with `schema` as the session's search_path (other options kept)."""
    # Schema names are plain identifiers (replay.py checks), so no quoting is needed here.
    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} -c search_path={schema}".strip())


# Changes per batch when publishing from zero. Each batch is a search index segment (two,
# written in parallel, from PARALLEL_BATCH documents on), and more than MAX_SEGMENTS of them
# are merged into one at the end, which took minutes for 300,000 messages in batches of
# the live default: 1,000,000 events (about 400,000 changes) make four batches of this.
REBUILD_BATCH = 100_000


def rebuild_site(
    dsn: str, schema: str, site_dir: Path, stamp: str, media_dir: Path | None = None
) -> SiteSwap:
    """Publish the store in `schema` from zero into `<site_dir>.replay-<stamp>`, its media
    link pointing at `media_dir`, else where the live site's points: a publisher following
    the live site does not make the link again once the new site is swapped in."""
    built = built_site_dir(site_dir, stamp)
    live_link = site_dir / MEDIA_LINK
    if media_dir is None and live_link.is_symlink():
        media_dir = live_link.parent / os.readlink(live_link)
    publish(
        schema_dsn(dsn, schema), built, once=True, batch_size=REBUILD_BATCH, media_dir=media_dir
    )
    return SiteSwap(site_dir.absolute(), built, stamp)


def built_site_dir(site_dir: Path, stamp: str) -> Path:
    site_dir = site_dir.absolute()
    return site_dir.with_name(f"{site_dir.name}.replay-{stamp}")


def remove_previous_site(swap: SiteSwap) -> bool:
    """Remove the site a swap displaced, if it is one the publishers wrote (it has their
    state file): never an arbitrary folder an old symlink happened to point at."""
    previous = swap.previous
    if previous is None or not (previous / STATE_FILE).is_file():
        return False
    shutil.rmtree(previous)
    return True
