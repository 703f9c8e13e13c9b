"""The emulated world: every host's Skype, kept in step as people post, edit and come and go.

Pure: actions in, notifications out. A post by bob becomes one CHATMESSAGE object on every
host whose user is in the chat (received there, sent on bob's own host), each with that
host's own id and that host's own clock. A host that is offline, or whose Skype has quit,
still gets the object into its history (Skype syncs it later) but no live notification:
nothing is replayed when it comes back. Notifications follow spec 6.4 and the fault
switches of spec 10.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatchannels.emulator.scenario import Action, Chat, Scenario, ScenarioError
from chatchannels.emulator.state import (
    ChatState,
    HostState,
    Line,
    MemberState,
    MessageState,
    render_line,
)


@dataclass(frozen=True)
class Notice:
    """One Notify call: `text` goes to client connection `connection` on host `host`."""

    host: str
    connection: str
    text: str


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        # True time (Unix seconds); each host reports it through its own skewed clock.
        self.now: float = float(scenario.start)
        self.hosts = {h.id: HostState(h, scenario) for h in scenario.hosts}
        self._by_user = {h.user.lower(): self.hosts[h.id] for h in scenario.hosts}
        self.members: dict[str, list[str]] = {c.name: list(c.members) for c in scenario.chats}
        self._chats = {c.name: c for c in scenario.chats}
        # Scenario message id -> (chat, author); edits and deletes look it up.
        self.messages: dict[str, tuple[str, str]] = {}
        self._api_posts = 0
        for chat in scenario.chats:
            for handle in chat.members:
                host = self.host_of(handle)
                if host is not None:
                    self._open_chat(host, chat, scenario.start + chat.created)

    def host_of(self, handle: str) -> HostState | None:
        return self._by_user.get(handle.lower())

    # --- the timeline -------------------------------------------------------------------

    def apply(self, action: Action) -> list[Notice]:
        """Apply one timeline action at its true time; returns the live notifications."""
        self.now = self.scenario.start + action.at
        where = f"timeline[{action.index}] ({action.op})"
        match action.op:
            case "post":
                return self.post(
                    action.chat,
                    action.author,
                    action.body,
                    action.message_id,
                    kind=action.type,
                    where=where,
                )
            case "edit" | "delete":
                return self.edit(
                    action.message_id,
                    action.body if action.op == "edit" else "",
                    action.editor,
                    where=where,
                )
            case "topic":
                return self.set_topic(
                    action.chat, action.author, action.body, action.message_id, where=where
                )
            case "join":
                return self.join(
                    action.chat, action.user, action.author, action.message_id, where=where
                )
            case "leave":
                return self.leave(action.chat, action.user, action.message_id, where=where)
            case "read":
                return self.read(action.host, action.chat)
            case "offline" | "online":
                return self.set_online(action.host, action.op == "online")
            case "quit":
                return self.quit(action.host)
            case "restart":
                return self.restart(action.host)
            case "fault":
                self.set_fault(action.host, action.fault, action.on)
                return []
            case "clock":
                self.step_clock(action.host, action.step_s)
                return []
        raise ScenarioError(f"{where}: unknown op")

    def post(
        self,
        chat: str,
        author: str,
        body: str,
        key: str,
        *,
        kind: str = "SAID",
        where: str = "post",
        users: tuple[str, ...] = (),
        leavereason: str = "",
        before: dict[str, list[Line]] | None = None,
        via_api: str = "",
    ) -> list[Notice]:
        """One message on every member's host. `before`: lines a host sends ahead of it.

        `via_api` names the host whose client sent it with CHATMESSAGE: that client got
        `STATUS SENDING` as its reply, so the host does not notify it again.
        """
        self._require_member(chat, author, where)
        if key in self.messages:
            raise ScenarioError(f"{where}: message id {key!r} is already used")
        self.messages[key] = (chat, author)
        notices: list[Notice] = []
        for host in self._member_hosts(chat):
            cs = host.chats[chat]
            own = host.me.lower() == author.lower()
            msg = MessageState(
                id=host.allocate_id(),
                key=key,
                chat=chat,
                timestamp=host.clock(self.now),
                author=author,
                dispname=host.dispname(author),
                type=kind,
                status="SENT" if own else "RECEIVED",
                body=body,
                users=users,
                leavereason=leavereason,
            )
            host.messages[msg.id] = msg
            host.local_ids[key] = msg.id
            cs.messages.append(msg.id)
            cs.activity = msg.timestamp
            lines = list((before or {}).get(host.host.id, []))
            if author not in cs.posters:
                cs.posters.append(author)
                lines.append(host.chat_value(cs, "POSTERS"))
            msg_line = Line("CHATMESSAGE", str(msg.id), "STATUS", "")
            activity = host.chat_value(cs, "ACTIVITY_TIMESTAMP")
            if own:
                if via_api != host.host.id:
                    lines.append(_with(msg_line, "SENDING"))
                lines += [activity, _with(msg_line, "SENT")]
            else:
                lines.append(activity)
                if "drop_received" not in host.faults:
                    lines.append(_with(msg_line, "RECEIVED"))
            notices += self._emit(host, lines, self._live(host, author))
        return notices

    def edit(self, key: str, body: str, editor: str = "", where: str = "edit") -> list[Notice]:
        """Edit (or, with an empty body, delete) a message on every host that holds it."""
        if key not in self.messages:
            raise ScenarioError(f"{where}: unknown message id {key!r}")
        editor = editor or self.messages[key][1]
        notices: list[Notice] = []
        for host in self.hosts.values():
            local = host.local_ids.get(key)
            if local is None:
                continue
            msg = host.messages[local]
            msg.body = body
            msg.edited_by = editor
            msg.edited_timestamp = host.clock(self.now)
            lines = [host.message_value(msg, p) for p in ("EDITED_TIMESTAMP", "EDITED_BY", "BODY")]
            notices += self._emit(host, lines, self._live(host, editor))
        return notices

    def set_topic(self, chat: str, author: str, topic: str, key: str, where: str = "topic"):
        self._require_member(chat, author, where)
        before = {}
        for host in self._member_hosts(chat):
            cs = host.chats[chat]
            cs.topic = topic
            before[host.host.id] = [host.chat_value(cs, p) for p in ("TOPIC", "FRIENDLYNAME")]
        return self.post(chat, author, topic, key, kind="SETTOPIC", where=where, before=before)

    def join(self, chat: str, user: str, adder: str, key: str, where: str = "join"):
        self._require_member(chat, adder, where)
        if _contains(self.members[chat], user):
            raise ScenarioError(f"{where}: {user} is already in {chat}")
        self.members[chat].append(user)
        before: dict[str, list[Line]] = {}
        for host in self._member_hosts(chat):
            cs = host.chats.get(chat)
            if cs is None or cs.my_status != "SUBSCRIBED":
                before[host.host.id] = self._open_chat(host, self._chats[chat], self.now, adder)
                continue
            cs.members = list(self.members[chat])
            lines = []
            if cs.status == "DIALOG":
                cs.status = "MULTI_SUBSCRIBED"
                lines.append(host.chat_value(cs, "STATUS"))
            lines += [host.chat_value(cs, p) for p in ("MEMBERS", "ACTIVEMEMBERS", "FRIENDLYNAME")]
            before[host.host.id] = lines
        return self.post(
            chat, adder, "", key, kind="ADDEDMEMBERS", where=where, users=(user,), before=before
        )

    def leave(self, chat: str, user: str, key: str, where: str = "leave") -> list[Notice]:
        notices = self.post(
            chat, user, "", key, kind="LEFT", where=where, leavereason="UNSUBSCRIBE"
        )
        self.members[chat] = [m for m in self.members[chat] if m.lower() != user.lower()]
        leaver = self.host_of(user)
        for host in [*self._member_hosts(chat), *([leaver] if leaver else [])]:
            cs = host.chats[chat]
            cs.members = list(self.members[chat])
            lines = [host.chat_value(cs, p) for p in ("MEMBERS", "ACTIVEMEMBERS")]
            if host is leaver:
                cs.status = cs.my_status = "UNSUBSCRIBED"
                lines += [host.chat_value(cs, p) for p in ("STATUS", "MYSTATUS")]
            notices += self._emit(host, lines, self._live(host, user))
        return notices

    def read(self, host_id: str, chat: str) -> list[Notice]:
        """The user reads the chat in Skype's window: unread messages become READ."""
        host = self.hosts[host_id]
        cs = host.chats.get(chat)
        if cs is None:
            return []
        lines = []
        for mid in cs.messages:
            msg = host.messages[mid]
            if msg.status == "RECEIVED":
                msg.status = "READ"
                lines.append(host.message_value(msg, "STATUS"))
        return self._emit(host, lines, live=True)

    def set_online(self, host_id: str, online: bool) -> list[Notice]:
        host = self.hosts[host_id]
        host.online = online
        line = Line("", "", "CONNSTATUS", "ONLINE" if online else "OFFLINE")
        return self._emit(host, [line], live=True)

    def quit(self, host_id: str) -> list[Notice]:
        """Skype exits: every client's attach state is forgotten (the service drops the name)."""
        host = self.hosts[host_id]
        host.running = False
        host.connections.clear()
        return []

    def restart(self, host_id: str) -> list[Notice]:
        self.hosts[host_id].running = True
        return []

    def set_fault(self, host_id: str, fault: str, on: bool) -> None:
        faults = self.hosts[host_id].faults
        if on:
            faults.add(fault)
        else:
            faults.discard(fault)

    def step_clock(self, host_id: str, step_s: float) -> None:
        """The host's clock is corrected: every later TIMESTAMP it stamps moves by `step_s`.
        Skype sends no notification for it; what it already stamped keeps its time."""
        self.hosts[host_id].skew_s += step_s

    def create_chat(self, chat: Chat) -> list[Notice]:
        """A chat a client created with CHAT CREATE: it appears on every member's host."""
        self._chats[chat.name] = chat
        self.members[chat.name] = list(chat.members)
        notices: list[Notice] = []
        for host in self._member_hosts(chat.name):
            lines = self._open_chat(host, chat, self.now)
            notices += self._emit(host, lines, self._live(host, chat.adder))
        return notices

    def next_api_key(self, host_id: str) -> str:
        """Scenario id for a message a client sent through the API (outside ground truth)."""
        self._api_posts += 1
        return f"api:{host_id}:{self._api_posts}"

    # --- helpers ------------------------------------------------------------------------

    def _open_chat(
        self, host: HostState, chat: Chat, true_time: float, adder: str = ""
    ) -> list[Line]:
        """Create `chat` on `host`; returns the property burst of spec 5.7 / T26."""
        members = self.members[chat.name]
        adder = adder or chat.adder
        dialog = chat.is_dialog_name and len(members) == 2
        cs = host.chats.get(chat.name)
        if cs is None:
            cs = ChatState(
                name=chat.name,
                timestamp=host.clock(true_time),
                adder="" if adder.lower() == host.me.lower() else adder,
                status="DIALOG" if dialog else "MULTI_SUBSCRIBED",
                members=list(members),
                topic=chat.topic,
                bookmarked=chat.bookmarked,
            )
            host.chats[chat.name] = cs
        else:
            cs.members, cs.my_status, cs.status = list(members), "SUBSCRIBED", "MULTI_SUBSCRIBED"
            cs.adder = "" if adder.lower() == host.me.lower() else adder
        own_member = 0
        for handle in members:
            member_id = host.allocate_id()
            host.chat_members[member_id] = MemberState(chat.name, handle)
            cs.member_objects.append(member_id)
            if handle.lower() == host.me.lower():
                own_member = member_id
        lines = [host.chat_value(cs, p) for p in ("NAME", "STATUS")]
        lines.append(Line("CHATMEMBER", str(own_member), "ROLE", "USER"))
        props = (
            "MYROLE",
            "MEMBERS",
            "FRIENDLYNAME",
            "ACTIVEMEMBERS",
            "TIMESTAMP",
            "ADDER",
            "TOPIC",
        )
        return lines + [host.chat_value(cs, p) for p in props]

    def _member_hosts(self, chat: str) -> list[HostState]:
        hosts = (self.host_of(m) for m in self.members[chat])
        return [h for h in hosts if h is not None]

    def _require_member(self, chat: str, handle: str, where: str) -> None:
        if chat not in self.members:
            raise ScenarioError(f"{where}: unknown chat {chat!r}")
        if not _contains(self.members[chat], handle):
            raise ScenarioError(f"{where}: {handle!r} is not a member of {chat}")

    def _live(self, host: HostState, actor: str) -> bool:
        # An offline host still sees what its own user does; it misses everyone else.
        return host.online or host.me.lower() == actor.lower()

    def _emit(self, host: HostState, lines: Iterable[Line | None], live: bool) -> list[Notice]:
        if not live or not host.running:
            return []
        ordered = [line for line in lines if line is not None]
        if "reorder" in host.faults:
            ordered.reverse()
        return [
            Notice(host.host.id, name, text)
            for name, conn in host.attached()
            for line in ordered
            if (text := render_line(line, conn.protocol)) is not None
        ]


def _with(line: Line, value: str) -> Line:
    return Line(line.obj, line.obj_id, line.prop, value)


def _contains(handles: list[str], handle: str) -> bool:
    return handle.lower() in (h.lower() for h in handles)
