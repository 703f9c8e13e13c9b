"""The emulator as a real D-Bus service on a real dbus-daemon.

`dbus-send` opens a new connection per call, and attach state is per connection (spec 3.2),
so it can prove the service answers (NAME -> OK, introspection, the control object) and
that an unattached connection gets `ERROR 68`, but never attach and read in one connection.
The attached read uses a bare dbus-fast connection (not the project's client) instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from chatchannels.emulator.runner import Emulator
from chatchannels.emulator.scenario import bundled_scenario, load_scenario
from chatchannels.stack.processes import die_with_parent

pytestmark = pytest.mark.integration

GROUP = "#cecil/$bob;4d8cc9965791c6b9"
# dbus-send answers in milliseconds; its own default is 25 s.
DBUS_SEND_TIMEOUT_S = 30.0


async def dbus_send(address: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "dbus-send",
        "--session",
        "--print-reply",
        *args,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), DBUS_SEND_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(
            f"dbus-send {' '.join(args)} got no answer within {DBUS_SEND_TIMEOUT_S:g} s"
        ) from None
    return out.decode()


async def skype_send(address: str, command: str) -> str:
    return await dbus_send(
        address, "--dest=com.Skype.API", "/com/Skype", "com.Skype.API.Invoke", f"string:{command}"
    )


async def control(address: str, method: str, *args: str) -> str:
    return await dbus_send(
        address,
        "--dest=org.chatchannels.Emulator",
        "/org/chatchannels/Emulator",
        f"org.chatchannels.Emulator.{method}",
        *args,
    )


async def control_status(address: str) -> dict:
    """Status() through the control object, as another process reads it."""
    return json.loads((await control(address, "Status")).split('"', 1)[1][:-2])


async def eventually(check: Callable[[], Awaitable[object] | object], what: str, timeout=10.0):
    """Poll `check` until it returns something truthy; on timeout say what was last seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


