"""The Desktop API client against a real dbus-daemon.

Until the project's emulator exists, the peer is `SkypeStub`, a tiny Skype-like service
written here with dbus-fast: it owns `com.Skype.API`, answers a few commands and pushes
Notify calls, with switches for the behaviours of spec §3 (refusal, offline, slow consent,
replies via Notify, quitting, and holding replies until enough commands are in flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from dbus_fast import Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

from chatchannels.ingest.desktop_api import errors
from chatchannels.ingest.desktop_api.client import AttachState, Backoff, Notification, SkypeClient
from chatchannels.ingest.desktop_api.protocol import (
    ObjectProperty,
    Parameter,
    Pong,
    SearchResult,
    add_command_id,
    format_error,
    format_parameter,
    format_property,
    format_search_result,
    split_command_id,
)

pytestmark = pytest.mark.integration

FAST = Backoff(initial=0.05, maximum=0.5)


@dataclass
class StubConfig:
    refuse: bool = False
    offline_attempts: int = 0  # answer NAME with CONNSTATUS OFFLINE this many times
    consent: asyncio.Event | None = None  # NAME waits for this event when set
    reply_via_notify: bool = False
    hold_until_in_flight: int = 0  # answer GETs only once this many are waiting
    # (object, id, property) -> value, answered to GET; unknown ones give an ERROR.
    properties: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # exact command text (without #id) -> reply text, checked before anything else
    answers: dict[str, str] = field(default_factory=dict)
    # SEARCH word -> (reply noun, items)
    searches: dict[str, tuple[str, list[str]]] = field(
        default_factory=lambda: {"CHATS": ("CHATS", ["#alice/$bob;a7ab206ec78060f1"])}
    )
    extra_notifications: list[str] = field(default_factory=list)


class SkypeStub:
    def __init__(self, address: str, config: StubConfig | None = None) -> None:
        self.address = address
        self.config = config or StubConfig()
        self.bus: MessageBus | None = None
        self.attached: set[str] = set()
        self.received: list[str] = []
        self.name_attempts = 0
        self._held: list[tuple[Message, str]] = []
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.add_message_handler(self._handle)
        await self.bus.request_name("com.Skype.API")

    async def quit(self) -> None:
        """Simulated quit: release the name (clients see NameOwnerChanged), forget attaches."""
        assert self.bus is not None
        await self.bus.release_name("com.Skype.API")
        self.bus.disconnect()
        await self.bus.wait_for_disconnect()
        self.bus = None
        self.attached.clear()

    def notify(self, client: str, text: str) -> None:
        assert self.bus is not None
        self.bus.send(
            Message(
                destination=client,
                path="/com/Skype/Client",
                interface="com.Skype.API.Client",
                member="Notify",
                signature="s",
                body=[text],
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )

    def _handle(self, msg: Message) -> Message | bool | None:
        if not (
            msg.message_type == MessageType.METHOD_CALL
            and msg.path == "/com/Skype"
            and msg.member == "Invoke"
        ):
            return None
        line = msg.body[0]
        self.received.append(line)
        cmd_id, text = split_command_id(line)
        words = text.split(" ")
        verb = words[0].upper()
        if verb == "NAME":
            task = asyncio.get_running_loop().create_task(self._attach(msg, cmd_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True
        if msg.sender not in self.attached:
            return self._reply(msg, cmd_id, format_error(68))
        if self.config.hold_until_in_flight and words[:2] == ["GET", "CHATMESSAGE"]:
            self._held.append((msg, cmd_id))
            if len(self._held) >= self.config.hold_until_in_flight:
                held, self._held = self._held, []
                for held_msg, held_id in held:
                    self._send_reply(held_msg, held_id, self._answer(held_msg.body[0]))
            return True
        if verb == "GET" and words[1:] == ["BLACKHOLE"]:
            return True  # never answered: the client's timeout must fire
        return self._reply(msg, cmd_id, self._answer(text))

    def _answer(self, line: str) -> str:
        _, text = split_command_id(line)
        if text in self.config.answers:
            return self.config.answers[text]
        words = text.split(" ")
        verb = words[0].upper()
        if verb == "PROTOCOL":
            return format_parameter("PROTOCOL", str(min(int(words[1]), 8)))
        if verb == "PING":
            return "PONG"
        if words[:2] == ["GET", "CURRENTUSERHANDLE"]:
            return format_parameter("CURRENTUSERHANDLE", "alice")
        if verb == "GET" and len(words) == 4:
            obj, obj_id, prop = words[1:]
            value = self.config.properties.get((obj, obj_id, prop))
            if value is not None:
                return format_property(obj, obj_id, prop, value)
            return format_error(105, "Invalid chat name") if obj == "CHAT" else format_error(7)
        if verb == "SEARCH" and words[1] in self.config.searches:
            noun, items = self.config.searches[words[1]]
            return format_search_result(noun, items)
        if verb == "CHATMESSAGE":
            message_id = str(1000 + len(self.received))
            self.config.properties[("CHATMESSAGE", message_id, "BODY")] = text.split(" ", 2)[2]
            return format_property("CHATMESSAGE", message_id, "STATUS", "SENDING")
        if words[:2] == ["ALTER", "CHAT"] and words[3] == "SETTOPIC":
            self.config.properties[("CHAT", words[2], "TOPIC")] = text.split(" ", 4)[4]
            return "ALTER CHAT SETTOPIC"
        return format_error(2, "Unknown command")

    async def _attach(self, msg: Message, cmd_id: str | None) -> None:
        self.name_attempts += 1
        if self.config.consent is not None:
            await self.config.consent.wait()
        if self.config.refuse:
            self._send_reply(msg, cmd_id, format_error(68))
            return
        if self.name_attempts <= self.config.offline_attempts:
            self._send_reply(msg, cmd_id, format_parameter("CONNSTATUS", "OFFLINE"))
            return
        self.attached.add(msg.sender)
        self._send_reply(msg, cmd_id, "OK")
        for text in [
            "CONNSTATUS ONLINE",
            "CURRENTUSERHANDLE alice",
            "USERSTATUS ONLINE",
            *self.config.extra_notifications,
        ]:
            self.notify(msg.sender, text)

    def _reply(self, msg: Message, cmd_id: str | None, text: str) -> Message | bool:
        if self.config.reply_via_notify and msg.sender in self.attached:
            self._send_reply(msg, cmd_id, text)
            return True
        return Message.new_method_return(msg, "s", [_with_id(cmd_id, text)])

    def _send_reply(self, msg: Message, cmd_id: str | None, text: str) -> None:
        assert self.bus is not None
        if self.config.reply_via_notify and msg.sender in self.attached:
            # Skype4Java copes with an empty return value; the reply then comes via Notify.
            self.bus.send(Message.new_method_return(msg, "s", [""]))
            self.notify(msg.sender, _with_id(cmd_id, text))
            return
        self.bus.send(Message.new_method_return(msg, "s", [_with_id(cmd_id, text)]))


def _with_id(cmd_id: str | None, text: str) -> str:
    return text if cmd_id is None else add_command_id(cmd_id, text)


# --- helpers --------------------------------------------------------------------------


def run(scenario: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def eventually(observe: Callable[[], object], ok: Callable[[object], bool], what: str):
    """Poll `observe()` until `ok(value)`; on timeout say what was last seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        value = observe()
        if ok(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}")
        await asyncio.sleep(0.01)


class Recorder:
    """Collects notifications and states a client reports."""

    def __init__(self, client: SkypeClient) -> None:
        self.notifications: list[Notification] = []
        self.states: list[AttachState] = []
        client.add_notification_handler(self.notifications.append)
        client.add_state_handler(self.states.append)

    @property
    def lines(self) -> list[str]:
        return [n.line for n in self.notifications]


def message_bodies(bodies: dict[str, str]) -> dict[tuple[str, str, str], str]:
    return {("CHATMESSAGE", n, "BODY"): body for n, body in bodies.items()}


def new_client(address: str, **kwargs) -> SkypeClient:
    kwargs.setdefault("backoff", FAST)
    return SkypeClient("ChatArchive", bus_address=address, **kwargs)


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
