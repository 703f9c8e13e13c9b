"""Every subcommand has help, and the README documents it (style.md, "Thin CLI")."""

from __future__ import annotations

import re

import click
import pytest
import yaml
from click.testing import CliRunner

from chatchannels.cli import SUBCOMMANDS, main
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
