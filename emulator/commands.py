"""The server side of the Desktop API: parse one command, answer it, report what it caused.

Pure: `invoke(world, host, connection, text)` returns the reply string and the
notifications the command caused, and never raises (spec 10.1; bad input gets the spec's
ERROR replies). Keywords match case-insensitively; replies are upper-case. Everything that
goes on the wire is built by the shared protocol module.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from chatchannels.emulator.scenario import Chat
from chatchannels.emulator.state import (
    HIGHEST_PROTOCOL,
    PROTOCOL_7_CHAT_PROPS,
    SKYPE_VERSION,
    ChatState,
    Connection,
    HostState,
    Line,
    render_line,
)
from chatchannels.emulator.world import Notice, World
from chatchannels.ingest.desktop_api.errors import ApiParseError
from chatchannels.ingest.desktop_api.protocol import (
    add_command_id,
    format_alter_reply,
    format_error,
    format_parameter,
    format_search_result,
    parse_id_list,
    parse_int,
    split_command_id,
)

logger = logging.getLogger(__name__)

# How long a NAME waits under the slow_consent fault (the user hesitating at the prompt).
SLOW_CONSENT_S = 2.0
# How long a GET CHATMESSAGE waits under the slow_message_gets fault (Skype busy syncing).
SLOW_GET_S = 30.0
_HANDLE = re.compile(r"(live:|\+)?[A-Za-z0-9.,_-]+")
_CLOUD_CHAT = re.compile(r"19:.*@thread\.skype", re.IGNORECASE)
_USERSTATUSES = frozenset(
    {"UNKNOWN", "ONLINE", "OFFLINE", "SKYPEME", "AWAY", "NA", "DND", "INVISIBLE", "LOGGEDOUT"}
)
_PLAIN_ALTER_CHAT_ACTIONS = frozenset(
    {
        "CLEARRECENTMESSAGES",
        "DISBAND",
        "ACCEPTADD",
        "SETPASSWORD",
        "ENTERPASSWORD",
        "SETOPTIONS",
        "SETGUIDELINES",
        "SETALERTSTRING",
        "KICK",
        "KICKBAN",
    }
)
_BAD_CREATE = "CHAT: CREATE: invalid/missing user handle(s) as argument"
_EMPTY_SEARCHES = {
    "USERSWAITINGMYAUTHORIZATION": "USERS",
    "GROUPS": "GROUPS",
    "CALLS": "CALLS",
    "ACTIVECALLS": "CALLS",
    "MISSEDCALLS": "CALLS",
    "VOICEMAILS": "VOICEMAILS",
    "MISSEDVOICEMAILS": "VOICEMAILS",
    "FILETRANSFERS": "FILETRANSFERS",
    "ACTIVEFILETRANSFERS": "FILETRANSFERS",
    "SMSS": "SMSS",
    "MISSEDSMSS": "SMSS",
}


@dataclass(frozen=True)
class Outcome:
    """`reply` is the Invoke return value ("" under reply_via_notify); `notices` follow it."""

    reply: str
    notices: tuple[Notice, ...] = ()
    delay_s: float = 0.0


class _Error(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text


@dataclass
class _Call:
    world: World
    host: HostState
    name: str
    conn: Connection
    notices: list[Notice]
    delay_s: float = 0.0

    def line(self, line: Line | None, protocol: int | None = None) -> str:
        text = (
            render_line(line, self.conn.protocol if protocol is None else protocol)
            if line
            else None
        )
        if text is None:
            raise _Error(7, "GET: invalid WHAT")
        return text


def invoke(world: World, host_id: str, connection: str, command: str) -> Outcome:
    """Answer `command` sent by client `connection` to host `host_id`."""
    host = world.hosts[host_id]
    conn = host.connections.setdefault(connection, Connection())
    call = _Call(world, host, connection, conn, [])
    cmd_id, text = split_command_id(command)
    try:
        reply = _dispatch(call, text)
    except _Error as exc:
        reply = format_error(exc.code, exc.text)
    except Exception:
        # A bug must not take Skype down for every client; keep the evidence in the log.
        logger.exception("emulator failed on command %r (host %s)", command, host_id)
        reply = format_error(9901, "Internal error")
        call.notices.clear()
    if "slow_message_gets" in host.faults and text.upper().startswith("GET CHATMESSAGE "):
        call.delay_s = SLOW_GET_S
    if cmd_id is not None:
        reply = add_command_id(cmd_id, reply)
    if "reply_via_notify" in host.faults and conn.attached:
        return Outcome("", (Notice(host_id, connection, reply), *call.notices), call.delay_s)
    return Outcome(reply, tuple(call.notices), call.delay_s)


def _dispatch(call: _Call, text: str) -> str:
    word, rest = _split(text)
    keyword = word.upper()
    if keyword == "NAME":
        return _name(call, rest)
    if not call.conn.attached:
        # Undocumented in real Skype (spec 3.2, 12.3): refuse like a denied NAME.
        return format_error(68)
    handler = _COMMANDS.get(keyword)
    if handler is None:
        raise _Error(2, "Unknown command")
    return handler(call, rest)


def _split(text: str) -> tuple[str, str]:
    word, _, rest = text.partition(" ")
    return word, rest


def _name(call: _Call, app: str) -> str:
    if not app.strip():
        raise _Error(1, "General syntax error")
    faults = call.host.faults
    if "refuse_consent" in faults:
        call.conn.attached = False
        return format_error(68)
    if "offline_consent" in faults:
        return format_parameter("CONNSTATUS", "OFFLINE")
    if "slow_consent" in faults:
        call.delay_s = SLOW_CONSENT_S
    call.conn.attached = True
    host = call.host
    for line in (
        Line("", "", "CONNSTATUS", "ONLINE" if host.online else "OFFLINE"),
        Line("", "", "CURRENTUSERHANDLE", host.me),
        Line("", "", "USERSTATUS", host.userstatus),
    ):
        call.notices.append(Notice(host.host.id, call.name, call.line(line)))
    return "OK"


def _protocol(call: _Call, rest: str) -> str:
    try:
        asked = parse_int(rest)
    except ApiParseError:
        raise _Error(27, "Invalid version number") from None
    call.conn.protocol = max(1, min(asked, HIGHEST_PROTOCOL))
    return format_parameter("PROTOCOL", str(call.conn.protocol))


# --- GET --------------------------------------------------------------------------------


def _get(call: _Call, rest: str) -> str:
    what, rest = _split(rest)
    what = what.upper()
    host = call.host
    if what == "CHAT":
        name, prop = _split(rest)
        prop = prop.upper()
        if call.conn.protocol < 3:
            raise _Error(7, "GET: invalid WHAT")
        cs = _visible_chat(host, name)
        if cs is None:
            if prop in ("CHATMESSAGES", "RECENTCHATMESSAGES"):
                raise _Error(501, "CHAT: No chat found for given chat")
            raise _Error(105, "Invalid chat name")
        if call.conn.protocol < 7 and prop in PROTOCOL_7_CHAT_PROPS:
            raise _Error(106, "Invalid PROP")
        line = host.chat_value(cs, prop)
        if line is None:
            raise _Error(106, "Invalid PROP")
        return call.line(line)
    if what in ("CHATMESSAGE", "MESSAGE"):
        msg_id, prop = _split(rest)
        msg = host.messages.get(_int_or(msg_id, 14, "Invalid message id"))
        if msg is None:
            raise _Error(15, "Unknown message")
        line = host.message_value(msg, prop.upper())
        if line is None:
            raise _Error(16, "Invalid PROP")
        protocol = min(call.conn.protocol, 2) if what == "MESSAGE" else call.conn.protocol
        return call.line(line, protocol)
    if what == "CHATMEMBER":
        member_id, prop = _split(rest)
        member = host.chat_members.get(_int_or(member_id, 7, "GET: invalid WHAT"))
        if member is None:
            raise _Error(7, "GET: invalid WHAT")
        return call.line(host.member_value(int(member_id), member, prop.upper()))
    if what == "USER":
        handle, prop = _split(rest)
        if not _HANDLE.fullmatch(handle):
            raise _Error(8, "Invalid user handle")
        if handle.lower() != host.me.lower() and not any(
            u.handle.lower() == handle.lower() for u in host.scenario.users
        ):
            raise _Error(9, "Unknown user")
        line = host.user_value(handle, prop.upper())
        if line is None:
            raise _Error(10, "Invalid PROP")
        return call.line(line)
    return _get_parameter(call, what, rest)


def _get_parameter(call: _Call, what: str, rest: str) -> str:
    host = call.host
    values = {
        "CURRENTUSERHANDLE": host.me,
        "USERSTATUS": host.userstatus,
        "CONNSTATUS": "ONLINE" if host.online else "OFFLINE",
        "SKYPEVERSION": SKYPE_VERSION,
        "PROTOCOL": str(call.conn.protocol),
    }
    if what in values and not rest:
        return format_parameter(what, values[what])
    if what == "PRIVILEGE" and _HANDLE.fullmatch(rest):
        return format_parameter(what, f"{rest.upper()} FALSE")
    if what == "PROFILE" and rest.upper() == "FULLNAME":
        return format_parameter(what, f"FULLNAME {host.dispname(host.me)}")
    raise _Error(7, "GET: invalid WHAT")


def _int_or(token: str, code: int, text: str) -> int:
    try:
        return parse_int(token)
    except ApiParseError:
        raise _Error(code, text) from None


def _visible_chat(host: HostState, name: str) -> ChatState | None:
    # Cloud group chats are invisible to the Desktop API (spec 5.1).
    if _CLOUD_CHAT.fullmatch(name):
        return None
    return host.chats.get(name)


# --- SET --------------------------------------------------------------------------------


def _set(call: _Call, rest: str) -> str:
    what, rest = _split(rest)
    what = what.upper()
    host = call.host
    if what in ("CHATMESSAGE", "MESSAGE"):
        msg_id, rest = _split(rest)
        msg = host.messages.get(_int_or(msg_id, 30, "Invalid message id"))
        if msg is None:
            raise _Error(31, "Unknown message id")
        prop, value = _split(rest)
        prop = prop.upper()
        if prop == "SEEN" and msg.status == "RECEIVED":
            msg.status = "READ"
            return call.line(host.message_value(msg, "STATUS"))
        if prop == "BODY" and value and host.message_value(msg, "IS_EDITABLE").value:
            call.notices += call.world.edit(msg.key, value, host.me)
            return call.line(host.message_value(msg, "BODY"))
        if prop == "BODY" and not value:
            raise _Error(43, "cannot send empty message")
        raise _Error(32, "Invalid WHAT")
    if what == "USERSTATUS":
        status = rest.upper()
        if status not in _USERSTATUSES:
            raise _Error(28, "Unknown userstatus")
        host.userstatus = status
        return format_parameter("USERSTATUS", status)
    raise _Error(18, "SET: invalid WHAT")


# --- ALTER ------------------------------------------------------------------------------


def _alter(call: _Call, rest: str) -> str:
    what, rest = _split(rest)
    what = what.upper()
    if what == "CHAT":
        return _alter_chat(call, rest)
    if what == "CHATMEMBER":
        member_id, rest = _split(rest)
        action, role = _split(rest)
        action = action.upper()
        if call.host.chat_members.get(_int_or(member_id, 1, "General syntax error")) is None:
            raise _Error(1, "General syntax error")
        if action == "SETROLETO" and role:
            return format_alter_reply("CHATMEMBER", action)
        if action == "CANSETROLETO" and role:
            return format_alter_reply("CHATMEMBER", action, "FALSE")
        raise _Error(1, "General syntax error")
    raise _Error(527, "ALTER: unknown object type given")


def _alter_chat(call: _Call, rest: str) -> str:
    name, rest = _split(rest)
    action, args = _split(rest)
    action = action.upper()
    host, world = call.host, call.world
    cs = _visible_chat(host, name)
    if cs is None:
        raise _Error(501, "CHAT: No chat found for given chat")
    if not action:
        raise _Error(502, "CHAT: No action name given")
    subscribed = cs.my_status == "SUBSCRIBED"
    if action in ("BOOKMARK", "UNBOOKMARK"):
        cs.bookmarked = action == "BOOKMARK"
        return format_alter_reply("CHAT", "BOOKMARKED", "TRUE" if cs.bookmarked else "FALSE", name)
    if action == "LEAVE":
        if args:
            raise _Error(505, "CHAT: LEAVE does not take arguments")
        if not subscribed:
            raise _Error(504, "CHAT: action failed")
        call.notices += world.leave(name, host.me, world.next_api_key(host.host.id))
    elif action in ("SETTOPIC", "SETTOPICXML"):
        if not subscribed:
            raise _Error(504, "CHAT: action failed")
        call.notices += world.set_topic(name, host.me, args, world.next_api_key(host.host.id))
    elif action == "ADDMEMBERS":
        handles = _handles(
            args, 506, "CHAT: ADDMEMBERS: invalid/missing user handle(s) as arguments"
        )
        if not subscribed:
            raise _Error(504, "CHAT: action failed")
        for handle in handles:
            if handle.lower() not in (m.lower() for m in world.members[name]):
                key = world.next_api_key(host.host.id)
                call.notices += world.join(name, handle, host.me, key)
    elif action == "JOIN":
        # Only public chats can be joined, and the emulator has none.
        raise _Error(504, "CHAT: action failed")
    elif action not in _PLAIN_ALTER_CHAT_ACTIONS:
        raise _Error(503, "CHAT: Invalid or unknown action")
    return format_alter_reply("CHAT", action)


def _handles(text: str, code: int, message: str) -> tuple[str, ...]:
    try:
        handles = parse_id_list(text)
    except ApiParseError:
        raise _Error(code, message) from None
    if not handles or not all(_HANDLE.fullmatch(h) for h in handles):
        raise _Error(code, message)
    return handles


# --- SEARCH -----------------------------------------------------------------------------


def _search(call: _Call, rest: str) -> str:
    what, target = _split(rest)
    what = what.upper()
    host = call.host
    chats = [c for c in host.chats.values() if not _CLOUD_CHAT.fullmatch(c.name)]
    chat_filters: dict[str, Callable] = {
        "CHATS": lambda c: True,
        "ACTIVECHATS": lambda c: c.my_status == "SUBSCRIBED",
        "RECENTCHATS": lambda c: c.my_status == "SUBSCRIBED" and c.activity > 0,
        "BOOKMARKEDCHATS": lambda c: c.bookmarked,
        "MISSEDCHATS": lambda c: any(host.messages[m].status == "RECEIVED" for m in c.messages),
    }
    if what in chat_filters:
        if target:
            raise _Error(107, "Target not allowed with CHATS")
        return format_search_result("CHATS", [c.name for c in chats if chat_filters[what](c)])
    if what == "FRIENDS":
        if target:
            raise _Error(67, "Target not allowed with SEARCH FRIENDS")
        return format_search_result("USERS", host.friends())
    if what == "USERS":
        if not target:
            raise _Error(4, "Empty target not allowed")
        needle = target.lower()
        found = [
            u.handle
            for u in host.scenario.users
            if needle in u.handle.lower() or needle in u.fullname.lower()
        ]
        return format_search_result("USERS", found)
    if what in ("CHATMESSAGES", "MESSAGES", "MISSEDCHATMESSAGES", "MISSEDMESSAGES"):
        noun = "CHATMESSAGES" if "CHAT" in what else "MESSAGES"
        missed = what.startswith("MISSED")
        if missed and target:
            raise _Error(1, "General syntax error")
        ids = [
            str(m.id)
            for m in host.messages.values()
            if (not missed or m.status == "RECEIVED")
            and (not target or m.author.lower() == target.lower())
        ]
        return format_search_result(noun, ids)
    if what in _EMPTY_SEARCHES:
        return format_search_result(_EMPTY_SEARCHES[what], [])
    raise _Error(3, "Search: unknown WHAT")


# --- sending and creating ---------------------------------------------------------------


def _chatmessage(call: _Call, rest: str) -> str:
    name, body = _split(rest)
    if not name:
        raise _Error(509, "No chat name given")
    cs = _visible_chat(call.host, name)
    if cs is None:
        raise _Error(510, "Invalid/uknown chat name given")
    return _send(call, cs.name, body)


def _send(call: _Call, chat: str, body: str) -> str:
    host, world = call.host, call.world
    if not body:
        raise _Error(43, "cannot send empty message")
    if host.chats[chat].my_status != "SUBSCRIBED":
        raise _Error(511, "Sending a message to chat failes")
    key = world.next_api_key(host.host.id)
    call.notices += world.post(chat, host.me, body, key, via_api=host.host.id)
    msg_id = host.local_ids[key]
    return call.line(Line("CHATMESSAGE", str(msg_id), "STATUS", "SENDING"))


def _message(call: _Call, rest: str) -> str:
    handle, body = _split(rest)
    if not _HANDLE.fullmatch(handle):
        raise _Error(26, "Invalid user handle")
    chat = _dialog_with(call.host, handle)
    if chat is None:
        raise _Error(511, "Sending a message to chat failes")
    return _send(call, chat, body)


def _dialog_with(host: HostState, handle: str) -> str | None:
    for cs in host.chats.values():
        others = [m.lower() for m in cs.members if m.lower() != host.me.lower()]
        if cs.status == "DIALOG" and others == [handle.lower()]:
            return cs.name
    return None


def _chat(call: _Call, rest: str) -> str:
    action, args = _split(rest)
    if action.upper() != "CREATE":
        raise _Error(500, "CHAT: Invalid chat name given")
    host, world = call.host, call.world
    if not args and call.conn.protocol >= 7:
        targets: tuple[str, ...] = ()
    else:
        targets = _handles(args, 507, _BAD_CREATE)
        lowered = [t.lower() for t in targets]
        if host.me.lower() in lowered or len(set(lowered)) != len(lowered):
            raise _Error(507, _BAD_CREATE)
    if len(targets) == 1 and (existing := _dialog_with(host, targets[0])):
        name = existing
    else:
        digest = hashlib.sha256(f"{host.me} {targets} {host.next_id}".encode()).hexdigest()[:16]
        partner = f"{targets[0]};" if len(targets) == 1 else ""
        name = f"#{host.me}/${partner}{digest}"
        call.notices += world.create_chat(Chat(name, (host.me, *targets), adder=host.me))
    return call.line(host.chat_value(host.chats[name], "STATUS"))


def _echo(keyword: str) -> Callable[[_Call, str], str]:
    return lambda call, rest: f"{keyword} {rest}" if rest else keyword


_COMMANDS: dict[str, Callable[[_Call, str], str]] = {
    "PROTOCOL": _protocol,
    "PING": lambda call, rest: "PONG",
    "GET": _get,
    "SET": _set,
    "ALTER": _alter,
    "SEARCH": _search,
    "CHATMESSAGE": _chatmessage,
    "MESSAGE": _message,
    "CHAT": _chat,
    "OPEN": _echo("OPEN"),
    "FOCUS": _echo("FOCUS"),
    "MINIMIZE": _echo("MINIMIZE"),
}
