"""The flags every command shares, each with one name and one help text (sqlite-utils'
`output_options` habit), so `--dsn` or `--quiet` means the same wherever it is accepted.

The store, Kafka and topic flags override settings: their callbacks replace the command's
settings object (`ctx.obj`, what `pass_obj` hands the command) and record it for the error
handler (chatchannels/errors.py), which names the server that failed. `--json` records the
output format the same way, so errors come out in the shape the caller asked for.

Imports click and the settings only: an agent-only install loads this module too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from chatchannels.settings import SCHEMA_NAME

F = TypeVar("F", bound=Callable[..., Any])

# ctx.meta is shared by a command's context and its parents', so the top-level group's
# error handler reads what the subcommand's options recorded.
SETTINGS_META = "chatchannels.settings"
# Set by the top-level `--debug`: known errors keep their traceback, logs go to DEBUG.
DEBUG_META = "chatchannels.debug"
JSON_META = "chatchannels.json"


def _override(setting: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def apply(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or ctx.resilient_parsing or ctx.obj is None:
            return
        ctx.obj = ctx.obj.replace(**{setting: value})
        ctx.meta[SETTINGS_META] = ctx.obj

    return apply


def _dsn(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--dsn is the administrator's DSN, and the commands connect to its server as their
    role: role DSNs from the settings name the configured server, so the flag clears them."""
    _override("dsn")(ctx, param, value)
    if value is not None and ctx.obj is not None and not ctx.resilient_parsing:
        ctx.obj = ctx.obj.replace(processor_dsn="", reader_dsn="")
        ctx.meta[SETTINGS_META] = ctx.obj


def _schema(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and not SCHEMA_NAME.fullmatch(value):
        raise click.BadParameter("a lowercase identifier: a-z, 0-9 and _, no digit first")
    _override("schema")(ctx, param, value)


def _decorate(command: F, *options: Callable[[F], F]) -> F:
    for option in reversed(options):
        command = option(command)
    return command


def store_options(command: F) -> F:
    """--dsn and --schema: which canonical store the command reads or writes."""
    return _decorate(
        command,
        click.option(
            "--dsn",
            expose_value=False,
            callback=_dsn,
            help="PostgreSQL connection string (default: the `dsn` setting, else the stack's);"
            " the command connects to it as its role (README: PostgreSQL roles).",
        ),
        click.option(
            "--schema",
            expose_value=False,
            callback=_schema,
            help="PostgreSQL schema of the store (default: the `schema` setting, public).",
        ),
    )


def kafka_option(command: F) -> F:
    """--kafka: the bootstrap servers of the raw log."""
    return click.option(
        "--kafka",
        expose_value=False,
        callback=_override("kafka"),
        help="Kafka bootstrap servers, host:port[,...] (default: the `kafka` setting, else the"
        " stack's).",
    )(command)


def topic_option(command: F) -> F:
    """--topic: the raw-event topic."""
    return click.option(
        "--topic",
        expose_value=False,
        callback=_override("topic"),
        help="Raw-event topic (default: the `topic` setting).",
    )(command)


def _record_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_META] = True
    return value


def json_option(command: F) -> F:
    """--json: the command's result as JSON on stdout (README, "JSON output"), errors too."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_record_json,
        help="Print the result as JSON with stable keys (README: JSON output); errors too.",
    )(command)


def quiet_option(command: F) -> F:
    """--quiet: nothing on stderr but errors; results on stdout are unchanged."""
    return click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="No progress bars or summaries on stderr (errors still show).",
    )(command)


def batch_size_option(default: int, unit: str) -> Callable[[F], F]:
    """--batch-size: how many `unit` one batch (one transaction) takes."""
    return click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=default,
        show_default=True,
        help=f"{unit.capitalize()} per batch (one transaction).",
    )


def consumer_option(default: str) -> Callable[[F], F]:
    """--group: the consumer whose offsets the store keeps."""
    return click.option(
        "--group",
        default=default,
        show_default=True,
        help="Consumer name: the store keeps its offsets under it.",
    )


def refuse_given(ctx: click.Context, *names: str, because: str) -> None:
    """Refuse the flags `names` when given: in this combination they would be ignored."""
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            raise click.UsageError(f"{param.opts[0]} {because}", ctx)


def in_json(ctx: click.Context) -> bool:
    """Whether the command running in `ctx` was asked for JSON."""
    return bool(ctx.meta.get(JSON_META))


def metrics_port_option(setting: str) -> Callable[[F], F]:
    """`--metrics-port`: where this part serves Prometheus metrics, over the named setting."""
    return click.option(
        "--metrics-port",
        type=int,
        help=f"Serve Prometheus metrics on this port (0: off; default: the {setting} setting).",
    )


def site_dir_option(command: F) -> F:
    """--site-dir: the published site's folder (the command reads `site_dir` itself)."""
    return click.option(
        "--site-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The published site's folder (default: the `site_dir` setting).",
    )(command)
