"""`chatchannels completeness` and `chatchannels status`: flags in, one library call, output.

Both exit 0 when all is well and 1 when not (gaps; an unhealthy pipeline), so monitoring can
call them; 2 when the check itself cannot run (the store unreachable for `completeness`: the
error handler, chatchannels/errors.py, says so in one line).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from chatchannels.options import (
    consumer_option,
    json_option,
    kafka_option,
    site_dir_option,
    store_options,
    topic_option,
)
from chatchannels.processors.completeness import Completeness, session_spans
from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER
from chatchannels.settings import Settings


@click.command()
@store_options
@click.option(
    "--silent-after",
    "silent_after_s",
    type=int,
    help="Seconds after which a live host is silent (default: the `silent_after_s` setting).",
)
@json_option
@click.pass_obj
def completeness(settings: Settings, silent_after_s: int | None, as_json: bool) -> None:
    """Which of each host's events reached the log: sequence ranges, gaps, silent hosts,
    and which hosts captured each chat. Exit status 1 when any event is missing."""
    import psycopg

    from chatchannels.processors.pg.completeness import read_completeness
    from chatchannels.processors.pg.migrate import set_schema

    limit = settings.silent_after_s if silent_after_s is None else silent_after_s
    with psycopg.connect(settings.reader_postgres_dsn, autocommit=True) as conn:
        set_schema(conn, settings.schema)
        found = read_completeness(conn, time.time(), limit)
    if as_json:
        click.echo(json.dumps(found.as_json(), sort_keys=True))
    else:
        render_completeness(found)
    raise SystemExit(0 if found.complete else 1)


def render_completeness(found: Completeness) -> None:
    for gap in found.gaps:
        click.secho(f"GAP {gap}", fg="red", bold=True, err=True)
    for silence in found.silent:
        heard = _when(silence.last_heard_utc, found.checked_utc)
        click.secho(f"SILENT host {silence.host}: last heard {heard}", fg="yellow", err=True)
    click.echo("hosts and sessions (seq ranges; heard: broker time)")
    for span in session_spans(found.runs):
        runs = [r for r in found.runs if (r.host, r.session) == (span.host, span.session)]
        ranges = ", ".join(
            str(r.first_seq) if r.first_seq == r.last_seq else f"{r.first_seq}-{r.last_seq}"
            for r in runs
        )
        click.echo(
            f"  {span.host}  {span.source}  session {span.session}  seq {ranges}"
            f"  heard {_when(span.first_utc, found.checked_utc)}"
            f" .. {_when(span.last_utc, found.checked_utc)}"
        )
    click.echo("chats (which hosts captured them, by messages' posted times)")
    for capture in found.chats:
        click.echo(
            f"  {capture.chat}  {capture.host}  {_utc(capture.first_utc)} .. "
            f"{_utc(capture.last_utc)}  ({capture.messages} messages)"
        )
    gaps = len(found.gaps)
    click.echo(
        "complete: every event of every host reached the log"
        if found.complete
        else f"INCOMPLETE: {gaps} gap{'s' if gaps != 1 else ''} in the hosts' sequences"
    )


@click.command()
@store_options
@kafka_option
@topic_option
@consumer_option(DEFAULT_CONSUMER)
@site_dir_option
@click.option("--serve-url", help="Where `serve` answers (default: the `serve_url` setting).")
@json_option
@click.pass_obj
def status(
    settings: Settings,
    group: str,
    site_dir: Path | None,
    serve_url: str | None,
    as_json: bool,
) -> None:
    """The whole pipeline on one screen: the services, the hosts, the processor, the
    publishers and `serve`. Exit status 1, with the reasons, when anything is unhealthy."""
    from chatchannels.health.probes import pipeline_status

    changes = {"site_dir": site_dir, "serve_url": serve_url}
    settings = settings.replace(**{k: v for k, v in changes.items() if v})
    found = pipeline_status(settings, schema=settings.schema, consumer=group)
    if as_json:
        click.echo(json.dumps(found.as_json(), sort_keys=True))
    else:
        render_status(found.as_json())
    raise SystemExit(0 if found.healthy else 1)


def render_status(s: dict) -> None:
    now = s["checked_utc"]
    if s["healthy"]:
        click.secho("HEALTHY", fg="green", bold=True)
    else:
        click.secho(f"UNHEALTHY: {len(s['reasons'])} reason(s)", fg="red", bold=True)
        for reason in s["reasons"]:
            click.secho(f"  - {reason}", fg="red")
    click.echo("services")
    for name, service in s["services"].items():
        state = "ok" if service["problem"] is None else f"DOWN: {service['problem']}"
        click.echo(f"  {name:<11} {service['address']}  {service['version'] or ''}  {state}")
    click.echo(
        "hosts (spool backlog: not reported in events; `chatchannels agent status` on the"
        " host shows it)"
    )
    if not s["hosts"]:
        click.echo("  none seen")
    for h in s["hosts"]:
        gaps = f"{len(h['gaps'])} GAP(S)" if h["gaps"] else "no gaps"
        silent = "  SILENT" if h["silent"] else ""
        click.echo(
            f"  {h['host']}  {h['source']}  last event {_when(h['last_heard_utc'], now)}"
            f"  seq {h['last_seq']}  {gaps}{silent}"
        )
    p = s["processor"]
    click.echo(f"processor {p['consumer']} on {p['topic']}")
    if p["lag"] is None:
        click.echo(f"  lag            unknown{': ' + p['problem'] if p['problem'] else ''}")
    else:
        per = ", ".join(f"{k}: {v}" for k, v in p["lag"].items())
        click.echo(f"  lag            {p['lag_total']} ({per})")
    click.echo(f"  last batch     {_when(p['last_batch_utc'], now)}")
    dead = ", ".join(f"{k} {n}" for k, n in p["dead_letters"].items()) or "none"
    click.echo(f"  dead letters   {dead} (not yet redriven)")
    pub = s["publishers"]
    click.echo(f"publishers in {pub['site_dir']} (newest change {pub['newest_change_seq']})")
    for name in ("site", "search"):
        f = pub[name]
        mark = "never published" if f["watermark"] is None else f"change {f['watermark']}"
        behind = "" if f["behind"] is None else f", {f['behind']} behind"
        click.echo(f"  {name:<14} {mark}{behind}, moved {_when(f['updated_utc'], now)}")
    click.echo(f"  last page      {_when(pub['last_page_utc'], now)}")
    size = "none" if pub["index_bytes"] is None else f"{pub['index_bytes'] / 1e6:.1f} MB"
    click.echo(f"  index size     {size}")
    serve = s["serve"]
    if serve["url"] is None:
        click.echo("serve            not checked (no serve_url setting or --serve-url)")
    else:
        state = "ok" if serve["problem"] is None else f"DOWN: {serve['problem']}"
        click.echo(f"serve            {serve['url']}  {state}")


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _when(at: float | None, now: float) -> str:
    return "never" if at is None else f"{_utc(at)} ({now - at:.0f} s ago)"
