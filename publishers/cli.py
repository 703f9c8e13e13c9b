"""`chatchannels publish`, `search` and `serve`: flags in, one library call, output out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatchannels.settings import Settings

SITE_DIR_HELP = "Site folder (default: the site_dir setting)."


def _site_dir(settings: Settings, site_dir: Path | None) -> Path:
    return site_dir if site_dir is not None else settings.site_dir


@click.command()
@click.option("--once", is_flag=True, help="Catch up with the store, then exit.")
@click.option(
    "--rebuild", is_flag=True, help="Delete the site's pages, feeds and index first (from zero)."
)
@click.option("--site-dir", type=click.Path(file_okay=False, path_type=Path), help=SITE_DIR_HELP)
# publishing.DEFAULT_BATCH, written out: importing it would load Whoosh for --help.
@click.option("--batch-size", default=10_000, show_default=True, help="Changes per batch.")
@click.option("--poll", "poll_s", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--quiet", is_flag=True, help="No summary on stderr.")
@click.pass_obj
def publish(
    settings: Settings,
    once: bool,
    rebuild: bool,
    site_dir: Path | None,
    batch_size: int,
    poll_s: float,
    quiet: bool,
) -> None:
    """Keep the static site, Atom feeds and search index current from the store's changes.

    Follows the change stream (NOTIFY, plus a poll) until interrupted; with --once it catches
    up and exits. Running it twice is harmless: with nothing new it changes nothing.
    """
    import psycopg

    from chatchannels.publishers.publishing import publish as run
    from chatchannels.publishers.search_index import IndexMissingError
    from chatchannels.publishers.site import SiteStateError

    target = _site_dir(settings, site_dir)
    try:
        results = run(
            settings.postgres_dsn,
            target,
            once=once,
            rebuild=rebuild,
            batch_size=batch_size,
            poll_s=poll_s,
            media_dir=settings.media_root,
        )
    except psycopg.Error as exc:
        raise click.ClickException(
            f"cannot read the store at {settings.postgres_dsn}: {exc}".strip()
            + "\nIs it up (`chatchannels stack up`) and migrated (`chatchannels db migrate`)?"
        ) from exc
    except (SiteStateError, IndexMissingError) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        return
    if not quiet:
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--site-dir", type=click.Path(file_okay=False, path_type=Path), help=SITE_DIR_HELP)
@click.pass_obj
def search(
    settings: Settings,
    query: tuple[str, ...],
    sort: str,
    limit: int,
    as_json: bool,
    site_dir: Path | None,
) -> None:
    """Search the archive: words, "phrases", OR, NOT/-word, author:, chat:, date:YYYY-MM,
    after:/before:YYYY-MM-DD. Each hit names the page and anchor of the message."""
    from chatchannels.publishers.publishing import index_dir
    from chatchannels.publishers.search_index import IndexMissingError, WhooshBackend
    from chatchannels.publishers.search_query import QueryError

    target = _site_dir(settings, site_dir)
    text = " ".join(query)
    try:
        backend = WhooshBackend(index_dir(target), create=False)
        try:
            results = backend.search(text, sort=sort, limit=limit)
        finally:
            backend.close()
    except (IndexMissingError, QueryError) as exc:
        message = str(exc) if isinstance(exc, IndexMissingError) else f"cannot search: {exc}"
        if as_json:
            # The same error shape as /search.json, so scripts read one thing.
            click.echo(json.dumps({"error": {"status": 400, "message": message}}, indent=2))
            raise SystemExit(1) from exc
        raise click.ClickException(message) from exc
    if as_json:
        click.echo(json.dumps(results.as_json(), ensure_ascii=False, indent=2, sort_keys=True))
        return
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
@click.option("--site-dir", type=click.Path(file_okay=False, path_type=Path), help=SITE_DIR_HELP)
@click.pass_obj
def serve(settings: Settings, host: str, port: int, site_dir: Path | None) -> None:
    """Serve the site and /search (HTML) and /search.json, read-only."""
    from chatchannels.publishers.serve import make_server

    target = _site_dir(settings, site_dir)
    try:
        server = make_server(target, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    click.echo(f"serving {target} on http://{host}:{server.server_address[1]}/", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)
