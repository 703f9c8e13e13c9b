"""`chatchannels db`, `process`, `stats` and `deadletters`: flags in, one library call, output."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from typing import Any

import click

from chatchannels.kafka_auth import PROCESSOR
from chatchannels.options import (
    batch_size_option,
    consumer_option,
    json_option,
    kafka_option,
    metrics_port_option,
    refuse_given,
    store_options,
    topic_option,
)
from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER
from chatchannels.settings import Settings


def _echo_json(found: Any) -> None:
    click.echo(json.dumps(found, sort_keys=True))


@click.group()
def db() -> None:
    """The canonical store's schema in PostgreSQL."""


@db.command()
@store_options
@json_option
@click.pass_obj
def migrate(settings: Settings, as_json: bool) -> None:
    """Apply pending schema migrations, and make the store's PostgreSQL roles and their
    privileges in the schema (idempotent; README: PostgreSQL roles)."""
    from chatchannels.pg_roles import ensure_store_roles, store_roles
    from chatchannels.processors.pg.migrate import migrate as run_migrations

    roles = ensure_store_roles(settings)
    applied = run_migrations(settings.postgres_dsn, settings.schema, roles=store_roles(settings))
    if as_json:
        names = [f"{m.version:04d}_{m.name}" for m in applied]
        _echo_json({"schema": settings.schema, "applied": names, "roles": roles})
        return
    for role, done in roles.items():
        if done != "unchanged":
            click.echo(f"role {role} {done}")
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        click.echo("schema is up to date")


@click.command()
@store_options
@kafka_option
@topic_option
@consumer_option(DEFAULT_CONSUMER)
@click.option("--once", is_flag=True, help="Stop when caught up with the topic's end offsets.")
@batch_size_option(5000, "raw records")
@metrics_port_option("processor_metrics_port")
@json_option
@click.pass_obj
def process(
    settings: Settings,
    group: str,
    once: bool,
    batch_size: int,
    metrics_port: int | None,
    as_json: bool,
) -> None:
    """Consume raw events into the canonical store, exactly once (resumes where it stopped).

    Runs until SIGTERM or Ctrl-C, which finish the current batch and exit 0; with --once it
    exits when caught up.
    """
    from chatchannels.processors.consumer import ProcessOptions, run_processor

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    options = ProcessOptions(
        topic=settings.topic,
        group=group,
        schema=settings.schema,
        once=once,
        batch_records=batch_size,
    )
    from chatchannels.metrics import metrics_endpoint
    from chatchannels.processors.metrics import ProcessorMetrics

    metrics = ProcessorMetrics()
    port = settings.processor_metrics_port if metrics_port is None else metrics_port
    with metrics_endpoint(metrics.registry, port, settings.metrics_host):
        summary = run_processor(settings, options, stop, metrics)
    if as_json:
        _echo_json(dataclasses.asdict(summary))
        return
    click.echo(
        f"processed {summary.records} records in {summary.batches} batches:"
        f" {summary.changes} changes, {summary.dead_letters} dead letters"
    )


@click.command()
@store_options
@kafka_option
@topic_option
@consumer_option(DEFAULT_CONSUMER)
@click.option(
    "--dead-letters",
    "dead_letters",
    is_flag=True,
    help="Only the dead letters, counted by kind, with the newest of each.",
)
@json_option
@click.pass_obj
def stats(settings: Settings, group: str, dead_letters: bool, as_json: bool) -> None:
    """Events consumed, observations, messages, merges, host clocks, dead letters, lag.

    With --dead-letters: the raw records the processor refused, counted by kind (schema,
    line, value, unsupported), pending and redriven; `deadletters list` shows each.
    """
    if dead_letters:
        refuse_given(
            click.get_current_context(),
            "kafka",
            "topic",
            "group",
            because="does not apply to --dead-letters: the store's dead letters of every topic",
        )
        counted = count_dead_letters(settings)
        if as_json:
            _echo_json(counted)
        else:
            render_dead_letters(counted)
        return
    found = collect_stats(settings, group=group)
    if as_json:
        _echo_json(found)
    else:
        render_stats(found)


def count_dead_letters(settings: Settings) -> dict[str, Any]:
    """Dead letters by kind, JSON-ready: totals, and per kind its counts and newest one."""
    from chatchannels.processors.pg.store import Store

    # Dead letters belong to no consumer; the name only matters to offsets.
    store = Store.connect(settings.reader_postgres_dsn, settings.schema, consumer=DEFAULT_CONSUMER)
    try:
        counts = store.count_dead_letters()
    finally:
        store.close()
    return {
        "total": sum(c.total for c in counts),
        "pending": sum(c.pending for c in counts),
        "kinds": [dataclasses.asdict(c) for c in counts],
    }


