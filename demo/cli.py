"""`chatchannels demo`: the whole system in one command."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys

import click

from chatchannels.options import json_option, quiet_option
from chatchannels.settings import Settings


@click.command()
@click.option("--once", is_flag=True, help="Play the scenario to the end, check, print, exit.")
@click.option("--speed", default=4.0, show_default=True, help="Scenario time per real second.")
@click.option("--messages", default=240, show_default=True, help="Scripted messages to play.")
@click.option("--port", default=8080, show_default=True, help="Where the live demo serves.")
@json_option
@quiet_option
@click.pass_obj
def demo(
    settings: Settings,
    once: bool,
    speed: float,
    messages: int,
    port: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Run the pipeline end to end on three emulated Skype desktops with wrong clocks.

    Starts the stack, three emulated desktops (clock skews +0, +47 and -83 s, three time
    zones) each with its own agent, the processor, the publisher and the web server, and plays
    a scenario: several chats, edits, deletions, the same text twice, a bot repeating itself,
    one Skype quitting and coming back, Kafka frozen for a few seconds. Without --once it
    serves the archive at http://127.0.0.1:PORT and keeps messages coming until Ctrl-C. Then,
    or with --once at the scenario's end, it waits until everything played is published,
    prints the summary and exits 0 only when the archive matches the ground truth of what
    was played.
    """
    from chatchannels.demo.run import DemoOptions, run_demo
    from chatchannels.demo.summary import render_summary

    options = DemoOptions(once=once, speed=speed, messages=messages, port=port)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the demo stops what it started.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    # Ctrl-C (SIGINT) stops the demo even when it started with SIGINT ignored, as a shell
    # script's background job (`demo &`, nohup) does: Python then installs no handler, and
    # the demo could only be killed, leaving its broker frozen to the guard.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def say(line: str) -> None:
        if not quiet:
            click.echo(f"demo: {line}", err=True)

    result = run_demo(settings, options, say)
    if as_json:
        found = dataclasses.asdict(result)
        found.update(
            site=str(result.site), score={**found["score"], "perfect": result.score.perfect}
        )
        click.echo(json.dumps(found, sort_keys=True, default=str))
    else:
        click.echo(render_summary(result))
    if not result.score.perfect:
        # An answer, not a failure: exit 1 (errors.py, exit codes).
        raise click.ClickException("the archive differs from the scenario's ground truth")
