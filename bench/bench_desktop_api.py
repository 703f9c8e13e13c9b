"""Desktop API client over D-Bus: `GET CHATMESSAGE n BODY` round trips per second.

Measured one at a time and pipelined (many commands in flight), each against its ceiling
measured in the same run: a bare D-Bus echo method (`Echo(s) -> s`, no protocol, no client
layer) called the same way, carrying a string as long as the GET reply. The peer is a small
Skype-like service in a separate process (as Skype is), on a private dbus-daemon.

    python -m bench.bench_desktop_api            # alone (no stack needed)
    python -m bench                               # with every other benchmark
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from bench.report import Figure, report
from chatchannels.ingest.desktop_api.client import SkypeClient
from chatchannels.ingest.desktop_api.protocol import (
    add_command_id,
    format_error,
    format_parameter,
    format_property,
    split_command_id,
)
from chatchannels.stack.dbus import session_bus

ECHO_NAME = "org.chatchannels.BenchEcho"
ECHO_PATH = "/org/chatchannels/BenchEcho"
BODY = "A typical chat line, with some punctuation; and a second clause to make it ~100 chars."
SECONDS_PER_FIGURE = 2.5
IN_FLIGHT = 64
REPO = Path(__file__).resolve().parents[1]


# --- the peer (runs in its own process) -----------------------------------------------


def _answer(text: str) -> str:
    words = text.split(" ")
    if words[0] == "NAME":
        return "OK"
    if words[0] == "PROTOCOL":
        return format_parameter("PROTOCOL", "8")
    if words[:2] == ["GET", "CHATMESSAGE"] and len(words) == 4:
        return format_property("CHATMESSAGE", words[2], words[3], BODY)
    return format_error(2, "Unknown command")


def _serve_message(msg: Message) -> Message | None:
    if msg.message_type != MessageType.METHOD_CALL:
        return None
    if msg.path == ECHO_PATH and msg.member == "Echo":
        return Message.new_method_return(msg, "s", [msg.body[0]])
    if msg.path == "/com/Skype" and msg.member == "Invoke":
        cmd_id, text = split_command_id(msg.body[0])
        reply = _answer(text)
        return Message.new_method_return(
            msg, "s", [reply if cmd_id is None else add_command_id(cmd_id, reply)]
        )
    return None


async def serve(address: str) -> None:
    bus = await MessageBus(bus_address=address).connect()
    bus.add_message_handler(_serve_message)
    await bus.request_name(ECHO_NAME)
    await bus.request_name("com.Skype.API")
    await bus.wait_for_disconnect()


# --- the measurements -----------------------------------------------------------------


async def _rate(call: Callable[[int], Awaitable[object]], workers: int) -> float:
    """Round trips per second with `workers` loops each keeping one call in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SECONDS_PER_FIGURE
    done = 0

    async def worker(offset: int) -> None:
        nonlocal done
        n = offset
        while loop.time() < deadline:
            await call(n)
            done += 1
            n += workers

    start = loop.time()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    return done / (loop.time() - start)


async def measure(address: str) -> list[Figure]:
    client = SkypeClient("BenchDesktopApi", bus_address=address)
    await client.connect(wait=True, timeout=10)
    echo_bus = await MessageBus(bus_address=address).connect()
    try:

        async def get_body(n: int) -> object:
            return await client.command(f"GET CHATMESSAGE {100000 + n} BODY")

        async def echo(n: int) -> object:
            text = format_property("CHATMESSAGE", str(100000 + n), "BODY", BODY)
            reply = await echo_bus.call(
                Message(
                    destination=ECHO_NAME,
                    path=ECHO_PATH,
                    interface=ECHO_NAME,
                    member="Echo",
                    signature="s",
                    body=[text],
                )
            )
            return reply.body[0]

        figures = []
        modes = (("one at a time", 1), (f"pipelined, {IN_FLIGHT} in flight", IN_FLIGHT))
        for label, workers in modes:
            ceiling = await _rate(echo, workers)
            value = await _rate(get_body, workers)
            figures.append(
                Figure(
                    f"desktop_api GET CHATMESSAGE BODY, {label}", value, "round trips/s", ceiling
                )
            )
        return figures
    finally:
        await client.close()
        echo_bus.disconnect()


def run(settings: object = None) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp, session_bus(Path(tmp)) as bus:
        peer = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_desktop_api", "serve", bus.address],
            cwd=REPO,
        )
        try:
            figures = asyncio.run(measure(bus.address))
        finally:
            peer.terminate()
            peer.wait(timeout=10)
    report("Desktop API client over D-Bus (ceiling: bare D-Bus echo, same run)", figures)
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(serve(sys.argv[2]))
    else:
        run()
