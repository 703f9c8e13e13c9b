"""`SkypeStub`: a tiny Skype-like service on a real dbus-daemon, written with dbus-fast, for
testing the Desktop API client before and beside the emulator. It owns `com.Skype.API`,
answers a few commands and pushes Notify calls, with switches for the behaviours of the
Desktop API spec section 3 (refusal, offline, slow consent, replies via Notify, quitting, and
holding replies until enough commands are in flight); and the helpers those tests share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from dbus_fast import Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

from chatchannels.ingest.desktop_api.client import AttachState, Backoff, Notification, SkypeClient
from chatchannels.ingest.desktop_api.protocol import (
    add_command_id,
    format_error,
    format_parameter,
    format_property,
    format_search_result,
    split_command_id,
)

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
