"""One name and one meaning for each shared flag, and no flag accepted only to be ignored."""

from __future__ import annotations

import dis
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from chatchannels.cli import SUBCOMMANDS, main
from chatchannels.options import (
    batch_size_option,
    json_option,
    kafka_option,
    quiet_option,
    store_options,
    topic_option,
)
from chatchannels.settings import Settings

# Flags the settings overrides add: their callbacks change the command's settings.
SETTINGS_FLAGS = {"--dsn", "--schema", "--kafka", "--topic"}
# Names the shared ideas had before they were one flag each.
RETIRED = {"--batch", "--silent", "--database", "--bootstrap", "--format"}


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(main)

    def walk(path: str, group: click.Group) -> Iterator[tuple[str, click.Command]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                yield from walk(f"{path}{name} ", command)
            else:
                yield f"{path}{name}", command

    return walk("", main)


COMMANDS = dict(_commands())


def _shared_help() -> dict[str, str]:
    @store_options
    @kafka_option
    @topic_option
    @json_option
    @quiet_option
    @click.command()
    def shared(**_: object) -> None:
        """The shared flags."""

    return {opt: p.help for p in shared.params for opt in p.opts}


def _loaded_names(function) -> set[str]:
    """The local names the function reads (or hands to a function nested in it)."""
    code = function.__code__
    loaded = set(code.co_cellvars)
    for instruction in dis.get_instructions(code):
        if instruction.opname.startswith("LOAD_FAST") or instruction.opname == "LOAD_DEREF":
            names = instruction.argval
            loaded.update(names if isinstance(names, tuple) else (names,))
    return loaded


def unread_params(command: click.Command) -> list[str]:
    """The command's declared parameters that its callback never reads."""
    function = command.callback
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    loaded = _loaded_names(function)
    unread = [p.name for p in command.params if p.expose_value and p.name not in loaded]
    overrides = [p for p in command.params if not p.expose_value and p.name != "help"]
    if overrides and "settings" not in loaded:
        unread += [p.name for p in overrides]
    return unread


def test_every_command_is_walked():
    assert {"process", "replay", "publish", "db migrate", "stack topic"} <= set(COMMANDS)
    assert {path.split()[0] for path in COMMANDS} == set(SUBCOMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_shared_flags_have_one_name_and_one_help(path):
    shared = _shared_help()
    for param in COMMANDS[path].params:
        for flag in param.opts:
            assert flag not in RETIRED, f"`{path}` still has {flag}"
            if flag in shared:
                assert param.help == shared[flag], f"`{path}` {flag} is not the shared option"
            if flag == "--batch-size":
                assert param.name == "batch_size" and param.help.endswith(
                    " per batch (one transaction)."
                ), path
            if flag in SETTINGS_FLAGS:
                assert not param.expose_value, f"`{path}` {flag} bypasses the settings"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_no_flag_is_accepted_and_ignored(path):
    assert unread_params(COMMANDS[path]) == []


def test_the_check_finds_an_ignored_flag():
    @click.command()
    @kafka_option
    @click.option("--limit", default=3)
    @click.option("--verbose", is_flag=True)
    def careless(limit: int, verbose: bool) -> None:
        print(limit)

    assert unread_params(careless) == ["verbose", "kafka"]


def _seen(*args: str) -> Settings:
    seen: list[Settings] = []

    @click.group()
    @click.pass_context
    def top(ctx: click.Context) -> None:
        ctx.obj = Settings()

    @top.command()
    @store_options
    @kafka_option
    @topic_option
    @batch_size_option(10, "records")
    @click.pass_obj
    def show(settings: Settings, batch_size: int) -> None:
        seen.append(settings.replace(partitions=batch_size))

    result = CliRunner().invoke(top, ["show", *args])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_settings_flags_override_the_settings_and_only_when_given():
    assert _seen() == Settings(partitions=10)
    flags = ("--dsn", "postgresql://x/y", "--schema", "s2", "--kafka", "k:1", "--topic", "t")
    assert _seen(*flags, "--batch-size", "7") == Settings(
        dsn="postgresql://x/y", schema="s2", kafka="k:1", topic="t", partitions=7
    )


@pytest.mark.parametrize("schema", ["Public", "a-b", "x;drop", "9lives", ""])
def test_schema_must_be_a_plain_identifier(schema):
    result = CliRunner().invoke(main, ["stats", "--schema", schema])
    assert result.exit_code == 2
    assert "lowercase identifier" in result.output


@pytest.mark.parametrize("flag", [("--kafka", "k:1"), ("--topic", "t"), ("--group", "g")])
def test_flags_that_do_not_apply_to_a_combination_are_refused(flag):
    result = CliRunner().invoke(main, ["stats", "--dead-letters", *flag])
    assert result.exit_code == 2
    assert f"{flag[0]} does not apply to --dead-letters" in result.output
