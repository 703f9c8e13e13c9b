"""D-Bus I/O of the emulator: one Skype per bus, plus a control object for other processes.

`SkypeService` owns `com.Skype.API` on its host's bus (spec 3): `Invoke(s) -> s` on
`/com/Skype`, notifications as `com.Skype.API.Client.Notify(s)` calls to each attached
client's unique name, sent with NO_REPLY_EXPECTED so Skype never waits on a client. The
reply goes out before the notifications the command caused. Quitting closes the connection,
which releases the name (clients see NameOwnerChanged) and forgets every client.

`ControlInterface` is `org.chatchannels.Emulator` on its own connection, so quitting Skype
never removes the means to restart it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from dbus_fast import BusType, Message, MessageFlag, MessageType, NameFlag, RequestNameReply
from dbus_fast.annotations import DBusBool, DBusStr, DBusUInt32
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, method

from chatchannels.emulator.commands import invoke
from chatchannels.emulator.scenario import FAULTS
from chatchannels.ingest.desktop_api.dbus_transport import PatientMessageBus

if TYPE_CHECKING:
    from chatchannels.emulator.runner import Emulator

logger = logging.getLogger(__name__)

SKYPE_NAME = "com.Skype.API"
SKYPE_PATH = "/com/Skype"
CLIENT_PATH = "/com/Skype/Client"
CLIENT_INTERFACE = "com.Skype.API.Client"
CONTROL_NAME = "org.chatchannels.Emulator"
CONTROL_PATH = "/org/chatchannels/Emulator"

_INTROSPECTION = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="com.Skype.API">
    <method name="Invoke">
      <arg name="command" type="s" direction="in"/>
      <arg name="reply" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect">
      <arg name="data" type="s" direction="out"/>
    </method>
  </interface>
</node>
"""


# A clean disconnect is one round trip to the bus daemon; longer means the daemon is stuck.
_DISCONNECT_TIMEOUT_S = 10.0


class EmulatorBusError(RuntimeError):
    """The emulator could not take its place on a bus (name taken, bus unreachable)."""


async def _connect(address: str) -> PatientMessageBus:
    # Patient: a burst of replies and notifications larger than the socket buffer waits for
    # the bus daemon to read, where dbus-fast alone would drop the connection (Skype's name
    # with it, while the agent was mid-backfill).
    try:
        return await PatientMessageBus(bus_address=address, bus_type=BusType.SESSION).connect()
    except (OSError, ValueError) as exc:
        raise EmulatorBusError(f"cannot connect to D-Bus at {address}: {exc}") from exc


async def _own(bus: PatientMessageBus, name: str, address: str) -> None:
    reply = await bus.request_name(name, NameFlag.DO_NOT_QUEUE)
    if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
        bus.disconnect()
        raise EmulatorBusError(f"{name} is already owned on {address} ({reply.name})")


