"""The Desktop API client and object layer against the project's emulator on a real bus."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from chatchannels.emulator.runner import Emulator
from chatchannels.emulator.scenario import bundled_scenario, load_scenario
from chatchannels.ingest.desktop_api import errors
from chatchannels.ingest.desktop_api.client import AttachState
from chatchannels.ingest.desktop_api.objects import Chat, ChatMessage, Skype
from chatchannels.ingest.desktop_api.protocol import ObjectProperty, Pong
from tests.support.skype_stub import Recorder, eventually, new_client, run

pytestmark = pytest.mark.integration

HOST = "alice-pc"
GROUP = "#cecil/$bob;4d8cc9965791c6b9"
START = 1357987875


def small_world():
    return load_scenario(bundled_scenario("small.json"))


def received_ids(seen: Recorder) -> list[str]:
    return [
        n.reply.obj_id
        for n in seen.notifications
        if isinstance(n.reply, ObjectProperty)
        and (n.reply.obj, n.reply.prop, n.reply.value) == ("CHATMESSAGE", "STATUS", "RECEIVED")
    ]


def test_attach_receive_and_read_through_objects(dbus_bus):
    async def scenario():
        async with Emulator(small_world(), {HOST: dbus_bus.address}) as emu:
            client = new_client(dbus_bus.address)
            seen = Recorder(client)
            skype = Skype(client)
            try:
                await client.connect()
                assert client.protocol == 8
                await emu.step(3)  # alice posts, bob answers, cecil posts a two-line body
                ids = await eventually(
                    lambda: received_ids(seen), lambda r: len(r) == 2, "two STATUS RECEIVED"
                )
                message = ChatMessage(client, ids[1])
                body, chat_name, timestamp, author = await asyncio.gather(
                    message.body, message.chat_name, message.timestamp, message.from_handle
                )
                assert body == ' indented, "quotes" & <angle>\nsecond line'
                assert chat_name == GROUP
                assert timestamp == datetime.fromtimestamp(START + 10 + 3, UTC)
                assert author == "cecil"
                assert await Chat(client, chat_name).members == ("bob", "cecil", "alice")
                assert GROUP in [c.id for c in await skype.chats()]
                with pytest.raises(errors.InvalidChatName):
                    await Chat(client, "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.skype").topic
            finally:
                await client.close()

    run(scenario)


def test_reattach_after_quit_and_restart_and_reply_via_notify(dbus_bus):
    async def scenario():
        async with Emulator(small_world(), {HOST: dbus_bus.address}) as emu:
            client = new_client(dbus_bus.address)
            seen = Recorder(client)
            try:
                await client.connect()
                await emu.quit(HOST)
                await eventually(
                    lambda: client.state, lambda s: s is AttachState.NOT_AVAILABLE, "detach"
                )
                await emu.restart(HOST)
                await client.wait_attached(timeout=20)
                assert seen.states[-2:] == [AttachState.PENDING_AUTHORIZATION, AttachState.ATTACHED]
                emu.world.set_fault(HOST, "reply_via_notify", True)
                replies = await asyncio.gather(*(client.command("PING") for _ in range(20)))
                assert replies == [Pong()] * 20
            finally:
                await client.close()

    run(scenario)


def test_a_client_skype_forgot_raises_and_attaches_again(dbus_bus):
    """ERROR 68 to an attached client (Skype restarted under the same name, or a call that
    reached the new Skype before its NameOwnerChanged reached us): even `invoke`, which
    returns other ERROR lines verbatim, raises, and the client attaches again."""

    async def scenario():
        async with Emulator(small_world(), {HOST: dbus_bus.address}) as emu:
            client = new_client(dbus_bus.address)
            seen = Recorder(client)
            try:
                await client.connect()
                emu.world.hosts[HOST].connections.clear()
                with pytest.raises(errors.AccessDenied):
                    await client.invoke("GET CURRENTUSERHANDLE")
                await client.wait_attached(timeout=20)
                assert seen.states[-3:] == [
                    AttachState.NOT_ATTACHED,
                    AttachState.PENDING_AUTHORIZATION,
                    AttachState.ATTACHED,
                ]
                assert await client.invoke("GET CURRENTUSERHANDLE") == "CURRENTUSERHANDLE alice"
            finally:
                await client.close()

    run(scenario)


def test_refused_consent(dbus_bus):
    async def scenario():
        async with Emulator(small_world(), {HOST: dbus_bus.address}) as emu:
            emu.world.set_fault(HOST, "refuse_consent", True)
            client = new_client(dbus_bus.address)
            try:
                with pytest.raises(errors.AttachRefused):
                    await client.connect(wait=True, timeout=20)
                assert client.state is AttachState.REFUSED
            finally:
                await client.close()

    run(scenario)
