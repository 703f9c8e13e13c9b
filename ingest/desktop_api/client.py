"""Asynchronous Skype Desktop API client: attach, commands with `#id` correlation, notifications.

Typical use::

    client = SkypeClient("ChatArchive", bus_address=bus.address)
    client.add_notification_handler(on_line)      # before connect: attach pushes state at once
    client.add_state_handler(on_state)
    await client.connect(wait=True)               # NAME, then PROTOCOL 8
    replies = await asyncio.gather(*(client.command(f"GET CHATMESSAGE {n} BODY") for n in ids))
    await client.close()

Every command carries a fresh `#<n>` id. The reply is normally the return value of the
Invoke call, but Skype may also deliver it through Notify (spec §3.2); both paths feed the
same router, which resolves the waiting command by id and hands everything else (including
replies with ids we do not know, prefix removed) to the notification handlers (spec §1.2).
Each command is one D-Bus call awaited in the caller's task, so commands issued from
concurrent tasks are all in flight at once.

When Skype quits (NameOwnerChanged with an empty owner) pending commands fail with
SkypeNotRunning and the state becomes NOT_AVAILABLE; when it comes back the client attaches
again, retrying with capped exponential backoff while Skype is starting or signed out.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatchannels.ingest.desktop_api.dbus_transport import DBusTransport
from chatchannels.ingest.desktop_api.errors import (
    AccessDenied,
    ApiParseError,
    AttachRefused,
    CommandTimeout,
    DesktopApiError,
    NotAttached,
    SkypeNotRunning,
    SkypeOffline,
    TransportError,
    error_from_reply,
)
from chatchannels.ingest.desktop_api.protocol import (
    ErrorReply,
    Ok,
    Parameter,
    Reply,
    add_command_id,
    format_name,
    format_protocol,
    parse_int,
    parse_reply,
    split_command_id,
)
from chatchannels.retry import Backoff

_log = logging.getLogger(__name__)


class AttachState(enum.Enum):
    NOT_ATTACHED = "not attached"  # before connect()
    NOT_AVAILABLE = "not available"  # nobody owns com.Skype.API
    PENDING_AUTHORIZATION = "pending authorization"  # NAME sent, the user has not answered
    ATTACHED = "attached"
    REFUSED = "refused"  # the user said no; retried only when Skype restarts
    OFFLINE = "offline"  # Skype runs but is not signed in; retried with backoff
    CLOSED = "closed"  # close() was called or the bus connection was lost


@dataclass(frozen=True)
class Notification:
    """One unsolicited string as received (`line`), parsed when it could be.

    `reply` is None exactly when `error` says why the line is not Desktop API text; the line
    is still delivered so that the caller can keep it (design invariant 8).
    """

    line: str
    reply: Reply | None
    error: ApiParseError | None = None


NotificationHandler = Callable[[Notification], Awaitable[None] | None]
StateHandler = Callable[[AttachState], Awaitable[None] | None]


class SkypeClient:
    """One application attached to one Skype over D-Bus. Not thread-safe; one event loop."""

    def __init__(
        self,
        app_name: str,
        *,
        bus_address: str | None = None,
        protocol: int = 8,
        command_timeout: float = 10.0,
        attach_timeout: float = 60.0,
        reattach: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        format_name(app_name)  # fail early on a name Skype would cut at a space
        self.app_name = app_name
        self.requested_protocol = protocol
        self.command_timeout = command_timeout
        self.attach_timeout = attach_timeout
        self.reattach = reattach
        self.backoff = backoff or Backoff()
        self.protocol: int | None = None
        self._transport = DBusTransport(
            bus_address, self._route_incoming, self._skype_owner_changed, self._bus_lost
        )
        self._state = AttachState.NOT_ATTACHED
        self._ids = itertools.count()
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._notification_handlers: list[NotificationHandler] = []
        self._state_handlers: list[StateHandler] = []
        self._background: set[asyncio.Task] = set()
        self._reattach_task: asyncio.Task[None] | None = None
        # Counts NameOwnerChanged signals, so that an attach attempt can tell whether Skype
        # came back while it was busy (its "nobody owns the name" may be stale by then).
        self._owner_changes = 0
        self._attach_lock = asyncio.Lock()
        self._attached_event = asyncio.Event()
        # Replaced on every state change, so a waiter can sleep until "anything changed".
        self._state_changed = asyncio.Event()
        self._opened = False
        self._closed = False
        self._connect_waiters = 0

    # --- public API -------------------------------------------------------------------

    @property
    def state(self) -> AttachState:
        return self._state

    @property
    def attached(self) -> bool:
        return self._state is AttachState.ATTACHED

    def add_notification_handler(self, handler: NotificationHandler) -> None:
        """Call `handler(Notification)` for every unsolicited string, in arrival order.

        Coroutine handlers are scheduled as tasks; exceptions are logged with the line.
        """
        self._notification_handlers.append(handler)

    def remove_notification_handler(self, handler: NotificationHandler) -> None:
        self._notification_handlers.remove(handler)

    def add_state_handler(self, handler: StateHandler) -> None:
        """Call `handler(new_state)` on every attach-state change (ATTACHED after re-attach too)."""
        self._state_handlers.append(handler)

    async def connect(self, *, wait: bool = False, timeout: float | None = None) -> None:
        """Open the bus (once) and attach.

        With `wait=False` one attempt is made and its failure raised (SkypeNotRunning,
        AttachRefused, SkypeOffline, CommandTimeout). With `wait=True` the client keeps
        retrying (and watching for Skype to appear) until attached, refused, or `timeout`.
        Either way, once the bus is open the client follows Skype from then on: when Skype
        (re)appears it attaches again by itself (unless `reattach=False`). Calling connect()
        again after a failure is allowed.
        """
        if self._closed:
            raise NotAttached("client closed")
        if not self._opened:
            await self._transport.open()
            self._opened = True
        if self.attached:
            return
        if not wait:
            await self._attach()
            return
        self._connect_waiters += 1
        self._start_reattach()
        try:
            await asyncio.wait_for(self._wait_attached_or_refused(), timeout)
        except TimeoutError:
            raise SkypeNotRunning(
                f"not attached within {timeout:g} s (state: {self._state.value})"
            ) from None
        finally:
            self._connect_waiters -= 1

    async def wait_attached(self, timeout: float | None = None) -> None:
        """Wait until attached (again, after Skype restarted); TimeoutError after `timeout`."""
        await asyncio.wait_for(self._attached_event.wait(), timeout)

    async def invoke(self, text: str, *, timeout: float | None = None) -> str:
        """Send one command; return the reply string as received, without the `#id` prefix.

        ERROR replies are returned, not raised: this is the call for callers that keep the
        verbatim lines (the agent's raw events). The exception is `ERROR 68` (access denied),
        which is about the client, not the command: it raises AccessDenied.
        """
        if not self.attached:
            raise NotAttached(f"cannot send {text!r}: {self._state.value}")
        line = await self._exchange(text, self.command_timeout if timeout is None else timeout)
        if line.startswith("ERROR "):
            reply = parse_reply(line)
            if isinstance(reply, ErrorReply) and reply.code in AccessDenied.codes:
                # Skype does not know us: it restarted (a call sent before its new name's
                # NameOwnerChanged reached us lands there) or revoked the app. Raised, even
                # here, so that the caller retries after re-attaching instead of keeping a
                # reply that says nothing about the object asked for.
                if self._state is AttachState.ATTACHED:
                    self._lost_attachment("access denied to an attached client")
                raise error_from_reply(reply, text)
        return line

    async def command(self, text: str, *, timeout: float | None = None) -> Reply:
        """Send one command and return the parsed reply; `ERROR n` raises its typed exception."""
        reply = parse_reply(await self.invoke(text, timeout=timeout))
        if isinstance(reply, ErrorReply):
            raise error_from_reply(reply, text)
        return reply

    async def close(self) -> None:
        """Stop re-attaching, fail pending commands, close the bus. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._set_state(AttachState.CLOSED)
        self._fail_pending(NotAttached("client closed"))
        for task in [self._reattach_task, *self._background]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._reattach_task, *self._background] if t is not None),
            return_exceptions=True,
        )
        await self._transport.close()

    # --- attach -----------------------------------------------------------------------

    async def _attach(self) -> None:
        """NAME then PROTOCOL (spec §2.1). Only one attach runs at a time."""
        async with self._attach_lock:
            if self._state in (AttachState.ATTACHED, AttachState.CLOSED):
                return
            if not await self._transport.skype_owner():
                self._set_state(AttachState.NOT_AVAILABLE)
                raise SkypeNotRunning("nobody owns com.Skype.API on this bus")
            self._set_state(AttachState.PENDING_AUTHORIZATION)
            name_command = format_name(self.app_name)
            try:
                # NAME blocks until the user answers Skype's consent prompt.
                line = await self._exchange(name_command, self.attach_timeout)
                answer = parse_reply(line)
                if isinstance(answer, ErrorReply) and answer.code == 68:
                    self._set_state(AttachState.REFUSED)
                    raise AttachRefused(self.app_name, line)
                if answer == Parameter("CONNSTATUS", "OFFLINE"):
                    self._set_state(AttachState.OFFLINE)
                    raise SkypeOffline(f"Skype is not signed in (reply to NAME: {line!r})")
                if isinstance(answer, ErrorReply):
                    raise error_from_reply(answer, name_command)
                if not isinstance(answer, Ok):
                    raise ApiParseError(line, "unexpected reply to NAME")
                protocol_command = format_protocol(self.requested_protocol)
                line = await self._exchange(protocol_command, self.command_timeout)
                answer = parse_reply(line)
                if isinstance(answer, ErrorReply):
                    raise error_from_reply(answer, protocol_command)
                if not (isinstance(answer, Parameter) and answer.name == "PROTOCOL"):
                    raise ApiParseError(line, "unexpected reply to PROTOCOL")
                # Clients read the last token as the version in force (spec §2.1 step 3).
                self.protocol = parse_int(answer.value.rsplit(" ", 1)[-1])
            except (SkypeNotRunning, CommandTimeout, TransportError):
                if self._state is AttachState.PENDING_AUTHORIZATION:
                    self._set_state(AttachState.NOT_AVAILABLE)
                raise
            except DesktopApiError:
                if self._state is AttachState.PENDING_AUTHORIZATION:
                    self._set_state(AttachState.NOT_ATTACHED)
                raise
            self._set_state(AttachState.ATTACHED)

    async def _wait_attached_or_refused(self) -> None:
        while not self.attached:
            attempt_running = self._reattach_task is not None and not self._reattach_task.done()
            if self._state is AttachState.REFUSED and not attempt_running:
                raise AttachRefused(self.app_name, "ERROR 68")
            if self._state is AttachState.CLOSED:
                raise NotAttached("client closed")
            await self._state_changed.wait()

    def _start_reattach(self) -> None:
        if self._reattach_task is None or self._reattach_task.done():
            self._reattach_task = asyncio.get_running_loop().create_task(self._reattach_loop())

    async def _reattach_loop(self) -> None:
        for delay in self.backoff.delays():
            if self._state in (AttachState.ATTACHED, AttachState.CLOSED):
                return
            owner_changes = self._owner_changes
            try:
                await self._attach()
                return
            except AttachRefused:
                return
            except SkypeNotRunning:
                gone = not await self._transport.skype_owner()
                if gone and owner_changes == self._owner_changes:
                    # Not running at all: NameOwnerChanged will start a new loop. Unless it
                    # already came while this one was running: _start_reattach left it to us.
                    return
            except (SkypeOffline, CommandTimeout, TransportError, ApiParseError) as exc:
                _log.info("attach failed, retrying in %.2f s: %s", delay, exc)
            except DesktopApiError as exc:
                if self._closed:
                    return
                _log.warning("attach failed, retrying in %.2f s: %s", delay, exc)
            await asyncio.sleep(delay)

    def _skype_owner_changed(self, owner: str) -> None:
        if self._closed:
            return
        self._owner_changes += 1
        if not owner:
            self._lost_attachment("Skype left the bus", AttachState.NOT_AVAILABLE)
            return
        # A new Skype process (or the old one came back): attach state was per connection.
        self._lost_attachment("Skype restarted", AttachState.NOT_AVAILABLE)
        if self.reattach or self._connect_waiters:
            self._start_reattach()

    def _lost_attachment(self, why: str, state: AttachState = AttachState.NOT_ATTACHED) -> None:
        self.protocol = None
        self._fail_pending(SkypeNotRunning(why))
        if self._state is not state:
            self._set_state(state)
        if self.reattach and state is AttachState.NOT_ATTACHED:
            self._start_reattach()

    def _bus_lost(self, error: BaseException | None) -> None:
        _log.error("D-Bus connection lost: %r", error)
        self._fail_pending(SkypeNotRunning(f"D-Bus connection lost: {error!r}"))
        self._set_state(AttachState.CLOSED)

    def _set_state(self, state: AttachState) -> None:
        if state is self._state:
            return
        self._state = state
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        if state is AttachState.ATTACHED:
            self._attached_event.set()
        else:
            self._attached_event.clear()
        for handler in list(self._state_handlers):
            self._run_handler(handler, state, f"state handler for {state.value}")

    # --- command correlation ----------------------------------------------------------

    async def _exchange(self, text: str, timeout: float) -> str:
        cmd_id = str(next(self._ids))
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = future
        try:
            async with asyncio.timeout(timeout):
                try:
                    returned = await self._transport.invoke(add_command_id(cmd_id, text))
                except Exception as exc:
                    if future.done():
                        # close() or Skype's departure already said why; that reason wins.
                        return future.result()
                    raise self._call_failed(exc) from exc
                # An empty return value means the reply will come through Notify (spec §3.2).
                if returned:
                    self._route_incoming(returned)
                return await future
        except TimeoutError:
            raise CommandTimeout(text, timeout) from None
        finally:
            self._pending.pop(cmd_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: asyncio must not log it as forgotten

    def _call_failed(self, exc: Exception) -> DesktopApiError:
        error = (
            exc
            if isinstance(exc, DesktopApiError)
            else TransportError(type(exc).__name__, str(exc))
        )
        if isinstance(error, SkypeNotRunning) and self._state is AttachState.ATTACHED:
            self._lost_attachment(str(error), AttachState.NOT_AVAILABLE)
        return error

    def _route_incoming(self, line: str) -> None:
        cmd_id, text = split_command_id(line)
        if cmd_id is not None:
            future = self._pending.get(cmd_id)
            if future is not None:
                if not future.done():
                    future.set_result(text)
                return
        self._deliver_notification(text)

    def _deliver_notification(self, line: str) -> None:
        try:
            notification = Notification(line, parse_reply(line))
        except ApiParseError as exc:
            _log.warning("unparseable notification kept as-is: %s", exc)
            notification = Notification(line, None, exc)
        for handler in list(self._notification_handlers):
            self._run_handler(handler, notification, f"notification handler for {line!r}")

    def _run_handler(self, handler: Callable, argument: object, what: str) -> None:
        try:
            result = handler(argument)
        except Exception:
            _log.exception("%s failed", what)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            task.add_done_callback(lambda t: _log_task_failure(t, what))

    def _fail_pending(self, error: DesktopApiError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)


def _log_task_failure(task: asyncio.Task, what: str) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("%s failed", what, exc_info=task.exception())