class SkypeService:
    """The Skype side of one host: present while that host's Skype is running.

    A connection lost under it (the bus daemon closed it, a send failed) is noticed, kept as
    `lost` (the reason) and reported to the emulator, which brings Skype back as a restart
    would; `losses` counts them.
    """

    def __init__(self, emulator: Emulator, host_id: str, address: str) -> None:
        self.emulator = emulator
        self.host_id = host_id
        self.address = address
        self.bus: PatientMessageBus | None = None
        self._lost: str | None = None
        self.losses = 0
        self._watch: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        # `connected` as well: between a loss and the watch seeing it, the bus is still set.
        return self.bus is not None and self.bus.connected

    @property
    def lost(self) -> str | None:
        """Why the connection was lost, while Skype is away because of it."""
        if self.bus is not None and not self.bus.connected:
            return "the connection closed"  # the watch has yet to read why
        return self._lost

    async def start(self) -> None:
        bus = await _connect(self.address)
        bus.add_message_handler(self._on_message)
        # Forget clients that disconnect; their attach state is per connection (spec 3.2).
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
            )
        )
        # Answerable before the name is ours: a client that sees the name appear may call
        # at once, and a call handled while `self.bus` was unset went unanswered.
        self.bus = bus
        try:
            await _own(bus, SKYPE_NAME, self.address)
        except EmulatorBusError:
            self.bus = None
            raise
        self._lost = None
        self._watch = asyncio.get_running_loop().create_task(self._watch_connection(bus))

    async def stop(self) -> None:
        bus, self.bus = self.bus, None
        if bus is None:
            return
        bus.disconnect()
        try:
            await asyncio.wait_for(bus.wait_for_disconnect(), _DISCONNECT_TIMEOUT_S)
        except (OSError, EOFError) as exc:
            # Lost just before the quit, unnoticed yet: the quit stands, and the watch
            # takes it for one (`self.bus` is no longer this bus).
            logger.info("%s: Skype's connection had ended before it quit: %r", self.host_id, exc)

    async def _watch_connection(self, bus: PatientMessageBus) -> None:
        try:
            await bus.wait_for_disconnect()
            reason = "the bus daemon closed the connection"
        except Exception as exc:  # the reason the connection ended is what we report
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.bus is not bus:
            return  # stop() ended it: Skype quit
        self.bus = None
        self._lost = reason
        self.losses += 1
        self.emulator.connection_lost(self.host_id, reason)

    def notify(self, connection: str, text: str) -> None:
        if not self.running:
            return
        self.bus.send(
            Message(
                destination=connection,
                path=CLIENT_PATH,
                interface=CLIENT_INTERFACE,
                member="Notify",
                signature="s",
                body=[text],
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )

    def _on_message(self, msg: Message) -> Message | bool | None:
        if msg.message_type == MessageType.SIGNAL:
            if msg.member == "NameOwnerChanged" and msg.signature == "sss" and not msg.body[2]:
                self.emulator.forget_connection(self.host_id, msg.body[0])
            return None
        if msg.message_type != MessageType.METHOD_CALL or msg.path != SKYPE_PATH:
            return None
        if msg.member == "Introspect" and msg.interface in (
            None,
            "org.freedesktop.DBus.Introspectable",
        ):
            return Message.new_method_return(msg, "s", [_INTROSPECTION])
        if msg.member != "Invoke" or msg.interface not in (None, SKYPE_NAME):
            return None
        if msg.signature != "s":
            return Message.new_error(
                msg, "org.freedesktop.DBus.Error.InvalidArgs", "Invoke takes one string (s)"
            )
        self.emulator.sync_clock()
        outcome = invoke(self.emulator.world, self.host_id, msg.sender, msg.body[0])
        if outcome.delay_s:
            asyncio.get_running_loop().call_later(outcome.delay_s, self._answer, msg, outcome)
        else:
            self._answer(msg, outcome)
        return True

    def _answer(self, msg: Message, outcome) -> None:
        if not self.running:
            return
        if not msg.flags & MessageFlag.NO_REPLY_EXPECTED:
            self.bus.send(Message.new_method_return(msg, "s", [outcome.reply]))
        self.emulator.deliver(outcome.notices)


class ControlInterface(ServiceInterface):
    """`org.chatchannels.Emulator`: step the timeline and flip this host's switches."""

    def __init__(self, emulator: Emulator, host_id: str) -> None:
        super().__init__(CONTROL_NAME)
        self.emulator = emulator
        self.host_id = host_id

    @method()
    async def Step(self, count: DBusUInt32) -> DBusUInt32:
        """Apply the next `count` actions; returns how many remain."""
        return await self.emulator.step(count)

    @method()
    async def RunToEnd(self) -> DBusUInt32:
        """Apply every remaining action at once; returns how many were applied."""
        return await self.emulator.run_to_end()

    @method()
    async def Quit(self):
        await self.emulator.quit(self.host_id)

    @method()
    async def Restart(self):
        await self.emulator.restart(self.host_id)

    @method()
    def SetOnline(self, online: DBusBool):
        self.emulator.set_online(self.host_id, online)

    @method()
    def SetFault(self, name: DBusStr, on: DBusBool):
        if name not in FAULTS:
            raise DBusError(
                "org.chatchannels.Emulator.Error.UnknownFault",
                f"unknown fault {name!r}; known: {', '.join(FAULTS)}",
            )
        self.emulator.world.set_fault(self.host_id, name, on)

    @method()
    def Status(self) -> DBusStr:
        return json.dumps(self.emulator.status(self.host_id))


class ControlService:
    def __init__(self, emulator: Emulator, host_id: str, address: str) -> None:
        self.interface = ControlInterface(emulator, host_id)
        self.address = address
        self.bus: PatientMessageBus | None = None

    async def start(self) -> None:
        bus = await _connect(self.address)
        bus.export(CONTROL_PATH, self.interface)
        await _own(bus, CONTROL_NAME, self.address)
        self.bus = bus

    async def stop(self) -> None:
        bus, self.bus = self.bus, None
        if bus is not None:
            bus.disconnect()
            await bus.wait_for_disconnect()