class RawClient:
    """A bare dbus-fast connection speaking the Skype protocol by hand."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.notes: list[str] = []
        self.owner_changes: list[tuple[str, str, str]] = []
        bus.add_message_handler(self._on_message)

    @classmethod
    async def connect(cls, address: str) -> RawClient:
        client = cls(await MessageBus(bus_address=address).connect())
        await client.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',member='NameOwnerChanged',arg0='com.Skype.API'"],
            )
        )
        return client

    def _on_message(self, msg: Message):
        if msg.message_type == MessageType.SIGNAL and msg.member == "NameOwnerChanged":
            self.owner_changes.append(tuple(msg.body))
        elif msg.message_type == MessageType.METHOD_CALL and msg.member == "Notify":
            assert (msg.path, msg.interface, msg.signature) == (
                "/com/Skype/Client",
                "com.Skype.API.Client",
                "s",
            )
            self.notes.append(msg.body[0])
            return True
        return None

    async def invoke(self, command: str) -> str:
        reply = await self.bus.call(
            Message(
                destination="com.Skype.API",
                path="/com/Skype",
                interface="com.Skype.API",
                member="Invoke",
                signature="s",
                body=[command],
            )
        )
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        return reply.body[0]


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 60))


def test_dbus_send_sees_a_real_service(dbus_bus):
    async def scenario():
        async with Emulator(
            load_scenario(bundled_scenario("small.json")), {"alice-pc": dbus_bus.address}
        ):
            assert 'string "OK"' in await skype_send(dbus_bus.address, "NAME x")
            # A new connection: not attached, so the documented refusal.
            refused = await skype_send(dbus_bus.address, "#1 GET CHATMESSAGE 300 BODY")
            assert 'string "#1 ERROR 68"' in refused
            introspection = await dbus_send(
                dbus_bus.address,
                "--dest=com.Skype.API",
                "/com/Skype",
                "org.freedesktop.DBus.Introspectable.Introspect",
            )
            assert '<method name="Invoke">' in introspection
            assert "uint32 29" in await control(dbus_bus.address, "Step", "uint32:0")

    run(scenario())


def test_attach_receive_read_edit_over_dbus(dbus_bus):
    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}):
            client = await RawClient.connect(dbus_bus.address)
            assert await client.invoke("#0 NAME ChatArchive") == "#0 OK"
            assert await client.invoke("#1 PROTOCOL 8") == "#1 PROTOCOL 8"
            await eventually(lambda: len(client.notes) >= 3, "attach notifications")
            assert client.notes[:3] == [
                "CONNSTATUS ONLINE",
                "CURRENTUSERHANDLE alice",
                "USERSTATUS ONLINE",
            ]
            client.notes.clear()
            # Steps 1-3: alice posts, bob answers, cecil posts a two-line body.
            assert "uint32 26" in await control(dbus_bus.address, "Step", "uint32:3")
            received = await eventually(
                lambda: [n for n in client.notes if n.endswith("STATUS RECEIVED")], "two receipts"
            )
            await eventually(lambda: len([n for n in client.notes if "RECEIVED" in n]) == 2, "2nd")
            received = [n.split()[1] for n in client.notes if n.endswith("STATUS RECEIVED")]
            body = await client.invoke(f"#2 GET CHATMESSAGE {received[1]} BODY")
            assert (
                body
                == f'#2 CHATMESSAGE {received[1]} BODY  indented, "quotes" & <angle>\nsecond line'
            )
            chat = await client.invoke(f"#3 GET CHATMESSAGE {received[1]} CHATNAME")
            assert chat == f"#3 CHATMESSAGE {received[1]} CHATNAME {GROUP}"
            ts = await client.invoke(f"GET CHATMESSAGE {received[1]} TIMESTAMP")
            assert ts == f"CHATMESSAGE {received[1]} TIMESTAMP {1357987875 + 10 + 3}"
            sent = await client.invoke(f"CHATMESSAGE {GROUP} from the API")
            assert sent.startswith("CHATMESSAGE ") and sent.endswith(" STATUS SENDING")
            await eventually(lambda: client.notes[-1].endswith("STATUS SENT"), "STATUS SENT")
            status = await control_status(dbus_bus.address)
            assert status["attached"] and status["applied"] == 3

    run(scenario())


def test_a_call_made_as_the_name_appears_is_answered(dbus_bus, monkeypatch):
    """A client that sees com.Skype.API appear calls at once: the call may be handled before
    the service's start() has resumed, and must be answered all the same (an unanswered NAME
    left the demo's agent pending authorization for a minute)."""
    from chatchannels.emulator import service

    answers: list[str] = []
    own = service._own

    async def own_then_called(bus, name, address):
        await own(bus, name, address)
        if name != service.SKYPE_NAME:
            return
        client = await RawClient.connect(address)
        answers.append(await asyncio.wait_for(client.invoke("NAME early"), 5))
        client.bus.disconnect()

    monkeypatch.setattr(service, "_own", own_then_called)

    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}):
            assert answers == ["OK"]

    run(scenario())


def test_quit_restart_and_faults_over_dbus(dbus_bus):
    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}) as emu:
            client = await RawClient.connect(dbus_bus.address)
            assert await client.invoke("NAME a") == "OK"
            assert "method return" in await control(dbus_bus.address, "Quit")
            await eventually(lambda: [c for c in client.owner_changes if not c[2]], "owner gone")
            with pytest.raises(AssertionError, match=r"ServiceUnknown|not provided"):
                await client.invoke("PING")
            await control(dbus_bus.address, "Restart")
            await eventually(lambda: client.owner_changes[-1][2] != "", "owner back")
            # Skype forgot every client: attach again.
            assert await client.invoke("#0 PING") == "#0 ERROR 68"
            assert await client.invoke("#0 NAME a") == "#0 OK"
            await control(dbus_bus.address, "SetFault", "string:reply_via_notify", "boolean:true")
            client.notes.clear()
            assert await client.invoke("#5 PING") == ""
            await eventually(lambda: "#5 PONG" in client.notes, "reply via Notify")
            await control(dbus_bus.address, "SetFault", "string:reply_via_notify", "boolean:false")
            await control(dbus_bus.address, "SetFault", "string:refuse_consent", "boolean:true")
            assert 'string "ERROR 68"' in await skype_send(dbus_bus.address, "NAME x")
            bad = await control(dbus_bus.address, "SetFault", "string:nonsense", "boolean:true")
            assert "UnknownFault" in bad
            assert emu.world.hosts["alice-pc"].running

    run(scenario())


