"""Desktop API client over D-Bus: `GET CHATMESSAGE n BODY` round trips per second.

Measured one at a time and pipelined (many commands in flight), each against its ceiling
measured in the same run: a bare D-Bus echo method (`Echo(s) -> s`, no protocol, no client
layer) called the same way, carrying a string as long as the GET reply. Two peers, each in
its own process (as Skype is) on its own private dbus-daemon: a minimal Skype-like service
(the client's own cost) and the project's emulator playing the bundled small scenario
(what the agent meets in the tests).

    python -m bench.bench_desktop_api            # alone (no stack needed)
    python -m bench                               # with every other benchmark
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from dbus_fast import Message, MessageType

from bench import children
from bench.report import Figure, report
from chatchannels.emulator.scenario import bundled_scenario
from chatchannels.ingest.desktop_api.client import SkypeClient
from chatchannels.ingest.desktop_api.dbus_transport import PatientMessageBus as MessageBus
from chatchannels.ingest.desktop_api.errors import NotAttached, SkypeNotRunning
from chatchannels.ingest.desktop_api.objects import Skype
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
SECONDS_PER_SLICE = 0.5
ROUNDS = 4
IN_FLIGHT = 64


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
    deadline = loop.time() + SECONDS_PER_SLICE
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


async def measure(stub_address: str, emulator_address: str) -> list[Figure]:
    echo_bus = await MessageBus(bus_address=stub_address).connect()
    stub = SkypeClient("BenchDesktopApi", bus_address=stub_address)
    emulated = SkypeClient("BenchDesktopApi", bus_address=emulator_address)
    try:
        await stub.connect(wait=True, timeout=10)
        await emulated.connect(wait=True, timeout=10)
        # Every message the emulator holds once its timeline ran: real ids, real bodies.
        await _run_emulator_timeline(emulator_address)
        messages = await _emulated_message_ids(emulated)

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

        async def get_from_stub(n: int) -> object:
            return await stub.command(f"GET CHATMESSAGE {100000 + n} BODY")

        async def get_from_emulator(n: int) -> object:
            return await emulated.command(f"GET CHATMESSAGE {messages[n % len(messages)]} BODY")

        figures = []
        modes = (("one at a time", 1), (f"pipelined, {IN_FLIGHT} in flight", IN_FLIGHT))
        peers = {"echo": echo, "stub": get_from_stub, "emulator": get_from_emulator}
        for label, workers in modes:
            # Short alternating slices, best of each: the machine is shared, and a slowdown
            # then hits the ceiling and the figures alike instead of one of them.
            best = dict.fromkeys(peers, 0.0)
            for _ in range(ROUNDS):
                for peer, call in peers.items():
                    best[peer] = max(best[peer], await _rate(call, workers))
            for peer in ("stub", "emulator"):
                name = f"desktop_api GET CHATMESSAGE BODY from {peer}, {label}"
                figures.append(Figure(name, best[peer], "round trips/s", best["echo"]))
        return figures
    finally:
        await stub.close()
        await emulated.close()
        echo_bus.disconnect()


async def _run_emulator_timeline(address: str) -> None:
    bus = await MessageBus(bus_address=address).connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.chatchannels.Emulator",
                path="/org/chatchannels/Emulator",
                interface="org.chatchannels.Emulator",
                member="RunToEnd",
            )
        )
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"emulator RunToEnd failed: {reply.error_name} {reply.body}")
    finally:
        bus.disconnect()


async def _emulated_message_ids(client: SkypeClient) -> list[str]:
    skype = Skype(client)
    # The scenario quits and restarts alice's Skype: the client may be re-attaching.
    for _ in range(5):
        try:
            ids = [m.id for chat in await skype.chats() for m in await chat.messages()]
        except (NotAttached, SkypeNotRunning):
            await client.wait_attached(timeout=10)
            continue
        if not ids:
            raise RuntimeError("the emulator's scenario left no messages to read")
        return ids
    raise RuntimeError(f"could not list the emulator's messages (state {client.state.value})")


def run(settings: object = None) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        session_bus(Path(tmp) / "stub") as stub_bus,
        session_bus(Path(tmp) / "emulator") as emulator_bus,
    ):
        peers = [children.start(["-m", "bench.bench_desktop_api", "serve", stub_bus.address])]
        try:
            peers.append(
                children.start_emulator(
                    bundled_scenario("small.json"), "alice-pc", emulator_bus.address
                )
            )
            figures = asyncio.run(measure(stub_bus.address, emulator_bus.address))
        finally:
            for peer in peers:
                children.stop(peer)
    report("Desktop API client over D-Bus (ceiling: bare D-Bus echo, same run)", figures)
    return figures


if __name__ == "__main__":
    children.sigterm_unwinds()
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(serve(sys.argv[2]))
    else:
        run()
