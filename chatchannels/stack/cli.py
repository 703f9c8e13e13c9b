"""`chatchannels stack`: start, stop and inspect the local Kafka + PostgreSQL stack."""

from __future__ import annotations

import json

import click

from chatchannels.settings import Settings, settings_env
from chatchannels.stack import kafka
from chatchannels.stack.manager import StackError, stack_down, stack_status, stack_up


@click.group()
def stack() -> None:
    """Run the real Kafka 4 and PostgreSQL 15 this project uses, under the stack folder."""


@stack.command()
@click.pass_obj
def fetch(settings: Settings) -> None:
    """Resolve the Kafka broker's jars from Maven Central (idempotent)."""
    try:
        fetched = kafka.fetch_kafka(settings)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    where = kafka.kafka_jar(settings).parent
    click.echo(
        f"{'fetched' if fetched else 'already present'}: Kafka {settings.kafka_version} in {where}"
    )


@stack.command()
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for health.")
@click.pass_obj
def up(settings: Settings, timeout: float) -> None:
    """Start Kafka and PostgreSQL if they are not running; create the topic and database."""
    try:
        report = stack_up(settings, timeout)
    except StackError as exc:
        raise click.ClickException(f"{exc}\nLogs: {settings.stack_dir / 'logs'}") from exc
    for name in report.started:
        click.echo(f"started {name}")
    for name in report.already_running:
        click.echo(f"{name} already running")
    for what in report.created:
        click.echo(f"created {what}")
    click.echo(
        f"stack up in {report.seconds:.1f}s: kafka {settings.kafka_bootstrap}, "
        f"postgres {settings.postgres_dsn}"
    )


@stack.command()
@click.pass_obj
def down(settings: Settings) -> None:
    """Stop Kafka and PostgreSQL cleanly. Data stays under the stack folder."""
    stopped = stack_down(settings)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@stack.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Versions, addresses and health of the stack. Exit 1 when not healthy."""
    info = stack_status(settings)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        k, p = info["kafka"], info["postgres"]
        click.echo(
            f"kafka     {k['address']:<22} {'healthy' if k['healthy'] else 'DOWN':<8} "
            f"pid={k['pid']} {k['jars']} api={k.get('broker_api_version', '-')}"
        )
        click.echo(
            f"postgres  {p['address']:<22} {'healthy' if p['healthy'] else 'DOWN':<8} "
            f"pid={p['pid']} version={p.get('server_version', '-')}"
        )
        click.echo(f"stack dir {info['stack_dir']}")
    raise SystemExit(0 if info["healthy"] else 1)


@stack.command()
@click.pass_obj
def topic(settings: Settings) -> None:
    """Create the raw topic on the configured Kafka (retention forever, broker timestamps)."""
    try:
        created = kafka.ensure_topic(settings, settings.topic, settings.partitions)
    except Exception as exc:  # any client failure becomes one line for the operator
        raise click.ClickException(
            f"cannot create {settings.topic} on {settings.kafka_bootstrap}: {exc}"
        ) from exc
    click.echo(f"{'created' if created else 'exists'}: {settings.topic}")


@stack.command()
@click.pass_obj
def env(settings: Settings) -> None:
    """Print the settings other commands read, as shell `export` lines."""
    for key, value in settings_env(settings).items():
        click.echo(f"export {key}={value}")
