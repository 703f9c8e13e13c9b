"""The capture loop: Skype notifications and backfills in, object reads out, in order.

Every read is a task; tasks are consumed strictly in the order they were started, so events
reach the spool in the order Skype's notifications and the backfill asked for them, while up
to `read_window` reads have their GETs in flight at once (pipelined, spec §3.2). A read that
fails because Skype went away (or whose GETs time out) is remembered and done again after
re-attach and at each rescan.

What is read follows spec §6.4 and §10.2.4 (see reads.py for the decisions): a message
notification costs one GET (CHATNAME, for the allow-list) and, if the message is new or its
content changed, one burst of GETs for the rest; a status change of a known message stays a
small event (known: read in full this session). Chats outside the allow-list are never read
beyond the GETs that decide it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from chatchannels.ingest.agent.allowlist import AllowList
from chatchannels.ingest.agent.marks import MarkWalk
from chatchannels.ingest.agent.reads import (
    Exchange,
    Kind,
    Notice,
    ObjectRead,
    chat_gets,
    classify,
    message_gets,
    message_ids,
    session_gets,
)
from chatchannels.ingest.desktop_api.client import AttachState, Notification, SkypeClient
from chatchannels.ingest.desktop_api.errors import CommandTimeout, DesktopApiError
from chatchannels.ingest.desktop_api.protocol import (
    ApiParseError,
    ObjectProperty,
    SearchResult,
    format_get,
    format_search,
    parse_reply,
)
from chatchannels.rawevents import EventClock

log = logging.getLogger(__name__)

_CHAT_SEARCHES = ("CHATS", "RECENTCHATS", "BOOKMARKEDCHATS", "ACTIVECHATS", "MISSEDCHATS")


@dataclass(frozen=True)
class Captured:
    """One read ready for the spool: the event's content and its clock."""

    read: ObjectRead
    clock: EventClock
    # The message this read holds in full (Skype answered every GET): what marks count.
    message_id: int | None = None


@dataclass
class _Entry:
    task: asyncio.Task[list[Captured]]
    written: asyncio.Future[None] | None = None


# Writes a batch of events and, in the same transaction, the chats' new marks.
Sink = Callable[[list[Captured], dict[str, int]], Awaitable[None]]
Clock = Callable[[], EventClock]
Read = Callable[[], Awaitable[list[Captured]]]


@dataclass
class CaptureState:
    """What the capture knows.

    `marks` (per chat, from the spool, rising as events are written): every message of the
    chat up to its mark is in the spool. Only backfills raise it (marks.py), because only
    they know a chat's whole message list; live reads and polls pick single messages (a poll
    sees only unread ones), and a mark raised from them would claim messages never read.
    """

    marks: dict[str, int]
    allowed: dict[str, bool] = field(default_factory=dict)
    backfilled: set[str] = field(default_factory=set)
    backfilling: set[str] = field(default_factory=set)
    # Backfills asked for while one of the chat ran: (reason, overlap) of one more pass.
    again: dict[str, tuple[str, bool]] = field(default_factory=dict)
    # Message ids whose full read this session is written to the spool.
    captured: set[int] = field(default_factory=set)
    # Full read enqueued, running or being written: polls and backfills skip these.
    reading: set[int] = field(default_factory=set)
    # Full read enqueued by a notification and its GETs not sent yet: further notifications
    # about the message are folded into small events, since the read will see their effect.
    queued: set[int] = field(default_factory=set)
    queued_chats: set[str] = field(default_factory=set)
    # Reads that failed because Skype went away, or timed out; done again after re-attach
    # and at each rescan.
    missed: set[int] = field(default_factory=set)
    attached_once: bool = False


