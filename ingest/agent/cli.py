"""`chatchannels agent run|status`: a thin skin over runner.py and status.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatchannels.ingest.agent.config import load_agent_config
from chatchannels.ingest.agent.status import read_status, render_status
from chatchannels.logs import setup_logging
from chatchannels.options import DEBUG_META, json_option

_config_option = click.option(
    "--config",
    "agent_config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The agent's TOML file (see deploy/agent.example.toml).",
)


@click.group()
def agent() -> None:
    """Capture this desktop's Skype chats and deliver them to Kafka."""


@agent.command()
@_config_option
@click.option(
    "--all-chats",
    is_flag=True,
    help="Archive every chat, not only those the config lists. Only if you mean it.",
)
@click.pass_obj
def run(settings, agent_config: Path | None, all_chats: bool) -> None:
    """Attach to Skype, backfill the allowed chats, capture live; stop with SIGTERM."""
    from chatchannels.ingest.agent.runner import run_agent

    config = load_agent_config(agent_config, settings, all_chats=all_chats)
    # JSON lines whatever log_format says: a desktop daemon's log is read by tools.
    setup_logging("json", click.get_current_context().meta.get(DEBUG_META, False))
    sys.exit(run_agent(config))


@agent.command()
@_config_option
@json_option
@click.pass_obj
def status(settings, agent_config: Path | None, as_json: bool) -> None:
    """Attach state, spool depth, oldest unsent event, last Kafka ack, events per second."""
    config = load_agent_config(agent_config, settings, all_chats=True)
    report = read_status(config)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        click.echo(render_status(report))