def render_dead_letters(counted: dict[str, Any]) -> None:
    if not counted["kinds"]:
        click.echo("no dead letters")
        return
    for c in counted["kinds"]:
        click.echo(
            f"{c['kind']}\t{c['total']:,} ({c['pending']:,} pending)"
            f"\tnewest: {c['latest_id']}: {c['latest_reason']}"
        )
    click.echo(
        f"{counted['total']:,} dead letters, {counted['pending']:,} pending;"
        " `chatchannels deadletters list` shows each, `deadletters redrive` retries them"
    )


def collect_stats(settings: Settings, *, group: str) -> dict[str, Any]:
    """One JSON-ready object with stable keys; `lag` is null when Kafka cannot be reached
    (`kafka_error` says why), so the store's side is still reported."""
    from chatchannels.processors.pg.store import Store
    from chatchannels.stack import kafka

    store = Store.connect(settings.reader_postgres_dsn, settings.schema, consumer=group)
    try:
        found = store.read_stats(settings.topic)
    finally:
        store.close()
    found.update(topic=settings.topic, consumer=group, lag=None, kafka_error=None)
    from kafka.errors import KafkaError

    try:
        end = kafka.end_offsets(settings, settings.topic, PROCESSOR)
    except KafkaError as exc:
        found["kafka_error"] = f"{type(exc).__name__}: {exc}"
        return found
    done = found["next_offsets"]
    found["lag"] = {str(p): o - done.get(p, 0) for p, o in sorted(end.items())}
    found["next_offsets"] = {str(p): o for p, o in done.items()}
    return found


def render_stats(found: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"processor {found['consumer']} on {found['topic']}", show_header=False)
    for key in (
        "events_consumed",
        "observations",
        "messages",
        "merged_across_hosts",
        "deleted_messages",
        "revisions",
        "aliases",
        "chats",
        "users",
        "last_change_seq",
        "dead_letters",
        "dead_letters_pending",
    ):
        table.add_row(key.replace("_", " "), f"{found[key]:,}")
    console.print(table)
    hosts = Table(title="hosts")
    for column in ("host", "clock offset (s)", "last seq", "host messages"):
        hosts.add_column(column)
    for host, h in found["hosts"].items():
        hosts.add_row(host, f"{h['offset_s']:+.3f}", str(h["last_seq"]), str(h["host_messages"]))
    console.print(hosts)
    if found["lag"] is None:
        print(f"lag unknown: {found['kafka_error']}", file=sys.stderr)
    else:
        lag = ", ".join(f"{p}: {n:,}" for p, n in found["lag"].items())
        console.print(f"lag per partition: {lag}")


@click.group()
def deadletters() -> None:
    """Raw records the processor refused, kept with the reason."""


@deadletters.command(name="list")
@store_options
@click.option("--all", "show_all", is_flag=True, help="Include those already redriven.")
@json_option
@click.pass_obj
def list_dead_letters(settings: Settings, show_all: bool, as_json: bool) -> None:
    """List dead letters: id, where, what was wrong (--json: one object per line)."""
    from chatchannels.processors.pg.store import Store

    # Dead letters belong to no consumer; the name only matters to offsets.
    store = Store.connect(settings.reader_postgres_dsn, settings.schema, consumer=DEFAULT_CONSUMER)
    try:
        letters = store.dead_letters(include_redriven=show_all)
    finally:
        store.close()
    for d in letters:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": d.id,
                        "topic": d.topic,
                        "partition": d.partition,
                        "offset": d.offset,
                        "kind": d.kind,
                        "reason": d.reason,
                        "host": d.host,
                        "seq": d.seq,
                        "redriven": d.redriven_utc is not None,
                    },
                    sort_keys=True,
                )
            )
        else:
            state = " (redriven)" if d.redriven_utc else ""
            click.echo(f"{d.id}\t{d.topic}:{d.partition}@{d.offset}\t{d.kind}: {d.reason}{state}")


@deadletters.command()
@store_options
@click.option("--id", "ids", type=int, multiple=True, help="Only these dead letters (repeatable).")
@json_option
@click.pass_obj
def redrive(settings: Settings, ids: tuple[int, ...], as_json: bool) -> None:
    """Run dead letters through the current decoder again; those it accepts now are applied.
    Signatures are checked again as when they were consumed."""
    from chatchannels.processors.pg.store import Store
    from chatchannels.signing_secrets import load_verifier

    verifier = load_verifier(settings)

    store = Store.connect(
        settings.processor_postgres_dsn,
        settings.schema,
        consumer=DEFAULT_CONSUMER,
        tolerance_s=float(settings.match_tolerance_s),
    )
    try:
        result = store.redrive_dead_letters(verifier, list(ids) or None)
    finally:
        store.close()
    if as_json:
        _echo_json(dataclasses.asdict(result))
        return
    click.echo(
        f"redriven {len(result.redriven)}, still refused {len(result.still_bad)},"
        f" {result.changes} changes"
    )