def test_two_hosts_on_two_buses_see_one_post_with_their_own_ids(dbus_bus, tmp_path):
    from chatchannels.stack.dbus import session_bus

    async def scenario(bob_address: str):
        world = load_scenario(bundled_scenario("small.json"))
        buses = {"alice-pc": dbus_bus.address, "bob-laptop": bob_address}
        async with Emulator(world, buses):
            alice, bob = (
                await RawClient.connect(dbus_bus.address),
                await RawClient.connect(bob_address),
            )
            for c in (alice, bob):
                assert await c.invoke("NAME t") == "OK"
                assert await c.invoke("PROTOCOL 8") == "PROTOCOL 8"
            await control(bob_address, "Step", "uint32:2")
            await eventually(lambda: any("RECEIVED" in n for n in alice.notes), "alice receipt")
            await eventually(lambda: any(n.endswith("SENT") for n in bob.notes), "bob sent")
            a_id = [n for n in alice.notes if n.endswith("RECEIVED")][-1].split()[1]
            b_id = [n for n in bob.notes if n.endswith("SENT")][-1].split()[1]
            assert a_id != b_id
            a_body = await alice.invoke(f"GET CHATMESSAGE {a_id} BODY")
            b_body = await bob.invoke(f"GET CHATMESSAGE {b_id} BODY")
            assert a_body.split(" ", 3)[3] == b_body.split(" ", 3)[3]
            a_ts = await alice.invoke(f"GET CHATMESSAGE {a_id} TIMESTAMP")
            b_ts = await bob.invoke(f"GET CHATMESSAGE {b_id} TIMESTAMP")
            assert int(a_ts.split()[-1]) - int(b_ts.split()[-1]) == 3 + 95

    with session_bus(tmp_path / "bob-dbus") as bob_bus:
        run(scenario(bob_bus.address))


def test_cli_subprocess_is_driven_through_the_control_object(dbus_bus):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatchannels.cli",
            "emulate",
            "--scenario",
            str(bundled_scenario("small.json")),
            "--bus",
            f"alice-pc={dbus_bus.address}",
            "--step",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        said, _, _ = select.select([proc.stdout], [], [], 60)
        assert said, f"the emulator said nothing within 60 s (exit status {proc.poll()})"
        ready = json.loads(proc.stdout.readline())
        assert ready == {"ready": True, "hosts": {"alice-pc": dbus_bus.address}, "actions": 29}

        async def drive():
            assert "uint32 24" in await control(dbus_bus.address, "Step", "uint32:5")
            assert "uint32 24" in await control(dbus_bus.address, "RunToEnd")
            assert 'string "OK"' in await skype_send(dbus_bus.address, "NAME x")

        run(drive())
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_speed_mode_plays_the_timeline_by_itself(dbus_bus):
    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        # 115 scenario seconds at 2000x: the timeline is over in well under a second.
        async with Emulator(world, {"alice-pc": dbus_bus.address}, speed=2000) as emu:
            client = await RawClient.connect(dbus_bus.address)
            assert await client.invoke("NAME fast") == "OK"
            await asyncio.wait_for(emu.finished.wait(), 30)
            assert emu.applied == emu.total == 29
            # alice's Skype quit and restarted on the way (at 70 and 80): attach again.
            assert await client.invoke("PING") == "ERROR 68"
            assert await client.invoke("NAME fast") == "OK"
            missed = await client.invoke("SEARCH MISSEDCHATMESSAGES")
            assert missed.startswith("CHATMESSAGES ") and len(missed.split(", ")) > 3
            host = emu.world.hosts["alice-pc"]
            hostile = host.messages[host.local_ids["hostile"]]
            assert hostile.timestamp == 1357987875 + 65 + 3

    run(scenario())


def test_stop_playing_ends_the_timeline_between_two_actions(dbus_bus):
    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        # 115 scenario seconds at 50x: an action every 80 ms on average, over in 2.3 s.
        async with Emulator(world, {"alice-pc": dbus_bus.address}, speed=50) as emu:
            client = await RawClient.connect(dbus_bus.address)
            await eventually(lambda: emu.applied >= 5, "five actions played")
            played = await emu.stop_playing()
            assert played == emu.applied < emu.total
            # Many actions' worth of time: none is played any more.
            await asyncio.sleep(1.0)
            assert emu.applied == played and not emu.finished.is_set()
            # The desktop stays up, to be read.
            assert await client.invoke("NAME late") == "OK"
            assert await emu.stop_playing() == played

    run(scenario())


