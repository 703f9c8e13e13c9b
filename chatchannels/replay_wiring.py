"""`chatchannels replay` wired to the publishers: the site a replay rebuilds and swaps in.

The replay (processors/replay/) is an earlier stage than the publishers and never imports
them; it takes a SiteBuilder. This module, at the command layer, makes the publishers' one:
publish from zero with `publish`, keep the live site's media link, know a site they
wrote by their state file, and check a site's month manifests against a store.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from chatchannels.processors.replay.cli import replay_command
from chatchannels.processors.replay.site import ManifestCheck, SiteBuilder
from chatchannels.publishers.manifests import differing_months
from chatchannels.publishers.publishing import publish
from chatchannels.publishers.site import (
    MEDIA_LINK,
    STATE_FILE,
    read_site_manifests,
    site_time_zone,
    store_manifests,
)

# Changes per batch when publishing from zero. Each batch is a search index segment (two,
# written in parallel, from PARALLEL_BATCH documents on), and more than MAX_SEGMENTS of them
# are merged into one at the end, which took minutes for 300,000 messages in batches of
# the live default: 1,000,000 events (about 400,000 changes) make four batches of this.
REBUILD_BATCH = 100_000


def publish_site(dsn: str, site_dir: Path, built: Path, media_dir: Path | None = None) -> None:
    """Publish the store at `dsn` from zero into `built`, its media link pointing at
    `media_dir`, else where the live site's (`site_dir`) points, in the live site's time
    zone: a publisher following the live site does not make the link again, nor find its
    pages in another zone, once the new site is swapped in."""
    live_link = site_dir / MEDIA_LINK
    if media_dir is None and live_link.is_symlink():
        media_dir = live_link.parent / os.readlink(live_link)
    zone = site_time_zone(site_dir) or "UTC"
    publish(dsn, built, once=True, batch_size=REBUILD_BATCH, media_dir=media_dir, time_zone=zone)


def check_manifests(dsn: str, site_dir: Path) -> ManifestCheck:
    """The site's month manifests against the ones the store at `dsn` gives."""
    in_site = read_site_manifests(site_dir)
    with psycopg.connect(dsn, autocommit=True) as conn:
        in_store = store_manifests(conn)
    return ManifestCheck(
        len(in_site.keys() | in_store.keys()), tuple(differing_months(in_site, in_store))
    )


PUBLISHED_SITE = SiteBuilder(build=publish_site, marker=STATE_FILE, check_manifests=check_manifests)

replay = replay_command(PUBLISHED_SITE)
