"""The Linux D-Bus transport of the Skype Desktop API (spec §3), on dbus-fast with asyncio.

One bus connection carries everything: `com.Skype.API.Invoke(s) -> s` calls to Skype, the
`com.Skype.API.Client.Notify(s)` calls Skype makes back to us, and the bus daemon's
`NameOwnerChanged` signal that tells when Skype starts or quits. Nothing here knows the
text protocol; the client (client.py) does.

`PatientMessageBus` is dbus-fast's asyncio bus with one fix, used by the agent and the
emulator alike: a send that finds the socket buffer full waits until the socket is writable,
where dbus-fast 5.2.0 treats EAGAIN as a lost connection (python-dbus-next #153, inherited).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dbus_fast import BusType, Message, MessageType, aio
from dbus_fast.annotations import DBusStr
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_method

from chatchannels.ingest.desktop_api.errors import DesktopApiError, SkypeNotRunning, TransportError

SKYPE_BUS_NAME = "com.Skype.API"
SKYPE_PATH = "/com/Skype"
SKYPE_INTERFACE = "com.Skype.API"
CLIENT_PATH = "/com/Skype/Client"
CLIENT_INTERFACE = "com.Skype.API.Client"

_DBUS_NAME = "org.freedesktop.DBus"
_DBUS_PATH = "/org/freedesktop/DBus"
# D-Bus errors that mean "nobody owns com.Skype.API right now" (spec §3.4, T5).
_NOT_RUNNING_ERRORS = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
    }
)

_log = logging.getLogger(__name__)


class _SendOrWait:
    """The socket as dbus-fast's writer sees it: a send into a full buffer writes 0 bytes.

    dbus-fast's writer (`aio.message_bus._MessageWriter.write_callback`, its one place that
    writes) already handles a short send: it keeps the rest of the message and waits for the
    socket to become writable (`loop.add_writer`). Only EAGAIN, the short send of 0 bytes,
    falls into its `except Exception`, which finalizes the bus: every pending call fails and
    Skype seems to have left. Turning EAGAIN into `0` routes it through the short-send path.
    We wrap the socket rather than copy the writer's loop (or switch library) because this is
    the smallest change at that one place, and the same one-line fix upstream (catch
    BlockingIOError there and return) makes the wrapper a no-op; a test pins the behaviour.
    The writer's other call, `sendmsg`, only carries Unix fds, which we never negotiate.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock) -> None:
        self._sock = sock

    def send(self, data) -> int:
        try:
            return self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0


class PatientMessageBus(aio.MessageBus):
    """dbus-fast's asyncio bus whose sends wait out a full socket buffer (see _SendOrWait).

    The backlog then grows in the writer's queue instead: bounding it is the caller's
    choice (the agent's `max_commands`), no longer a guard against losing the connection.
    """

    async def connect(self) -> PatientMessageBus:
        await super().connect()
        # connect() sends only Hello, through sock_sendall; the writer has sent nothing yet.
        self._writer.sock = _SendOrWait(self._writer.sock)
        return self


class _ClientObject(ServiceInterface):
    """`/com/Skype/Client`: Skype calls Notify here once per notification string."""

    def __init__(self, on_notify: Callable[[str], None]) -> None:
        super().__init__(CLIENT_INTERFACE)
        self._on_notify = on_notify

    # No return annotation: dbus-fast reads it as the out-signature, and Notify has none.
    @dbus_method(name="Notify")
    def notify(self, text: DBusStr):
        self._on_notify(text)


