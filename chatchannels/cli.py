"""The `chatchannels` command: a thin skin over the library.

Each part of the pipeline owns its subcommands in its own folder (`<part>/cli.py`); this
module only builds the settings once and loads a subcommand's module when it is used, so
a desktop install with only the `[agent]` extra never imports server libraries.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from chatchannels.settings import SettingsError, load_settings

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS = {
    "agent": "chatchannels.ingest.agent.cli:agent",
    "db": "chatchannels.processors.cli:db",
    "demo": "chatchannels.demo.cli:demo",
    "publish": "chatchannels.publishers.cli:publish",
    "search": "chatchannels.publishers.cli:search",
    "serve": "chatchannels.publishers.cli:serve",
    "deadletters": "chatchannels.processors.cli:deadletters",
    "process": "chatchannels.processors.cli:process",
    # The replay's command given the publishers' site builder (replay_wiring.py).
    "replay": "chatchannels.replay_wiring:replay",
    "stats": "chatchannels.processors.cli:stats",
    "completeness": "chatchannels.health.cli:completeness",
    "status": "chatchannels.health.cli:status",
    "emulate": "chatchannels.emulator.cli:emulate",
    "import": "chatchannels.ingest.importers.cli:import_",
    "stack": "chatchannels.stack.cli:stack",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


class ChatChannelsError(click.ClickException):
    """An error for the user: one line of cause, and what to try."""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (default: $CHATCHANNELS_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, debug: bool) -> None:
    """Chat Channels: archive Skype chats and publish them on the intranet."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # kafka-python logs every connection at INFO; that drowns our own output.
        logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        ctx.obj = load_settings(config_file)
    except SettingsError as exc:
        raise ChatChannelsError(str(exc)) from exc
    ctx.meta["debug"] = debug


if __name__ == "__main__":
    main()
