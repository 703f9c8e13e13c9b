"""`chatchannels db`, `process`, `stats` and `deadletters`: flags in, one library call, output."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER
from chatchannels.settings import Settings


def _target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The same flags on every processor command, so a test can point one at its own
    topic and database."""
    for option in reversed(
        (
            click.option("--topic", help="Raw topic (default: the `topic` setting)."),
            click.option("--dsn", help="PostgreSQL DSN (default: the `dsn` setting)."),
            click.option("--kafka", help="Kafka bootstrap servers (default: settings)."),
            click.option(
                "--group",
                default=DEFAULT_CONSUMER,
                show_default=True,
                help="Consumer name: its offsets are stored under it.",
            ),
            click.option(
                "--schema", default="public", show_default=True, help="PostgreSQL schema."
            ),
        )
    ):
        command = option(command)
    return command


@contextmanager
def _user_errors(settings: Settings) -> Iterator[None]:
    """Driver errors as one line saying what failed and what to try."""
    import psycopg
    from kafka.errors import KafkaError

    from chatchannels.processors.consumer import ProcessorError

    try:
        yield
    except psycopg.errors.UndefinedTable as exc:
        raise click.ClickException(
            f"the store is not migrated ({exc.diag.message_primary});"
            " run `chatchannels db migrate` (with --schema if you use one)"
        ) from exc
    except psycopg.OperationalError as exc:
        where = settings.postgres_dsn
        raise click.ClickException(
            f"cannot use PostgreSQL at {where}: {str(exc).strip().splitlines()[0]};"
            " is the stack up (`chatchannels stack up`) or --dsn right?"
        ) from exc
    except KafkaError as exc:
        raise click.ClickException(
            f"cannot use Kafka at {settings.kafka_bootstrap}: {exc};"
            " is the stack up (`chatchannels stack up`) or --kafka right?"
        ) from exc
    except ProcessorError as exc:
        raise click.ClickException(str(exc)) from exc


def _settings(settings: Settings, topic: str | None, dsn: str | None, kafka: str | None):
    changes = {"topic": topic, "dsn": dsn, "kafka": kafka}
    return settings.replace(**{k: v for k, v in changes.items() if v})


@click.group()
def db() -> None:
    """The canonical store's schema in PostgreSQL."""


@db.command()
@click.option("--schema", default="public", show_default=True, help="PostgreSQL schema to migrate.")
@click.pass_obj
def migrate(settings: Settings, schema: str) -> None:
    """Apply pending schema migrations (idempotent)."""
    from chatchannels.processors.pg.migrate import migrate as run_migrations

    applied = run_migrations(settings.postgres_dsn, schema)
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        click.echo("schema is up to date")


@click.command()
@_target_options
@click.option("--once", is_flag=True, help="Stop when caught up with the topic's end offsets.")
@click.option("--batch", "batch_records", default=5000, show_default=True, help="Records a batch.")
@click.option(
    "--metrics-port",
    type=int,
    help="Serve Prometheus metrics on this port (0: off; default:"
    " the processor_metrics_port setting).",
)
@click.pass_obj
def process(
    settings: Settings,
    topic: str | None,
    dsn: str | None,
    kafka: str | None,
    group: str,
    schema: str,
    once: bool,
    batch_records: int,
    metrics_port: int | None,
) -> None:
    """Consume raw events into the canonical store, exactly once (resumes where it stopped).

    Runs until SIGTERM or Ctrl-C, which finish the current batch and exit 0; with --once it
    exits when caught up.
    """
    from chatchannels.processors.consumer import ProcessOptions, run_processor

    settings = _settings(settings, topic, dsn, kafka)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    options = ProcessOptions(
        topic=settings.topic, group=group, schema=schema, once=once, batch_records=batch_records
    )
    from chatchannels.metrics import MetricsEndpointError, metrics_endpoint
    from chatchannels.processors.metrics import ProcessorMetrics

    metrics = ProcessorMetrics()
    port = settings.processor_metrics_port if metrics_port is None else metrics_port
    try:
        with (
            metrics_endpoint(metrics.registry, port, settings.metrics_host),
            _user_errors(settings),
        ):
            summary = run_processor(settings, options, stop, metrics)
    except MetricsEndpointError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"processed {summary.records} records in {summary.batches} batches:"
        f" {summary.changes} changes, {summary.dead_letters} dead letters"
    )


@click.command()
@_target_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with stable keys.")
@click.pass_obj
def stats(
    settings: Settings,
    topic: str | None,
    dsn: str | None,
    kafka: str | None,
    group: str,
    schema: str,
    as_json: bool,
) -> None:
    """Events consumed, observations, messages, merges, host clocks, dead letters, lag."""
    settings = _settings(settings, topic, dsn, kafka)
    with _user_errors(settings):
        found = collect_stats(settings, group=group, schema=schema)
    if as_json:
        click.echo(json.dumps(found, sort_keys=True))
    else:
        render_stats(found)


def collect_stats(settings: Settings, *, group: str, schema: str = "public") -> dict[str, Any]:
    """One JSON-ready object with stable keys; `lag` is null when Kafka cannot be reached
    (`kafka_error` says why), so the store's side is still reported."""
    from chatchannels.processors.pg.store import Store
    from chatchannels.stack import kafka

    store = Store.connect(settings.postgres_dsn, schema, consumer=group)
    try:
        found = store.read_stats(settings.topic)
    finally:
        store.close()
    found.update(topic=settings.topic, consumer=group, lag=None, kafka_error=None)
    from kafka.errors import KafkaError

    try:
        end = kafka.end_offsets(settings, settings.topic)
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
@_target_options
@click.option("--all", "show_all", is_flag=True, help="Include those already redriven.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def list_dead_letters(
    settings: Settings,
    topic: str | None,
    dsn: str | None,
    kafka: str | None,
    group: str,
    schema: str,
    show_all: bool,
    as_json: bool,
) -> None:
    """List dead letters: id, where, what was wrong."""
    from chatchannels.processors.pg.store import Store

    settings = _settings(settings, topic, dsn, kafka)
    with _user_errors(settings):
        store = Store.connect(settings.postgres_dsn, schema, consumer=group)
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
@_target_options
@click.option("--id", "ids", type=int, multiple=True, help="Only these dead letters (repeatable).")
@click.pass_obj
def redrive(
    settings: Settings,
    topic: str | None,
    dsn: str | None,
    kafka: str | None,
    group: str,
    schema: str,
    ids: tuple[int, ...],
) -> None:
    """Run dead letters through the current decoder again; those it accepts now are applied."""
    from chatchannels.processors.pg.store import Store

    settings = _settings(settings, topic, dsn, kafka)
    with _user_errors(settings):
        store = Store.connect(
            settings.postgres_dsn,
            schema,
            consumer=group,
            tolerance_s=float(settings.match_tolerance_s),
        )
        try:
            result = store.redrive_dead_letters(list(ids) or None)
        finally:
            store.close()
    click.echo(
        f"redriven {len(result.redriven)}, still refused {len(result.still_bad)},"
        f" {result.changes} changes"
    )