def test_python_api_drives_actions_in_process(dbus_bus):
    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}) as emu:
            client = await RawClient.connect(dbus_bus.address)
            assert await client.invoke("NAME t") == "OK"
            assert await client.invoke("PROTOCOL 8") == "PROTOCOL 8"
            first = await emu.act("post", chat=GROUP, author="bob", body="same")
            second = await emu.act("post", chat=GROUP, author="bob", body="same")
            assert first != second
            await emu.act("delete", msg=first)
            await emu.act("fault", host="alice-pc", fault="drop_received", on=True)
            await emu.act("post", chat=GROUP, author="cecil", body="quiet")
            await eventually(
                lambda: (
                    sum(n.endswith("STATUS RECEIVED") for n in client.notes) == 2
                    and client.notes[-1].startswith(f"CHAT {GROUP} ACTIVITY_TIMESTAMP")
                ),
                "two receipts, a deletion, then an activity line alone",
            )
            deleted = [n for n in client.notes if n.endswith(" BODY ")]
            assert len(deleted) == 1

    run(scenario())


def test_a_connection_cut_from_outside_is_reported_and_comes_back(dbus_bus, caplog):
    """Skype's connection closed under the emulator (its socket shut down, as the bus daemon
    would on a broken pipe): Status() says it is not running and why, the log says so, and
    Skype is back as after a restart, its clients forgotten."""

    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}) as emu:
            client = await RawClient.connect(dbus_bus.address)
            assert await client.invoke("NAME a") == "OK"
            emu.skype["alice-pc"].bus._sock.shutdown(socket.SHUT_RDWR)

            async def reported():
                status = await control_status(dbus_bus.address)
                return status if not status["running"] else None

            status = await eventually(reported, "Status() reporting the lost connection")
            assert status["connection_lost"]
            await eventually(lambda: [c for c in client.owner_changes if not c[2]], "owner gone")
            await eventually(lambda: emu.status("alice-pc")["running"], "Skype back")
            status = emu.status("alice-pc")
            assert status["connection_lost"] is None and status["connections_lost"] == 1
            assert "connection was lost (EOFError)" in caplog.text
            await eventually(lambda: client.owner_changes[-1][2] != "", "owner back")
            # Like a restart: attach again.
            assert await client.invoke("#0 PING") == "#0 ERROR 68"
            assert await client.invoke("#0 NAME a") == "#0 OK"
            assert "uint32 28" in await control(dbus_bus.address, "Step", "uint32:1")

    with caplog.at_level(logging.WARNING, logger="chatchannels.emulator"):
        run(scenario())


def test_a_connection_lost_while_the_scenario_has_skype_quit_stays_down(dbus_bus):
    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}) as emu:
            service = emu.skype["alice-pc"]
            service.bus._sock.shutdown(socket.SHUT_RDWR)
            await eventually(lambda: service.losses == 1, "the loss noticed")
            await emu.quit("alice-pc")
            recovery = emu._recoveries["alice-pc"]
            await asyncio.wait_for(recovery, 10)
            assert not service.running and not emu.status("alice-pc")["running"]
            await emu.restart("alice-pc")
            assert service.running and emu.status("alice-pc")["running"]

    run(scenario())


def test_a_quit_right_after_an_unnoticed_loss_is_a_quit(dbus_bus):
    """The connection ended, and the scenario quits Skype before the emulator's watch saw it:
    the quit stands, without the loss's error, and without a comeback."""

    async def scenario():
        world = load_scenario(bundled_scenario("small.json"))
        async with Emulator(world, {"alice-pc": dbus_bus.address}) as emu:
            service = emu.skype["alice-pc"]
            bus = service.bus
            bus._sock.shutdown(socket.SHUT_RDWR)
            # Loop turns only, no sleep: the watch must not get its turn before the quit.
            for _ in range(1000):
                if not bus.connected:
                    break
                await asyncio.sleep(0)
            assert not bus.connected and service.losses == 0
            await emu.quit("alice-pc")
            recovery = emu._recoveries.get("alice-pc")
            if recovery is not None:
                await asyncio.wait_for(recovery, 10)
            assert not service.running and not emu.status("alice-pc")["running"]

    run(scenario())