class Capture:
    def __init__(
        self,
        client: SkypeClient,
        allow: AllowList,
        sink: Sink,
        clock: Clock,
        marks: dict[str, int],
        overlap: int = 20,
        read_window: int = 32,
        max_commands: int = 200,
        rescan_interval_s: float = 300.0,
    ) -> None:
        self.client = client
        self.allow = allow
        self.sink = sink
        self.clock = clock
        self.state = CaptureState(marks=dict(marks))
        self.overlap = overlap
        self.rescan_interval_s = rescan_interval_s
        self._slots = asyncio.Semaphore(read_window)
        # Commands awaiting their reply. Pipelining is the point; the bound is a tuning knob
        # (memory and latency of the commands queued behind a full socket buffer), since
        # the transport's sends wait for the socket instead of dropping the connection.
        self._commands = asyncio.Semaphore(max_commands)
        self._entries: collections.deque[_Entry] = collections.deque()
        self._entry_added = asyncio.Event()
        self._notices: asyncio.Queue[str] = asyncio.Queue()
        self._job: asyncio.Task[None] | None = None
        self._chat_jobs: set[asyncio.Task] = set()
        self._walks: dict[str, MarkWalk] = {}
        self._tasks: list[asyncio.Task] = []
        self.failed: BaseException | None = None
        client.add_notification_handler(self._on_notification)
        client.add_state_handler(self._on_state)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._drain(), name="capture-drain"),
            loop.create_task(self._dispatch(), name="capture-dispatch"),
            loop.create_task(self._rescan_now_and_then(), name="capture-rescan"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        if self.client.attached:
            self._on_state(AttachState.ATTACHED)

    async def stop(self) -> None:
        """Stop reacting, write every read already started, then end (SIGTERM path)."""
        drain, *others = self._tasks
        jobs = [t for t in (self._job, *others, *self._chat_jobs) if t is not None]
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        if self._entries and not drain.done():
            await self._barrier()
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)

    def _task_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.failed = task.exception()
            log.error("capture task %s failed", task.get_name(), exc_info=self.failed)

    # --- attach and re-attach: the jobs -------------------------------------------------

    def _on_state(self, state: AttachState) -> None:
        log.info("attach state: %s", state.value)
        if state is not AttachState.ATTACHED:
            # Messages may be posted while we are away; the re-attach backfill reads them.
            self.state.backfilled.clear()
            return
        reason = "reattach" if self.state.attached_once else "backfill"
        self.state.attached_once = True
        if self._job is not None and not self._job.done():
            self._job.cancel()
        self._job = asyncio.get_running_loop().create_task(self._attach_job(reason))
        self._job.add_done_callback(lambda t: _log_failure(t, f"attach ({reason})"))

    async def _attach_job(self, reason: str) -> None:
        """Session read, chat discovery, then each allowed chat: its read and its backfill."""
        try:
            await self._enqueue(partial(self._read_session, reason))
            chats = await self._discover_chats()
            for chat in sorted(chats):
                if await self._decide(chat):
                    await self._backfill(chat, reason)
            await self._read_missed(reason)
            await self._barrier()
            log.info("%s done: %d chats allowed", reason, sum(self.state.allowed.values()))
        except DesktopApiError as exc:
            # Skype went away mid-job; the next ATTACHED starts a new one.
            log.warning("%s interrupted: %s", reason, exc)

    async def _discover_chats(self) -> set[str]:
        """Union of every chat listing (spec §5.4: SEARCH CHATS alone is incomplete)."""
        found = set(self.allow.names)
        replies = await asyncio.gather(
            *(self.client.invoke(format_search(what)) for what in _CHAT_SEARCHES)
        )
        for what, line in zip(_CHAT_SEARCHES, replies, strict=True):
            try:
                reply = parse_reply(line)
            except ApiParseError as exc:
                log.warning("SEARCH %s: %s", what, exc)
                continue
            if isinstance(reply, SearchResult):
                found.update(reply.items)
            else:
                log.warning("SEARCH %s answered %r", what, line)
        return found

    async def _read_missed(self, reason: str) -> None:
        # Forced: a message captured before may have changed in what we missed. An id
        # leaves `missed` only once read in full, so a job cut short by another quit loses none.
        for message_id in sorted(self.state.missed - self.state.reading):
            read = partial(self._read_message, message_id, reason, None, forced=True)
            await self._enqueue(read, reading=message_id)

    async def _backfill(self, chat: str, reason: str, overlap: bool = True) -> None:
        """Every message of `chat` above its mark not read yet, oldest first.

        With `overlap` (start-up, re-attach) the last few below the mark are read again: a
        crash may have come between spooling them and saying so (harmless repeats).

        Asked for while one runs, it makes the running one list the chat once more when done:
        what that one listed may be older than the reason for asking (a re-attach after a
        quit that cut it short). A pass that left reads undone while Skype is still there
        (timeouts) is tried once more too.
        """
        state = self.state
        if chat in state.backfilling:
            # One more pass, with the overlap if any of those asking wanted it.
            _, overlap_asked = state.again.get(chat, (reason, False))
            state.again[chat] = (reason, overlap or overlap_asked)
            return
        state.backfilling.add(chat)
        try:
            retried = False
            while True:
                try:
                    complete = await self._backfill_chat(
                        chat, reason, self.overlap if overlap else 0
                    )
                except DesktopApiError:
                    if chat not in state.again:
                        raise
                    complete = False
                if chat in state.again:
                    reason, overlap = state.again.pop(chat)
                elif not complete and self.client.attached and not retried:
                    retried, overlap = True, False
                else:
                    return
        finally:
            state.backfilling.discard(chat)
            state.again.pop(chat, None)

    async def rescan(self) -> None:
        """Backfill every allowed chat from its mark: finds what no notification announced
        (offline delivery, own messages a poll does not list, dropped notifications)."""
        for chat in sorted(c for c, allowed in self.state.allowed.items() if allowed):
            await self._backfill(chat, "backfill", overlap=False)
        await self._read_missed("backfill")

    async def _backfill_chat(self, chat: str, reason: str, overlap: int) -> bool:
        """One pass; whether every message it set out to read was captured."""
        state = self.state
        await self._enqueue(partial(self._read_chat, chat, reason, None))
        exchange = await self._exchange(format_get("CHAT", chat, "CHATMESSAGES"))
        value = _property_value(exchange, "CHATMESSAGES")
        if value is None:
            await self._keep(ObjectRead(reason, "CHAT", chat, None, (exchange,)))
            return False
        ids, junk = message_ids(value)
        if junk:
            problem = f"CHATMESSAGES items that are not ids: {junk[:5]}"
            read = ObjectRead(reason, "CHAT", chat, None, (), trigger_problem=problem)
            await self._keep(read)
        mark = state.marks.get(chat)
        floor = -1 if mark is None else mark - overlap
        todo = [i for i in ids if i > floor and i not in state.captured and i not in state.reading]
        log.info("%s of %s: %d of %d messages", reason, chat, len(todo), len(ids))
        walk = MarkWalk(ids, mark)
        self._walks[chat] = walk
        try:
            for message_id in todo:
                read = partial(self._read_message, message_id, reason, None, chat=chat)
                await self._enqueue(read, reading=message_id)
            await self._barrier()
        finally:
            if self._walks.get(chat) is walk:
                del self._walks[chat]
        complete = all(i in state.captured for i in todo)
        if complete and self.client.attached:
            state.backfilled.add(chat)
        return complete

    async def _rescan_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self.rescan_interval_s)
            if self.client.attached and (self._job is None or self._job.done()):
                try:
                    await self.rescan()
                except DesktopApiError as exc:
                    log.info("rescan put off: %s", exc)

    # --- notifications ------------------------------------------------------------------

    def _on_notification(self, notification: Notification) -> None:
        self._notices.put_nowait(notification.line)

    async def _dispatch(self) -> None:
        while True:
            line = await self._notices.get()
            try:
                await self._react(classify(line))
            finally:
                self._notices.task_done()

    async def _react(self, notice: Notice) -> None:
        state = self.state
        match notice.kind:
            case Kind.MESSAGE_STATUS | Kind.MESSAGE_CONTENT:
                message_id = _int_id(notice.obj_id)
                if message_id is None:
                    await self._keep(_odd(notice, "message id is not a number"))
                elif message_id in state.queued:
                    await self._enqueue(partial(self._read_message_small, message_id, notice))
                else:
                    state.queued.add(message_id)
                    read = partial(self._read_message, message_id, "notification", notice)
                    await self._enqueue(read, reading=message_id)
            case Kind.CHAT_ACTIVITY:
                await self._enqueue_chat_job(notice, self._poll(notice))
            case Kind.CHAT_STRUCTURE:
                chat = notice.obj_id
                if chat in state.queued_chats and state.allowed.get(chat):
                    await self._keep(self._small(notice, "CHAT"))
                else:
                    await self._enqueue_chat_job(notice, self._chat_changed(notice))
            case Kind.CHAT_SMALL:
                if state.allowed.get(notice.obj_id):
                    await self._keep(self._small(notice, "CHAT"))
            case Kind.SESSION:
                await self._keep(self._small(notice, "SESSION", "notification"))
                if notice.prop == "CONNSTATUS" and notice.value == "ONLINE":
                    # Back online: Skype synced history silently, no notification replays it.
                    await self._enqueue_chat_job(notice, self.rescan())
            case Kind.ODD:
                await self._keep(_odd(notice, notice.problem))

    async def _enqueue_chat_job(self, notice: Notice, job: Awaitable[None]) -> None:
        # Chat-level reactions may start many reads; they run beside the dispatcher so that
        # one slow chat does not hold up notifications about others.
        task = asyncio.get_running_loop().create_task(job)
        self._chat_jobs.add(task)
        task.add_done_callback(self._chat_jobs.discard)
        task.add_done_callback(lambda t: _log_failure(t, notice.line))

    async def _poll(self, notice: Notice) -> None:
        """ACTIVITY_TIMESTAMP: read the recent messages not yet captured (spec §6.4 gap)."""
        chat = notice.obj_id
        if not await self._decide(chat):
            return
        if chat not in self.state.backfilled:
            # Also while a backfill runs: what it listed may predate this activity.
            await self._backfill(chat, "backfill")
            return
        exchange = await self._exchange(format_get("CHAT", chat, "RECENTCHATMESSAGES"))
        value = _property_value(exchange, "RECENTCHATMESSAGES")
        if value is None:
            await self._keep(ObjectRead("poll", "CHAT", chat, notice.line, (exchange,)))
            return
        ids, _ = message_ids(value)
        for message_id in ids:
            if message_id in self.state.captured or message_id in self.state.reading:
                continue
            read = partial(self._read_message, message_id, "poll", notice, chat=chat)
            await self._enqueue(read, reading=message_id)

    async def _chat_changed(self, notice: Notice) -> None:
        chat = notice.obj_id
        known = chat in self.state.allowed
        topic = notice.value if notice.prop == "TOPIC" else None
        if not await self._decide(chat, topic):
            return
        self.state.queued_chats.add(chat)
        await self._enqueue(partial(self._read_chat, chat, "notification", notice))
        if not known or chat not in self.state.backfilled:
            await self._backfill(chat, "backfill")

    async def _decide(self, chat: str, topic: str | None = None) -> bool:
        """Whether `chat` may be read; reads only its TOPIC, and only when patterns need it.

        Once allowed, a chat stays allowed for this session: a topic edited away from a
        pattern must not cut its history in two.
        """
        state = self.state
        if state.allowed.get(chat):
            return True
        allowed = self.allow.allows(chat)
        if not allowed and self.allow.needs_topic:
            if topic is None:
                exchange = await self._exchange(format_get("CHAT", chat, "TOPIC"))
                if exchange.reply is None:
                    # Timed out: no decision to remember; the chat's next mention asks again.
                    return False
                topic = _property_value(exchange, "TOPIC")
            allowed = self.allow.allows(chat, topic)
        state.allowed[chat] = allowed
        if allowed:
            log.info("chat %s is on the allow-list", chat)
        return allowed

    # --- reads (each runs as one ordered task) ------------------------------------------

    async def _read_session(self, reason: str) -> list[Captured]:
        exchanges = await self._exchanges(session_gets())
        return [self._captured(ObjectRead(reason, "SESSION", "attach", None, exchanges))]

    async def _read_chat(self, chat: str, reason: str, notice: Notice | None) -> list[Captured]:
        self.state.queued_chats.discard(chat)
        exchanges = await self._exchanges(chat_gets(chat))
        trigger = notice.line if notice else None
        return [self._captured(ObjectRead(reason, "CHAT", chat, trigger, exchanges))]

    async def _read_message(
        self,
        message_id: int,
        reason: str,
        notice: Notice | None,
        chat: str | None = None,
        forced: bool = False,
    ) -> list[Captured]:
        state = self.state
        obj_id = str(message_id)
        gets = message_gets(obj_id)
        full = False
        try:
            if chat is None:
                first = await self._exchange(gets[0])
                chat = _property_value(first, "CHATNAME")
                if chat is None:
                    # Skype's answer says what is wrong (no such message, say): kept as is. A
                    # timed-out CHATNAME keeps the notification that asked for it.
                    exchanges: tuple[Exchange, ...] = (first,)
                else:
                    if not await self._decide(chat):
                        state.missed.discard(message_id)
                        return []
                    # Only a message read in full this session gets away with a status line;
                    # not one merely under the chat's mark: that mark may come from an
                    # earlier session, and the message may have changed meanwhile.
                    if (
                        notice is not None
                        and notice.kind is Kind.MESSAGE_STATUS
                        and not forced
                        and message_id in state.captured
                    ):
                        return [self._captured(_read_of("status", obj_id, notice, (first,)))]
                    state.queued.discard(message_id)
                    exchanges = (first, *await self._exchanges(gets[1:]))
            else:
                state.queued.discard(message_id)
                exchanges = await self._exchanges(gets)
            full = all(e.reply is not None for e in exchanges)
        except DesktopApiError as exc:
            self._put_off(message_id, exc)
            return []
        finally:
            state.queued.discard(message_id)
            if not full:
                # A full read leaves `reading` when written (_drain), not before: a backfill
                # listing the chat meanwhile must not read it again.
                state.reading.discard(message_id)
        read = _read_of(reason, obj_id, notice, exchanges)
        if not full:
            self._put_off(message_id, "a command timed out")
            return [self._captured(read)]
        state.missed.discard(message_id)
        return [self._captured(read, message_id)]

    def _put_off(self, message_id: int, why: object) -> None:
        self.state.missed.add(message_id)
        log.info("read of message %s put off: %s", message_id, why)

    async def _read_message_small(self, message_id: int, notice: Notice) -> list[Captured]:
        """A notification about a message whose full read is already queued: keep the line."""
        try:
            first = await self._exchange(format_get("CHATMESSAGE", str(message_id), "CHATNAME"))
        except DesktopApiError as exc:
            self._put_off(message_id, exc)
            return []
        chat = _property_value(first, "CHATNAME")
        if chat is not None and not await self._decide(chat):
            return []
        return [self._captured(_read_of("status", str(message_id), notice, (first,)))]

    async def _keep(self, read: ObjectRead) -> None:
        """Enqueue an event that needs no GET (a notification kept as it came, a problem)."""

        async def ready() -> list[Captured]:
            return [self._captured(read)]

        await self._enqueue(ready)

    def _small(self, notice: Notice, obj: str, reason: str = "status") -> ObjectRead:
        obj_id = notice.obj_id or notice.prop or "notification"
        return ObjectRead(reason, obj, obj_id, notice.line, (), trigger_problem=notice.problem)

    def _captured(self, read: ObjectRead, message_id: int | None = None) -> Captured:
        return Captured(read, self.clock(), message_id)

    # --- the ordered pipeline -----------------------------------------------------------

    async def _enqueue(self, read: Read, reading: int | None = None) -> None:
        """Start `read` as the next ordered task, once a slot is free.

        `reading` is the message it reads in full; it joins `state.reading` only with the
        slot, so a job cancelled while waiting leaves no id that no read will ever capture.
        """
        await self._slots.acquire()
        if reading is not None:
            self.state.reading.add(reading)
        task = asyncio.get_running_loop().create_task(read())
        self._entries.append(_Entry(task))
        self._entry_added.set()

    async def _barrier(self) -> None:
        """Wait until everything enqueued so far is written to the spool."""
        written = asyncio.get_running_loop().create_future()

        async def nothing() -> list[Captured]:
            return []

        await self._slots.acquire()
        self._entries.append(_Entry(asyncio.get_running_loop().create_task(nothing()), written))
        self._entry_added.set()
        await written

    async def _drain(self) -> None:
        """Consume reads in start order; write each run of finished ones as one batch."""
        while True:
            if not self._entries:
                self._entry_added.clear()
                await self._entry_added.wait()
                continue
            head = self._entries[0]
            await asyncio.wait([head.task])
            batch: list[Captured] = []
            done: list[_Entry] = []
            while self._entries and self._entries[0].task.done() and len(batch) < 1000:
                entry = self._entries.popleft()
                self._slots.release()
                done.append(entry)
                if entry.task.cancelled():
                    continue
                exc = entry.task.exception()
                if isinstance(exc, DesktopApiError):
                    log.info("a read was put off: %s", exc)
                    continue
                if exc is not None:
                    log.error("a read failed", exc_info=exc)
                    continue
                batch.extend(entry.task.result())
            marks = self._marks_with(batch)
            if batch or marks:
                await self.sink(batch, marks)
                self.state.marks.update(marks)
                for captured in batch:
                    if captured.message_id is not None:
                        self.state.reading.discard(captured.message_id)
            for entry in done:
                if entry.written is not None and not entry.written.done():
                    entry.written.set_result(None)

    def _marks_with(self, batch: list[Captured]) -> dict[str, int]:
        """The marks that rise once `batch` is written (written in the same transaction)."""
        state = self.state
        state.captured.update(c.message_id for c in batch if c.message_id is not None)
        marks = {}
        for chat, walk in self._walks.items():
            top = walk.advance(state.captured)
            if top is not None and top > state.marks.get(chat, -1):
                marks[chat] = top
        return marks

    # --- D-Bus --------------------------------------------------------------------------

    async def _invoke(self, command: str) -> str:
        async with self._commands:
            return await self.client.invoke(command)

    async def _exchange(self, command: str) -> Exchange:
        return (await self._exchanges([command]))[0]

    async def _exchanges(self, commands: list[str]) -> tuple[Exchange, ...]:
        """Send all commands at once (pipelined) and pair each with its verbatim reply.

        A command that timed out becomes an Exchange without reply; anything else raises
        (Skype going away: by the time we look, the client may be attached again).
        """
        results = await asyncio.gather(*(self._invoke(c) for c in commands), return_exceptions=True)
        exchanges = []
        for command, result in zip(commands, results, strict=True):
            if isinstance(result, CommandTimeout):
                exchanges.append(Exchange(command, None, str(result)))
            elif isinstance(result, BaseException):
                raise result
            else:
                exchanges.append(Exchange(command, result))
        return tuple(exchanges)


