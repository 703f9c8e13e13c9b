"""The site after a replay: published from zero into a new folder, then swapped in.

The publishers number their position by change_seq, which a rebuilt store hands out anew,
so the live site cannot follow the swapped store; it is rebuilt beside it instead, from the
replay schema (the publishers' connection gets that schema as its search_path), before the
store is swapped, and put in place right after.

The swap is atomic when the site folder is a symlink (`site -> site.replay-<stamp>`): a new
link is renamed over the old one. A plain folder is renamed away, then the new one renamed
in: two renames, between which the folder is missing for an instant (deploy/operations.md
recommends the symlink).

Publishing is a later stage than the processor, so the replay does not import it: whoever
calls the replay hands it a `SiteBuilder` (chatchannels/replay_wiring.py wires the
publishers' one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatchannels.store_contract import schema_dsn


@dataclass(frozen=True)
class ManifestCheck:
    """A site's month manifests against a store's: how many chat-months either side has,
    and those whose digests differ or that one side lacks, as (chat, month)."""

    months: int
    differing: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SiteBuilder:
    """What a replay needs of the site's publisher."""

    # (DSN whose search_path is the rebuilt store's schema, the live site folder, the new
    # folder): publish the store from zero into the new folder, keeping whatever of the live
    # site a publisher following it would not make again.
    build: Callable[[str, Path, Path], None]
    # A file every site folder the publisher writes holds: only such a folder is removed as
    # the previous site.
    marker: str
    # (DSN as for `build`, a site folder): the site's manifests against those a site
    # published from that store would hold (`replay --verify`).
    check_manifests: Callable[[str, Path], ManifestCheck] | None = None


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


def rebuild_site(
    dsn: str, schema: str, site_dir: Path, stamp: str, builder: SiteBuilder
) -> SiteSwap:
    """Publish the store in `schema` from zero into `<site_dir>.replay-<stamp>` (`builder`),
    to be swapped in at `site_dir`."""
    built = built_site_dir(site_dir, stamp)
    builder.build(schema_dsn(dsn, schema), site_dir, built)
    return SiteSwap(site_dir.absolute(), built, stamp)


def built_site_dir(site_dir: Path, stamp: str) -> Path:
    site_dir = site_dir.absolute()
    return site_dir.with_name(f"{site_dir.name}.replay-{stamp}")


def remove_previous_site(swap: SiteSwap, builder: SiteBuilder) -> bool:
    """Remove the site a swap displaced, if it is one the publishers wrote (it has their
    state file, `builder.marker`): never an arbitrary folder an old symlink happened to
    point at."""
    previous = swap.previous
    if previous is None or not (previous / builder.marker).is_file():
        return False
    shutil.rmtree(previous)
    return True
