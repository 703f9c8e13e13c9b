"""The `chatchannels` command: a thin skin over the library.

Each part of the pipeline owns its subcommands in its own folder (`<part>/cli.py`), built
from the shared flags of options.py; this module only builds the settings once, loads a
subcommand's module when it is used, so a desktop install with only the `[agent]` extra
never imports server libraries, and turns known errors into one message (errors.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from chatchannels.errors import KnownErrorExit, explain
from chatchannels.logs import setup_logging
from chatchannels.options import DEBUG_META, SETTINGS_META, in_json
from chatchannels.settings import load_settings

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
    "hosts": "chatchannels.stack.hosts_cli:hosts",
    "import": "chatchannels.ingest.importers.cli:import_",
    "stack": "chatchannels.stack.cli:stack",
    "users": "chatchannels.publishers.access.cli:users",
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

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; a known error leaves as one message and exit code 2."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            known = explain(exc, ctx.meta.get(SETTINGS_META))
            if known is None or ctx.meta.get(DEBUG_META):
                raise
            raise KnownErrorExit(known, as_json=in_json(ctx)) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (default: $CHATCHANNELS_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks (of known errors too) and debug logs.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, debug: bool) -> None:
    """Chat Channels: archive Skype chats and publish them on the intranet.

    Known errors print one line and exit 2 (with --json also one JSON object on stdout);
    --debug shows their traceback instead.
    """
    ctx.meta[DEBUG_META] = debug
    ctx.obj = load_settings(config_file)
    setup_logging(ctx.obj.log_format, debug)
    ctx.meta[SETTINGS_META] = ctx.obj


if __name__ == "__main__":
    main()
