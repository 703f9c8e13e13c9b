"""`chatchannels replay`: flags in, one library call (rebuild.py), progress and numbers out.

`replay_command` makes the command for a site builder (site.py): the command layer outside
the processors hands it the publishers' (chatchannels/replay_wiring.py).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from chatchannels.options import (
    batch_size_option,
    consumer_option,
    json_option,
    kafka_option,
    quiet_option,
    store_options,
    topic_option,
)
from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER
from chatchannels.processors.replay.rebuild import REPLAY_BATCH
from chatchannels.processors.replay.site import SiteBuilder
from chatchannels.settings import Settings

_STAGES = {"replay": "replaying the log", "verify": "digesting", "site": "publishing the site"}


@contextmanager
def _progress_bars(quiet: bool) -> Iterator:
    """A progress callback drawing rich bars on stderr; a no-op when quiet or not a terminal."""
    from rich.console import Console
    from rich.progress import Progress

    disabled = quiet or not sys.stderr.isatty()
    with Progress(console=Console(stderr=True), disable=disabled, transient=False) as bars:
        tasks: dict[str, object] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(_STAGES.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update


def _render(found: dict) -> None:
    click.echo(
        f"replayed {found['records']:,} records of {found['topic']} into {found['schema']}"
        f" in {found['seconds'].get('replay', 0):.1f} s: {found['messages']:,} messages,"
        f" {found['changes']:,} changes, {found['dead_letters']:,} dead letters"
    )
    offsets = ", ".join(f"{p}: {o:,}" for p, o in found["offsets"].items()) or "none"
    click.echo(f"offsets: {offsets}")
    click.echo(f"digest: {found['digest']}")
    check = found["verify"]
    if check is not None:
        click.echo(
            f"verified against {check['live_schema']}: {check['live_messages']:,} messages,"
            f" same digest ({found['seconds'].get('verify', 0):.1f} s)"
        )
        _render_manifests(check["manifests"])
    if found["swapped"]:
        click.echo(f"swapped in: the previous store is schema {found['previous_schema']}")
    if found["site"] is not None:
        site = found["site"]
        click.echo(
            f"site rebuilt in {found['seconds'].get('site', 0):.1f} s and swapped in at"
            f" {site['site_dir']}; previous: {site['previous'] or 'none'}"
        )
    if found["kept"] and not found["swapped"]:
        schema = found["schema"]
        click.echo(f"kept schema {schema} (drop it with: DROP SCHEMA {schema} CASCADE)")


def _render_manifests(check: dict | None) -> None:
    if check is None:
        return
    differing = check["differing"]
    click.echo(
        f"site manifests in {check['site_dir']}: {check['months']:,} chat-months,"
        f" {len(differing):,} differ from the rebuilt store"
    )
    for month in differing[:20]:
        click.echo(f"  {month['chat']} {month['month']}")
    if differing:
        click.echo(
            "  (a site whose publisher is behind the store differs too:"
            " `chatchannels publish --once`, then verify again)"
        )


def replay_command(site: SiteBuilder) -> click.Command:
    """The `replay` command, rebuilding the site (unless --no-site) with `site`."""

    @click.command()
    @store_options
    @kafka_option
    @topic_option
    @consumer_option(DEFAULT_CONSUMER)
    @click.option(
        "--verify",
        is_flag=True,
        help="Compare the rebuilt store's digest with the live, and its month manifests with"
        " the site's.",
    )
    @click.option(
        "--swap", is_flag=True, help="After --verify passed, make the rebuilt store the live one."
    )
    @click.option(
        "--drop-previous", is_flag=True, help="With --swap, drop the previous store and site."
    )
    @click.option(
        "--site-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help=("Site to rebuild and swap with --swap (default: the site_dir setting)."),
    )
    @click.option("--no-site", is_flag=True, help="With --swap, leave the site alone.")
    @click.option(
        "--topic-copy",
        is_flag=True,
        help="The topic is a copy whose CreateTime holds the original append times (topic_copy).",
    )
    @click.option("--keep", is_flag=True, help="Keep the replay schema when not swapping it in.")
    @batch_size_option(REPLAY_BATCH, "raw records")
    @json_option
    @quiet_option
    @click.pass_obj
    def replay(
        settings: Settings,
        group: str,
        verify: bool,
        swap: bool,
        drop_previous: bool,
        site_dir: Path | None,
        no_site: bool,
        topic_copy: bool,
        keep: bool,
        batch_size: int,
        as_json: bool,
        quiet: bool,
    ) -> None:
        """Rebuild the store from the raw log (offset 0) into a new schema, with the same
        processor code, up to the live store's offsets (--group's), from the live store
        (--dsn, --schema).

        --verify compares a digest of the canonical content (messages, revisions, tombstones,
        provenance) with the live store's at the same offsets, and names the differences (exit
        1); it also reports the chat-months whose manifest in the site folder differs from the
        rebuilt store's. --swap (needs --verify) then makes the rebuilt schema the live one in
        one transaction, keeping the old one as previous_<stamp>, and rebuilds the site into a
        new folder that replaces the site folder. Stop `chatchannels process` and `chatchannels
        publish` around a --swap. Without --swap the replay schema is dropped at the end unless
        --keep.
        """
        from chatchannels.processors.replay.rebuild import ReplayMismatch, ReplayOptions
        from chatchannels.processors.replay.rebuild import replay as run_replay

        options = ReplayOptions(
            topic=settings.topic,
            live_schema=settings.schema,
            group=group,
            verify=verify,
            swap=swap,
            drop_previous=drop_previous,
            site_dir=None if no_site else (site_dir or settings.site_dir),
            keep=keep,
            batch_records=batch_size,
            create_time_is_append_time=topic_copy,
        )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            with _progress_bars(quiet) as progress:
                result = run_replay(settings, options, progress=progress, stop=stop, site=site)
        except ReplayMismatch as exc:
            # An answer, not a failure: exit 1 with the differences (errors.py, exit codes).
            if as_json:
                click.echo(json.dumps(exc.result.as_json(), sort_keys=True))
            raise click.ClickException(str(exc)) from exc
        found = result.as_json()
        if as_json:
            click.echo(json.dumps(found, sort_keys=True))
        else:
            _render(found)

    return replay