def _odd(notice: Notice, problem: str) -> ObjectRead:
    return ObjectRead(
        "notification", "SESSION", "notification", notice.line, (), trigger_problem=problem
    )


def _read_of(
    reason: str, obj_id: str, notice: Notice | None, exchanges: tuple[Exchange, ...]
) -> ObjectRead:
    return ObjectRead(
        reason,
        "CHATMESSAGE",
        obj_id,
        notice.line if notice else None,
        exchanges,
        trigger_problem=notice.problem if notice else "",
    )


def _property_value(exchange: Exchange, prop: str) -> str | None:
    if exchange.reply is None:
        return None
    try:
        reply = parse_reply(exchange.reply)
    except ApiParseError:
        return None
    if isinstance(reply, ObjectProperty) and reply.prop == prop:
        return reply.value
    return None


def _int_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _log_failure(task: asyncio.Task, line: str) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, DesktopApiError):
        log.info("reaction to %r put off: %s", line, exc)
    elif exc is not None:
        log.error("reaction to %r failed", line, exc_info=exc)


def wall_clock(offset_s: float) -> Clock:
    """The host's clock: time.time() plus the configured offset, with the local UTC offset."""

    def now() -> EventClock:
        utc = time.time() + offset_s
        tz = time.localtime(utc).tm_gmtoff
        return EventClock(utc=round(utc, 6), tz_offset_s=int(tz))

    return now
