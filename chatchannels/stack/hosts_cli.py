"""`chatchannels hosts add|remove|list`: the desktops that may write to Kafka (as admin)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from chatchannels.options import json_option, kafka_option, topic_option
from chatchannels.settings import Settings
from chatchannels.stack import kafka_principals

# The agent's host ids (ingest/agent/config.py), which name the principal `agent-<host>`.
_HOST = re.compile(r"[A-Za-z0-9._:@-]{1,200}")


def _host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _HOST.fullmatch(value):
        raise click.BadParameter("1-200 of A-Z a-z 0-9 . _ : @ -")
    return value


@click.group()
def hosts() -> None:
    """Desktops allowed to write events: one Kafka principal `agent-HOST` each."""


@hosts.command()
@click.argument("host", callback=_host)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the desktop's password file"
    " (default: <secrets_dir>/hosts/agent-HOST.password).",
)
@kafka_option
@topic_option
@json_option
@click.pass_obj
def add(settings: Settings, host: str, out: Path | None, as_json: bool) -> None:
    """Let HOST write the topic: its credential, its ACLs, and its password file (0600) to
    copy to the desktop with the CA. Run again to rewrite a lost file (same password)."""
    made = kafka_principals.add_host(settings, host, out)
    found = {
        "host": made.host,
        "principal": made.principal,
        "password_file": str(made.password_file),
        "ca_file": str(settings.kafka_ca),
        "topic": settings.topic,
    }
    if as_json:
        click.echo(json.dumps(found, sort_keys=True))
        return
    click.echo(
        f"{made.principal} may write {settings.topic}; copy {made.password_file} and"
        f" {found['ca_file']} to the desktop (keep the password file mode 0600), and in its"
        f" agent.toml:\n  host_id = {json.dumps(host)}\n"
        '  kafka_password_file = "<where you copied it>"\n  kafka_ca_file = "<the CA copy>"'
    )


@hosts.command()
@click.argument("host", callback=_host)
@kafka_option
@json_option
@click.pass_obj
def remove(settings: Settings, host: str, as_json: bool) -> None:
    """Take HOST's credential and ACLs away: its agent can no longer log in."""
    known = kafka_principals.remove_host(settings, host)
    if as_json:
        click.echo(json.dumps({"host": host, "removed": known}, sort_keys=True))
        return
    click.echo(f"removed agent-{host}" if known else f"agent-{host} had no credential")


@hosts.command("list")
@kafka_option
@json_option
@click.pass_obj
def list_(settings: Settings, as_json: bool) -> None:
    """The desktops that may log in, with the topics each may write."""
    found = kafka_principals.list_hosts(settings)
    if as_json:
        click.echo(json.dumps({"hosts": found}, sort_keys=True))
        return
    for item in found:
        click.echo(f"{item['host']}\t{','.join(item['topics']) or '(no topic)'}")
