"""The Desktop API client against a real dbus-daemon.

The peer is `SkypeStub` (tests/support/skype_stub.py), whose switches make each behaviour
of the spec's section 3 happen on demand.
"""

from __future__ import annotations

import asyncio

import pytest

from chatchannels.ingest.desktop_api import errors
from chatchannels.ingest.desktop_api.client import AttachState, Notification
from chatchannels.ingest.desktop_api.protocol import (
    ObjectProperty,
    Parameter,
    Pong,
    SearchResult,
)
from tests.support.skype_stub import (
    Recorder,
    SkypeStub,
    StubConfig,
    eventually,
    message_bodies,
    new_client,
    run,
)

pytestmark = pytest.mark.integration


# --- tests ----------------------------------------------------------------------------


def test_attach_pushes_state_and_negotiates_protocol_8(dbus_bus):
    async def scenario():
        stub = SkypeStub(dbus_bus.address)
        await stub.start()
        client = new_client(dbus_bus.address)

        def broken_handler(_notification):
            raise RuntimeError("a handler bug must not stop the others")

        client.add_notification_handler(broken_handler)
        seen = Recorder(client)
        try:
            await client.connect()
            assert client.state is AttachState.ATTACHED
            assert client.protocol == 8
            assert stub.received == ["#0 NAME ChatArchive", "#1 PROTOCOL 8"]
            assert seen.states == [AttachState.PENDING_AUTHORIZATION, AttachState.ATTACHED]
            await eventually(lambda: seen.lines, lambda v: len(v) == 3, "3 notifications")
            assert seen.lines == [
                "CONNSTATUS ONLINE",
                "CURRENTUSERHANDLE alice",
                "USERSTATUS ONLINE",
            ]
            assert seen.notifications[1].reply == Parameter("CURRENTUSERHANDLE", "alice")
            assert await client.command("PING") == Pong()
            assert await client.command("GET CURRENTUSERHANDLE") == Parameter(
                "CURRENTUSERHANDLE", "alice"
            )
        finally:
            await client.close()
            await stub.quit()
        assert client.state is AttachState.CLOSED

    run(scenario)


def test_many_commands_in_flight_are_matched_by_id(dbus_bus):
    bodies = {str(n): f"body {n}" for n in range(100, 140)}
    bodies["7"] = "  leading spaces\nsecond line\r\nthird, with \U0001f600 "
    bodies["8"] = ""

    async def scenario():
        # The stub answers no GET until 42 of them wait: a client that sent one command at
        # a time would never get a reply.
        stub = SkypeStub(
            dbus_bus.address, StubConfig(properties=message_bodies(bodies), hold_until_in_flight=42)
        )
        await stub.start()
        client = new_client(dbus_bus.address)
        try:
            await client.connect()
            ids = [*bodies]
            replies = await asyncio.gather(
                *(client.command(f"GET CHATMESSAGE {n} BODY") for n in ids)
            )
            assert replies == [ObjectProperty("CHATMESSAGE", n, "BODY", bodies[n]) for n in ids]
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_replies_through_notify_and_unknown_ids_become_notifications(dbus_bus):
    async def scenario():
        stub = SkypeStub(
            dbus_bus.address,
            StubConfig(reply_via_notify=True, properties=message_bodies({"5": "x"})),
        )
        await stub.start()
        client = new_client(dbus_bus.address)
        seen = Recorder(client)
        try:
            await client.connect()
            replies = await asyncio.gather(
                client.command("GET CHATMESSAGE 5 BODY"), client.command("PING")
            )
            assert replies == [ObjectProperty("CHATMESSAGE", "5", "BODY", "x"), Pong()]
            (unique_name,) = stub.attached
            stub.notify(unique_name, "#9999 CHATMESSAGE 5 STATUS READ")
            stub.notify(unique_name, "\u2603 not api text")
            await eventually(lambda: seen.lines, lambda v: len(v) == 5, "5 notifications")
            assert seen.notifications[3] == Notification(
                "CHATMESSAGE 5 STATUS READ", ObjectProperty("CHATMESSAGE", "5", "STATUS", "READ")
            )
            bad = seen.notifications[4]
            assert (bad.line, bad.reply) == ("\u2603 not api text", None)
            assert isinstance(bad.error, errors.ApiParseError)
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_error_replies_raise_typed_errors_and_invoke_keeps_them_verbatim(dbus_bus):
    async def scenario():
        stub = SkypeStub(dbus_bus.address)
        await stub.start()
        client = new_client(dbus_bus.address)
        try:
            await client.connect()
            chat = "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.skype"
            with pytest.raises(errors.InvalidChatName) as info:
                await client.command(f"GET CHAT {chat} TOPIC")
            assert (info.value.code, info.value.text) == (105, "Invalid chat name")
            assert await client.invoke(f"GET CHAT {chat} TOPIC") == "ERROR 105 Invalid chat name"
            with pytest.raises(errors.UnknownCommand):
                await client.command("FROB")
            with pytest.raises(errors.UnknownObject):
                await client.command("GET CHATMESSAGE 1 BODY")
            with pytest.raises(errors.UnknownObject) as info:
                await client.command("GET USER nobody FULLNAME")
            assert info.value.text == ""
            assert await client.command("SEARCH CHATS") == SearchResult(
                "CHATS", ("#alice/$bob;a7ab206ec78060f1",)
            )
            with pytest.raises(errors.CommandTimeout):
                await client.command("GET BLACKHOLE", timeout=0.2)
            assert client.attached  # a timeout is not a detach
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_refusal_and_commands_before_attach(dbus_bus):
    async def scenario():
        stub = SkypeStub(dbus_bus.address, StubConfig(refuse=True))
        await stub.start()
        client = new_client(dbus_bus.address)
        try:
            with pytest.raises(errors.AttachRefused) as info:
                await client.connect()
            assert info.value.reply == "ERROR 68"
            assert client.state is AttachState.REFUSED
            with pytest.raises(errors.NotAttached):
                await client.command("PING")
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_pending_consent_then_granted(dbus_bus):
    async def scenario():
        consent = asyncio.Event()
        stub = SkypeStub(dbus_bus.address, StubConfig(consent=consent))
        await stub.start()
        client = new_client(dbus_bus.address)
        try:
            connecting = asyncio.ensure_future(client.connect())
            await eventually(
                lambda: client.state,
                lambda s: s is AttachState.PENDING_AUTHORIZATION,
                "pending authorization",
            )
            assert not connecting.done()
            consent.set()
            await connecting
            assert client.attached
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_offline_skype_is_retried_until_signed_in(dbus_bus):
    async def scenario():
        stub = SkypeStub(dbus_bus.address, StubConfig(offline_attempts=2))
        await stub.start()
        client = new_client(dbus_bus.address)
        seen = Recorder(client)
        try:
            await client.connect(wait=True, timeout=20)
            assert client.attached
            assert stub.name_attempts == 3
            assert AttachState.OFFLINE in seen.states
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_not_running_then_started(dbus_bus):
    async def scenario():
        # reattach=False still lets connect(wait=True) wait for Skype to appear.
        client = new_client(dbus_bus.address, reattach=False)
        probe = new_client(dbus_bus.address)
        stub = SkypeStub(dbus_bus.address)
        try:
            with pytest.raises(errors.SkypeNotRunning):
                await probe.connect()
            assert probe.state is AttachState.NOT_AVAILABLE
            connecting = asyncio.ensure_future(client.connect(wait=True, timeout=20))
            await eventually(
                lambda: client.state, lambda s: s is AttachState.NOT_AVAILABLE, "not available"
            )
            await stub.start()
            await connecting
            assert client.attached
            assert await client.command("PING") == Pong()
        finally:
            await client.close()
            await probe.close()
            await stub.quit()

    run(scenario)