class DBusTransport:
    """A connection to one bus, speaking to whoever owns `com.Skype.API` there.

    `on_notify(text)` gets every Notify string; `on_owner_changed(owner)` gets Skype's new
    unique name, or "" when Skype went away; `on_disconnect(exc)` fires once if the bus
    connection itself is lost. Callbacks run on the event loop and must not block.
    """

    def __init__(
        self,
        bus_address: str | None,
        on_notify: Callable[[str], None],
        on_owner_changed: Callable[[str], None],
        on_disconnect: Callable[[BaseException | None], None],
    ) -> None:
        self._bus_address = bus_address
        self._on_notify = on_notify
        self._on_owner_changed = on_owner_changed
        self._on_disconnect = on_disconnect
        self._bus: PatientMessageBus | None = None
        self._watch: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def unique_name(self) -> str | None:
        return self._bus.unique_name if self._bus else None

    async def open(self) -> None:
        """Connect, export `/com/Skype/Client` and watch Skype's name, in that order.

        The export must exist before NAME is sent, or the notifications Skype pushes right
        after attach are lost (spec §3.3). `bus_address` None means the session bus from the
        environment (dbus-fast reads DBUS_SESSION_BUS_ADDRESS).
        """
        try:
            bus = PatientMessageBus(bus_address=self._bus_address, bus_type=BusType.SESSION)
            await bus.connect()
        except Exception as exc:
            # dbus-fast raises ValueError, OSError or auth errors here; one type for callers.
            where = self._bus_address or "the session bus (DBUS_SESSION_BUS_ADDRESS)"
            raise TransportError("connect", f"cannot connect to {where}: {exc}") from exc
        self._bus = bus
        bus.export(CLIENT_PATH, _ClientObject(self._on_notify))
        bus.add_message_handler(self._handle_signal)
        await self._call_bus_daemon(
            "AddMatch",
            "s",
            [
                f"type='signal',sender='{_DBUS_NAME}',interface='{_DBUS_NAME}',"
                f"path='{_DBUS_PATH}',member='NameOwnerChanged',arg0='{SKYPE_BUS_NAME}'"
            ],
        )
        self._watch = asyncio.get_running_loop().create_task(self._watch_disconnect(bus))

    async def skype_owner(self) -> str:
        """Skype's current unique name, or "" when nobody owns com.Skype.API."""
        try:
            reply = await self._call_bus_daemon("GetNameOwner", "s", [SKYPE_BUS_NAME])
        except SkypeNotRunning:
            return ""
        return reply.body[0]

    async def invoke(self, text: str) -> str:
        """One `Invoke` call: the command string in, Skype's return value out.

        Many may be in flight at once; dbus-fast matches each return to its call by serial.
        Raises SkypeNotRunning when nobody owns the name, TransportError for other failures.
        """
        message = Message(
            destination=SKYPE_BUS_NAME,
            path=SKYPE_PATH,
            interface=SKYPE_INTERFACE,
            member="Invoke",
            signature="s",
            body=[text],
        )
        reply = await self._call(message)
        if reply.signature != "s":
            raise TransportError("unexpected-signature", f"Invoke returned {reply.signature!r}")
        return reply.body[0]

    async def close(self) -> None:
        self._closing = True
        if self._bus is not None and self._bus.connected:
            self._bus.disconnect()
        if self._watch is not None:
            # Not cancelled: the watch awaits dbus-fast's own disconnect future, and
            # cancelling the watch would cancel that future for every other waiter.
            try:
                await asyncio.wait_for(asyncio.shield(self._watch), 5)
            except TimeoutError:
                _log.warning("D-Bus connection did not close within 5 s")

    async def _call_bus_daemon(self, member: str, signature: str, body: list) -> Message:
        return await self._call(
            Message(
                destination=_DBUS_NAME,
                path=_DBUS_PATH,
                interface=_DBUS_NAME,
                member=member,
                signature=signature,
                body=body,
            )
        )

    async def _call(self, message: Message) -> Message:
        if self._bus is None or not self._bus.connected:
            raise SkypeNotRunning("the D-Bus connection is not open")
        try:
            reply = await self._bus.call(message)
        except DBusError as exc:
            raise _translate(exc.type, exc.text) from exc
        except (OSError, EOFError) as exc:
            raise SkypeNotRunning(f"D-Bus connection lost: {exc!r}") from exc
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise _translate(reply.error_name or "unknown", text)
        return reply

    def _handle_signal(self, message: Message) -> bool:
        if (
            message.message_type == MessageType.SIGNAL
            and message.member == "NameOwnerChanged"
            and message.sender == _DBUS_NAME
            and message.body
            and message.body[0] == SKYPE_BUS_NAME
        ):
            self._on_owner_changed(message.body[2])
        # Never claim the message: dbus-fast's own name tracking needs it too.
        return False

    async def _watch_disconnect(self, bus: PatientMessageBus) -> None:
        error: BaseException | None = None
        try:
            await bus.wait_for_disconnect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        if not self._closing:
            self._on_disconnect(error)


def _translate(error_name: str, text: str) -> DesktopApiError:
    if error_name in _NOT_RUNNING_ERRORS:
        return SkypeNotRunning(f"{error_name}: {text}")
    return TransportError(error_name, text)
