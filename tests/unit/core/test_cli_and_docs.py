"""Every subcommand has help, and the README documents it (style.md, "Thin CLI")."""

from __future__ import annotations

import re

import click
import pytest
import yaml
from click.testing import CliRunner

from chatchannels.cli import SUBCOMMANDS, main
from chatchannels.errors import PROJECT_ERRORS
from chatchannels.stack.postgres import WAL_SETTINGS
from tests.support.paths import REPO

README = (REPO / "README.md").read_text()


def _all_commands():
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        yield name, command
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                yield f"{name} {sub}", command.get_command(ctx, sub)


@pytest.mark.parametrize(("path", "command"), list(_all_commands()))
def test_every_command_has_help_and_is_in_the_readme(path, command):
    assert command.help, f"`chatchannels {path}` has no help text"
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert f"chatchannels {path}" in README, f"README does not mention `chatchannels {path}`"


def test_readme_test_command_is_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in README and "make demo" in README


def test_compose_file_is_the_production_server_side():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "processor", "publisher", "web"} <= set(services)
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", services["kafka"]["image"])
    assert services["postgres"]["image"] == "postgres:15"
    for name in ("kafka", "postgres", "web"):
        assert "healthcheck" in services[name], name
    assert {"kafka-data", "postgres-data", "site"} <= set(compose["volumes"])


def test_compose_postgres_has_the_stacks_wal_settings():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = compose["services"]["postgres"]["command"]
    flags = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")
    assert flags == WAL_SETTINGS


def test_compose_runs_only_commands_that_exist():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    text = " ".join(" ".join(s["command"]) for s in compose["services"].values() if "command" in s)
    for used in re.findall(r"chatchannels ([a-z-]+)", text):
        assert used in SUBCOMMANDS, (
            f"docker-compose.yml runs `chatchannels {used}`, which is missing"
        )


def _leaf_commands():
    return {path: c for path, c in _all_commands() if not isinstance(c, click.Group)}


def test_every_json_output_is_documented():
    section = README.split("### JSON output", 1)[1].split("\n## ", 1)[0]
    for path, command in _leaf_commands().items():
        if any("--json" in p.opts for p in command.params):
            assert f"`chatchannels {path}`" in section, f"README's JSON output lacks {path}"


def test_the_readmes_flags_exist():
    """Each `chatchannels CMD ... --flag` the README shows is a flag of that command."""
    commands = _leaf_commands()
    top = {opt for p in main.params for opt in p.opts}
    for span in re.findall(r"`(chatchannels [^`]+)`", README):
        words = span.split()[1:]
        while words and words[0].startswith("--") and words[0] in top:
            words = words[2:] if words[0] == "--config" else words[1:]
        path = next((" ".join(words[:n]) for n in (2, 1) if " ".join(words[:n]) in commands), None)
        if path is None:
            continue
        known = top | {opt for p in commands[path].params for opt in p.opts}
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", span):
            assert flag in known, f"README: `{span}` shows {flag}, which {path} lacks"


def test_every_error_kind_is_documented():
    section = README.split("## One command line", 1)[1].split("\n## ", 1)[0]
    for kind in set(PROJECT_ERRORS.values()):
        assert f"`{kind}`" in section, f"README does not list the error kind {kind}"