def test_skype_quits_and_comes_back(dbus_bus):
    async def scenario():
        stub = SkypeStub(dbus_bus.address)
        await stub.start()
        client = new_client(dbus_bus.address)
        seen = Recorder(client)
        try:
            await client.connect()
            pending = asyncio.ensure_future(client.command("GET BLACKHOLE", timeout=30))
            await eventually(lambda: stub.received, lambda r: "GET BLACKHOLE" in r[-1], "GET")
            await stub.quit()
            with pytest.raises(errors.SkypeNotRunning):
                await pending
            await eventually(
                lambda: client.state, lambda s: s is AttachState.NOT_AVAILABLE, "not available"
            )
            with pytest.raises(errors.NotAttached):
                await client.command("PING")

            stub = SkypeStub(dbus_bus.address)
            await stub.start()
            await client.wait_attached(timeout=20)
            assert stub.name_attempts == 1
            assert await client.command("PING") == Pong()
            assert seen.states[-3:] == [
                AttachState.NOT_AVAILABLE,
                AttachState.PENDING_AUTHORIZATION,
                AttachState.ATTACHED,
            ]
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_skype_back_before_the_client_acts_on_its_departure(dbus_bus):
    # Skype quits while the client waits for NAME; the bus then says "nobody owns the name",
    # and a new Skype takes it before the client acts on that answer. The new Skype's
    # NameOwnerChanged arrives while the attach attempt is still running: it must count.
    async def scenario():
        stub = SkypeStub(dbus_bus.address, StubConfig(consent=asyncio.Event()))
        await stub.start()
        client = new_client(dbus_bus.address)
        back = asyncio.Event()
        real_owner = client._transport.skype_owner

        async def stale_owner() -> str:
            owner = await real_owner()
            if not owner and stub.bus is None:
                await back.wait()
            return owner

        client._transport.skype_owner = stale_owner
        connecting = asyncio.ensure_future(client.connect(wait=True, timeout=20))
        try:
            await eventually(lambda: stub.name_attempts, bool, "NAME sent")
            await stub.quit()
            stub = SkypeStub(dbus_bus.address)
            await stub.start()
            await asyncio.sleep(0.05)  # the new owner's NameOwnerChanged is handled meanwhile
            back.set()
            await connecting
            assert stub.name_attempts == 1
            assert await client.command("PING") == Pong()
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_close_fails_pending_commands(dbus_bus):
    async def scenario():
        stub = SkypeStub(dbus_bus.address)
        await stub.start()
        client = new_client(dbus_bus.address)
        try:
            await client.connect()
            pending = asyncio.ensure_future(client.command("GET BLACKHOLE"))
            await eventually(lambda: stub.received, lambda r: "GET BLACKHOLE" in r[-1], "GET")
            await client.close()
            with pytest.raises(errors.NotAttached):
                await pending
            await client.close()  # idempotent
        finally:
            await stub.quit()

    run(scenario)


def test_unusable_bus_address_is_one_clear_error(tmp_path):
    async def scenario():
        for address in (f"unix:path={tmp_path}/no-such-socket", "not-an-address"):
            client = new_client(address)
            with pytest.raises(errors.TransportError) as info:
                await client.connect()
            assert address in str(info.value)

    run(scenario)
