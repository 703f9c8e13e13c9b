"""`chatchannels publish`, `search` and `serve`: flags in, one library call, output out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatchannels.errors import CommandError
from chatchannels.options import (
    batch_size_option,
    json_option,
    metrics_port_option,
    quiet_option,
    site_dir_option,
    store_options,
)
from chatchannels.settings import Settings


def _site_dir(settings: Settings, site_dir: Path | None) -> Path:
    return site_dir if site_dir is not None else settings.site_dir


@click.command()
@store_options
@click.option("--once", is_flag=True, help="Catch up with the store, then exit.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Delete the site's pages, feeds and index first (from zero); with --only, that"
    " one's output alone.",
)
@site_dir_option
# publishing.DEFAULT_BATCH, written out: importing it would load Whoosh for --help.
@batch_size_option(10_000, "store changes")
@click.option("--poll", "poll_s", default=5.0, show_default=True, help="Seconds between polls.")
# publishing.PUBLISHERS, written out for the same reason.
@click.option(
    "--only",
    type=click.Choice(["site", "search"]),
    help="Keep only the site (pages and feeds) or only the search index: two processes"
    " keep them apart, so the pages never wait for the index.",
)
@metrics_port_option("publisher_metrics_port")
@json_option
@quiet_option
@click.pass_obj
def publish(
    settings: Settings,
    once: bool,
    rebuild: bool,
    site_dir: Path | None,
    batch_size: int,
    poll_s: float,
    only: str | None,
    metrics_port: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Keep the static site, Atom feeds and search index current from the store's changes.

    Follows the change stream (NOTIFY, plus a poll) until interrupted; with --once it catches
    up and exits. Running it twice is harmless: with nothing new it changes nothing. Each
    publisher's summary goes to stderr (not with --quiet), or to stdout as JSON (--json).
    """
    from chatchannels.metrics import metrics_endpoint
    from chatchannels.publishers.files import OutputFull
    from chatchannels.publishers.metrics import PublisherMetrics
    from chatchannels.publishers.publishing import PUBLISHERS
    from chatchannels.publishers.publishing import publish as run
    from chatchannels.store_contract import schema_dsn

    target = _site_dir(settings, site_dir)
    metrics = PublisherMetrics()
    port = settings.publisher_metrics_port if metrics_port is None else metrics_port
    try:
        with metrics_endpoint(metrics.registry, port, settings.metrics_host):
            results = run(
                schema_dsn(settings.reader_postgres_dsn, settings.schema),
                target,
                once=once,
                rebuild=rebuild,
                batch_size=batch_size,
                poll_s=poll_s,
                media_dir=settings.media_root,
                metrics=metrics,
                time_zone=settings.time_zone,
                only=PUBLISHERS if only is None else (only,),
            )
    except OutputFull as exc:
        raise CommandError(
            f"cannot write the site in {target}: {exc}; free some space and publish again",
            kind="site",
        ) from exc
    except KeyboardInterrupt:
        return
    if as_json:
        found = {
            "site_dir": str(target),
            "publishers": [
                {
                    "publisher": r.publisher,
                    "changes": r.changes,
                    "batches": r.batches,
                    "watermark": r.watermark,
                }
                for r in results
            ],
        }
        click.echo(json.dumps(found, sort_keys=True))
    elif not quiet:
        for r in results:
            click.echo(
                f"{r.publisher}: {r.changes} changes in {r.batches} batches,"
                f" now at change {r.watermark} ({target})",
                err=True,
            )


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--sort",
    type=click.Choice(["relevance", "time"]),
    default="relevance",
    show_default=True,
    help="Best match first, or newest first.",
)
@click.option("--limit", default=20, show_default=True, help="Most hits to show.")
@site_dir_option
@json_option
@quiet_option
@click.pass_obj
def search(
    settings: Settings,
    query: tuple[str, ...],
    sort: str,
    limit: int,
    site_dir: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Search the archive: words, "phrases", OR, NOT/-word, author:, chat:, date:YYYY-MM,
    after:/before:YYYY-MM-DD. Each hit names the page and anchor of the message.

    It reads the site's search index (--site-dir), not the store: `publish` keeps it current.
    """
    from chatchannels.publishers.publishing import index_dir
    from chatchannels.publishers.search_index import WhooshBackend

    target = _site_dir(settings, site_dir)
    text = " ".join(query)
    backend = WhooshBackend(index_dir(target), create=False)
    try:
        results = backend.search(text, sort=sort, limit=limit)
    finally:
        backend.close()
    if as_json:
        click.echo(json.dumps(results.as_json(), ensure_ascii=False, indent=2, sort_keys=True))
        return
    if not quiet:
        click.echo(f"{results.total} messages match {text!r}", err=True)
    for hit in results.hits:
        when = hit.posted_utc.strftime("%Y-%m-%d %H:%M UTC")
        who = f"{hit.author_name} ({hit.author})" if hit.author_name else hit.author
        snippet = "".join(
            click.style(part, bold=True, reverse=True) if marked else part
            for part, marked in hit.snippet
        )
        chat = hit.chat if hit.chat_title == hit.chat else f"{hit.chat_title} ({hit.chat})"
        click.echo(f"{when}  {chat}  {who}")
        click.echo(f"  {' '.join(snippet.split())}")
        click.echo(f"  {target / hit.url}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, help="Port to bind.")
@site_dir_option
@store_options
@quiet_option
@click.pass_obj
def serve(settings: Settings, host: str, port: int, site_dir: Path | None, quiet: bool) -> None:
    """Serve the site, /search (HTML) and /search.json, and the readers' sign-in.

    It reads the site folder and its search index (`publish` keeps them current), and from
    the store only who the readers are and what they may see (README: Readers).
    """
    from chatchannels.publishers.access.wiring import reader_access
    from chatchannels.publishers.serve import make_server

    target = _site_dir(settings, site_dir)
    access = reader_access(settings, target)
    try:
        server = make_server(target, host, port, access=access)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {host}:{port}: {exc}; is another server there? try --port",
            kind="serve",
        ) from exc
    if not quiet:
        click.echo(f"serving {target} on http://{host}:{server.server_address[1]}/", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)
