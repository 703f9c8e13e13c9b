"""`chatchannels emulate`: run emulated Skype desktops, print ground truth, generate scenarios."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import click

from chatchannels.emulator.generate import write_scenario
from chatchannels.emulator.scenario import load_scenario
from chatchannels.emulator.truth import iter_ground_truth


def _bus_option(values: tuple[str, ...]) -> dict[str, str]:
    buses = {}
    for value in values:
        host, sep, address = value.partition("=")
        if not sep or not host or not address:
            raise click.BadParameter(f"expected HOST=ADDRESS, got {value!r}", param_hint="--bus")
        buses[host] = address
    return buses


@click.command()
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Scenario file (.json document or .jsonl stream).",
)
@click.option(
    "--bus",
    "buses",
    multiple=True,
    metavar="HOST=ADDRESS",
    help="Emulate HOST's Skype on the D-Bus at ADDRESS (repeat per host).",
)
@click.option("--speed", type=float, help="Play the timeline by itself, SPEED times real time.")
@click.option("--step", "step_mode", is_flag=True, help="Wait for Step() calls (the default).")
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scenario's ground truth as JSON to this file ('-' for stdout) and exit.",
)
@click.option(
    "--generate", "generate_count", type=int, help="Write a random scenario of N messages."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --generate.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --generate writes its JSON Lines (default stdout).",
)
def emulate(
    scenario_path: Path | None,
    buses: tuple[str, ...],
    speed: float | None,
    step_mode: bool,
    truth_path: Path | None,
    generate_count: int | None,
    seed: int,
    out: Path | None,
) -> None:
    """Emulate Skype desktops (com.Skype.API, one D-Bus per host) playing a scenario.

    Another process drives a running emulator through org.chatchannels.Emulator at
    /org/chatchannels/Emulator on each host's bus: Step(u)->u remaining, RunToEnd()->u,
    Quit(), Restart(), SetOnline(b), SetFault(s, b), Status()->s (JSON: running,
    connection_lost, ...). Once every host is
    on its bus, one JSON line {"ready": ...} goes to stdout. Stops on SIGTERM or SIGINT.
    """
    if generate_count is not None:
        if generate_count < 0:
            raise click.BadParameter("must not be negative", param_hint="--generate")
        if out is None:
            write_scenario(sys.stdout, generate_count, seed)
        else:
            with out.open("w", encoding="utf-8") as f:
                lines = write_scenario(f, generate_count, seed)
            click.echo(
                f"wrote {lines} lines ({generate_count} messages, seed {seed}) to {out}", err=True
            )
        return
    if scenario_path is None:
        raise click.UsageError("give --scenario FILE (or --generate N)")
    if speed is not None and step_mode:
        raise click.UsageError("--speed and --step exclude each other")
    scenario = load_scenario(scenario_path)
    if truth_path is not None:
        _write_truth(scenario, truth_path)
        return
    if not buses:
        raise click.UsageError("give at least one --bus HOST=ADDRESS")
    asyncio.run(_serve(scenario, _bus_option(buses), speed))


def _write_truth(scenario, path: Path) -> None:
    """Stream the truth out, one message per line, so millions of messages fit."""
    if str(path) == "-":
        _dump_truth(scenario, sys.stdout)
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        _dump_truth(scenario, out)
    tmp.replace(path)


def _dump_truth(scenario, out) -> None:
    out.write(f'{{"start": {scenario.start}, "messages": [')
    for n, message in enumerate(iter_ground_truth(scenario)):
        out.write(",\n " if n else "\n ")
        out.write(json.dumps(message.to_json(), ensure_ascii=False))
    out.write("\n]}\n")


async def _serve(scenario, buses: dict[str, str], speed: float | None) -> None:
    from chatchannels.emulator.runner import Emulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    emulator = Emulator(scenario, buses, speed)
    try:
        await emulator.start()
        ready = {"ready": True, "hosts": buses, "actions": emulator.total}
        click.echo(json.dumps(ready))
        sys.stdout.flush()
        await stop.wait()
    finally:
        await emulator.stop()
