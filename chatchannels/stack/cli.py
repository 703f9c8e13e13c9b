"""`chatchannels stack`: start, stop and inspect the local Kafka + PostgreSQL stack."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from chatchannels.errors import CommandError
from chatchannels.options import json_option, kafka_option, topic_option
from chatchannels.settings import Settings, settings_env
from chatchannels.stack import kafka
from chatchannels.stack.manager import StackError, stack_down, stack_status, stack_up


def _echo_json(found: Any) -> None:
    click.echo(json.dumps(found, indent=2, sort_keys=True))


@click.group()
def stack() -> None:
    """Run the real Kafka 4 and PostgreSQL 15 this project uses, under the stack folder."""


@stack.command()
@json_option
@click.pass_obj
def fetch(settings: Settings, as_json: bool) -> None:
    """Resolve the Kafka broker's jars from Maven Central (idempotent)."""
    fetched = kafka.fetch_kafka(settings)
    where = kafka.kafka_jar(settings).parent
    if as_json:
        _echo_json({"fetched": fetched, "version": settings.kafka_version, "libs": str(where)})
        return
    click.echo(
        f"{'fetched' if fetched else 'already present'}: Kafka {settings.kafka_version} in {where}"
    )


@stack.command()
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for health.")
@json_option
@click.pass_obj
def up(settings: Settings, timeout: float, as_json: bool) -> None:
    """Start Kafka and PostgreSQL if they are not running; create the topic and database."""
    try:
        report = stack_up(settings, timeout)
    except StackError as exc:
        raise CommandError(f"{exc}; logs: {settings.stack_dir / 'logs'}", kind="stack") from exc
    if as_json:
        found = dataclasses.asdict(report)
        found.update(kafka=settings.kafka_bootstrap, postgres=settings.postgres_dsn)
        _echo_json(found)
        return
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
@json_option
@click.pass_obj
def down(settings: Settings, as_json: bool) -> None:
    """Stop Kafka and PostgreSQL cleanly. Data stays under the stack folder."""
    stopped = stack_down(settings)
    if as_json:
        _echo_json({"stopped": stopped})
        return
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@stack.command()
@json_option
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Versions, addresses and health of the stack. Exit 1 when not healthy."""
    info = stack_status(settings)
    if as_json:
        _echo_json(info)
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
@kafka_option
@topic_option
@json_option
@click.pass_obj
def topic(settings: Settings, as_json: bool) -> None:
    """Create the raw topic on the configured Kafka (retention forever, broker timestamps),
    and the processor's and importer's credentials and ACLs on it (as admin)."""
    from chatchannels.stack.kafka_principals import ensure_server_principals

    created = kafka.ensure_topic(settings, settings.topic, settings.partitions)
    ensure_server_principals(settings)
    if as_json:
        _echo_json({"topic": settings.topic, "created": created})
        return
    click.echo(f"{'created' if created else 'exists'}: {settings.topic}")


@stack.command("broker-config")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--advertise",
    default="kafka",
    show_default=True,
    help="The broker's name for its clients (in its certificate: 127.0.0.1, localhost, kafka).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/kafka/data"),
    show_default=True,
    help="The broker's log directory on its host.",
)
@json_option
@click.pass_obj
def broker_config(
    settings: Settings, out: Path, advertise: str, data_dir: Path, as_json: bool
) -> None:
    """Write a SASL_SSL broker's configuration and TLS files into OUT for a Kafka run
    elsewhere (docker-compose.yml's); the admin's password in secrets_dir."""
    ca = kafka.write_broker_config(settings, out, advertise, data_dir)
    found = {"config": str(out / "server.properties"), "ca_file": str(ca)}
    if as_json:
        _echo_json(found)
        return
    click.echo(f"wrote {found['config']}; clients trust {found['ca_file']}")


@stack.command()
@json_option
@click.pass_obj
def env(settings: Settings, as_json: bool) -> None:
    """Print the settings other commands read, as shell `export` lines."""
    variables = settings_env(settings)
    if as_json:
        _echo_json(variables)
        return
    for key, value in variables.items():
        click.echo(f"export {key}={value}")
