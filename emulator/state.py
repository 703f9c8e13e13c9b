"""What one emulated Skype desktop holds: its objects, their properties, its API clients.

Pure. Every host numbers its objects (CHATMEMBER, CHATMESSAGE) from one growing counter of
its own (spec 6.1), so the same message has a different id on every host. Values are kept
as Python values and turned into protocol text by `Line` and `render_line`, which apply the
protocol version each client negotiated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatchannels.emulator.scenario import Host, Scenario, clock_reading
from chatchannels.ingest.desktop_api.protocol import (
    format_bool,
    format_handle_list,
    format_id_list,
    format_parameter,
    format_property,
)

HIGHEST_PROTOCOL = 8
SKYPE_VERSION = "4.3.0.37"

# Message types that a protocol < 7 client sees as UNKNOWN (spec 2.2, 6.3).
PROTOCOL_7_TYPES = frozenset(
    {
        "POSTEDCONTACTS",
        "GAP_IN_CHAT",
        "SETROLE",
        "KICKED",
        "KICKBANNED",
        "SETOPTIONS",
        "SETPICTURE",
        "SETGUIDELINES",
        "JOINEDASAPPLICANT",
    }
)
# CHAT properties of public chats, served only at protocol >= 7 (spec 5.2).
PROTOCOL_7_CHAT_PROPS = frozenset(
    {
        "MEMBEROBJECTS",
        "MYSTATUS",
        "MYROLE",
        "OPTIONS",
        "GUIDELINES",
        "PASSWORDHINT",
        "BLOB",
        "APPLICANTS",
        "TOPICXML",
        "DESCRIPTION",
    }
)


@dataclass(frozen=True)
class Line:
    """One protocol line before rendering: `OBJ id PROP value`, or a parameter when obj is ""."""

    obj: str
    obj_id: str
    prop: str
    value: str | int | bool | tuple[str, ...] = ""
    # Lists of ids use ", ", lists of handles single spaces (spec 1.6).
    id_list: bool = False


def render_value(value: str | int | bool | tuple[str, ...], id_list: bool) -> str:
    if isinstance(value, bool):
        return format_bool(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return format_id_list(value) if id_list else format_handle_list(value)
    return value


def render_line(line: Line, protocol: int) -> str | None:
    """The text a client on `protocol` sees for `line`, or None if that protocol lacks it."""
    if not line.obj:
        return format_parameter(line.prop, render_value(line.value, line.id_list))
    obj, value = line.obj, line.value
    if obj == "CHATMEMBER" and protocol < 7:
        return None
    if obj == "CHAT" and protocol < 3:
        return None
    if obj == "CHATMESSAGE":
        if line.prop == "TYPE":
            value = message_type_for(str(value), protocol)
        if protocol < 3:
            obj = "MESSAGE"
    text = format_property(obj, line.obj_id, line.prop, render_value(value, line.id_list))
    if isinstance(value, tuple) and not value:
        # The one recorded empty list (ACTIVEMEMBERS) had no trailing space (spec 1.6).
        return text[:-1]
    return text


def message_type_for(kind: str, protocol: int) -> str:
    if protocol < 3:
        return "TEXT" if kind == "SAID" else "UNKNOWN"
    if protocol < 7 and kind in PROTOCOL_7_TYPES:
        return "UNKNOWN"
    return kind


@dataclass
class Connection:
    """One D-Bus client connection (keyed by its unique name); attach state is per connection."""

    attached: bool = False
    # Clients that never send PROTOCOL are served protocol 1 (spec 2.1).
    protocol: int = 1


@dataclass(slots=True)
class ChatState:
    name: str
    timestamp: int
    adder: str
    status: str
    members: list[str]
    topic: str = ""
    posters: list[str] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    member_objects: list[int] = field(default_factory=list)
    bookmarked: bool = False
    activity: int = 0
    my_status: str = "SUBSCRIBED"


@dataclass(slots=True)
class MessageState:
    id: int
    key: str
    chat: str
    timestamp: int
    author: str
    dispname: str
    type: str
    status: str
    body: str
    users: tuple[str, ...] = ()
    leavereason: str = ""
    edited_by: str = ""
    edited_timestamp: int = 0


@dataclass(slots=True)
class MemberState:
    chat: str
    identity: str
    role: str = "USER"
    is_active: bool = True


class HostState:
    """One Skype desktop: the signed-in user, its objects and its attached clients."""

    def __init__(self, host: Host, scenario: Scenario) -> None:
        self.host = host
        self.scenario = scenario
        self.running = True
        self.online = host.online
        self.faults: set[str] = set()
        self.userstatus = "ONLINE"
        self.next_id = host.first_id
        # Host clock minus true time; a timeline `clock` action steps it.
        self.skew_s = host.skew_s
        self.chats: dict[str, ChatState] = {}
        self.messages: dict[int, MessageState] = {}
        self.chat_members: dict[int, MemberState] = {}
        self.local_ids: dict[str, int] = {}
        self.connections: dict[str, Connection] = {}

    @property
    def me(self) -> str:
        return self.host.user

    def clock(self, true_time: float) -> int:
        """This host's clock reading now that its clock may have been stepped."""
        return clock_reading(true_time, self.skew_s)

    def allocate_id(self) -> int:
        new_id = self.next_id
        self.next_id += 1
        return new_id

    def attached(self) -> list[tuple[str, Connection]]:
        return [(name, c) for name, c in self.connections.items() if c.attached]

    def dispname(self, handle: str) -> str:
        return self.scenario.user(handle).fullname or handle

    def timezone(self, handle: str) -> int:
        """USER TIMEZONE: 86400 + UTC offset in seconds, 0 when unknown (spec 7.1)."""
        for h in self.scenario.hosts:
            if h.user == handle:
                return 86400 + h.tz_offset_s
        offset = self.scenario.user(handle).tz_offset_s
        return 0 if offset is None else 86400 + offset

    # --- property values ------------------------------------------------------------------

    def chat_value(self, chat: ChatState, prop: str) -> Line | None:
        value: str | int | bool | tuple[str, ...]
        id_list = False
        match prop:
            case "NAME":
                value = chat.name
            case "TIMESTAMP":
                value = chat.timestamp
            case "ADDER":
                value = chat.adder
            case "STATUS":
                value = chat.status
            case "TYPE":
                value = "DIALOG" if chat.status == "DIALOG" else "MULTICHAT"
            case "POSTERS":
                value = tuple(chat.posters)
            case "MEMBERS":
                value = tuple(chat.members)
            case "ACTIVEMEMBERS":
                value = tuple(chat.members)
            case "TOPIC":
                value = chat.topic
            case "TOPICXML":
                value = chat.topic
            case "FRIENDLYNAME":
                value = self.friendly_name(chat)
            case "CHATMESSAGES":
                value, id_list = tuple(str(i) for i in chat.messages), True
            case "RECENTCHATMESSAGES":
                value, id_list = tuple(str(i) for i in self.recent(chat)), True
            case "MEMBEROBJECTS":
                value, id_list = tuple(str(i) for i in chat.member_objects), True
            case "BOOKMARKED":
                value = chat.bookmarked
            case "ACTIVITY_TIMESTAMP":
                value = chat.activity
            case "DIALOG_PARTNER":
                others = [m for m in chat.members if m != self.me]
                value = others[0] if chat.status == "DIALOG" and len(others) == 1 else ""
            case "MYSTATUS":
                value = chat.my_status
            case "MYROLE":
                value = "CREATOR" if chat.adder == "" else "USER"
            case "OPTIONS":
                value = 0
            case "APPLICANTS":
                value = ()
            case "GUIDELINES" | "PASSWORDHINT" | "DESCRIPTION" | "BLOB":
                value = ""
            case _:
                return None
        return Line("CHAT", chat.name, prop, value, id_list)

    def friendly_name(self, chat: ChatState) -> str:
        if chat.topic:
            return chat.topic
        others = [self.dispname(m) for m in chat.members if m != self.me]
        return ", ".join(others)

    def recent(self, chat: ChatState) -> list[int]:
        # Skype's "recent" means unread or from the last day; unread is what the agent needs.
        unread = [i for i in chat.messages if self.messages[i].status == "RECEIVED"]
        return unread or chat.messages[-10:]

    def message_value(self, msg: MessageState, prop: str) -> Line | None:
        value: str | int | bool | tuple[str, ...]
        match prop:
            case "TIMESTAMP":
                value = msg.timestamp
            case "FROM_HANDLE" | "PARTNER_HANDLE":
                value = msg.author
            case "FROM_DISPNAME" | "PARTNER_DISPNAME":
                value = msg.dispname
            case "TYPE":
                value = msg.type
            case "STATUS":
                value = msg.status
            case "LEAVEREASON":
                value = msg.leavereason
            case "CHATNAME":
                value = msg.chat
            case "USERS":
                value = msg.users
            case "IS_EDITABLE":
                value = msg.author == self.me and msg.type in ("SAID", "EMOTED") and msg.body != ""
            case "EDITED_BY":
                value = msg.edited_by
            case "EDITED_TIMESTAMP":
                value = msg.edited_timestamp
            case "OPTIONS":
                value = 0
            case "ROLE":
                value = "UNKNOWN"
            case "BODY":
                value = msg.body
            case _:
                return None
        return Line("CHATMESSAGE", str(msg.id), prop, value)

    def member_value(self, member_id: int, member: MemberState, prop: str) -> Line | None:
        values: dict[str, str | bool] = {
            "CHATNAME": member.chat,
            "IDENTITY": member.identity,
            "ROLE": member.role,
            "IS_ACTIVE": member.is_active,
        }
        if prop not in values:
            return None
        return Line("CHATMEMBER", str(member_id), prop, values[prop])

    def user_value(self, handle: str, prop: str) -> Line | None:
        user = self.scenario.user(handle)
        values: dict[str, str | int | bool] = {
            "HANDLE": handle,
            "FULLNAME": user.fullname,
            "DISPLAYNAME": "",
            "ONLINESTATUS": "ONLINE",
            "TIMEZONE": self.timezone(handle),
            "LASTONLINETIMESTAMP": 0,
            "BIRTHDAY": 0,
            "LANGUAGE": "",
            "COUNTRY": "",
            "SEX": "UNKNOWN",
            "CITY": "",
            "PROVINCE": "",
            "PHONE_HOME": "",
            "PHONE_OFFICE": "",
            "PHONE_MOBILE": "",
            "HOMEPAGE": "",
            "ABOUT": "",
            "MOOD_TEXT": "",
            "RICH_MOOD_TEXT": "",
            "BUDDYSTATUS": 3 if handle != self.me else 0,
            "ISAUTHORIZED": handle != self.me,
            "ISBLOCKED": False,
            "HASCALLEQUIPMENT": True,
            "IS_VIDEO_CAPABLE": False,
            "IS_VOICEMAIL_CAPABLE": False,
            "CAN_LEAVE_VM": False,
            "IS_CF_ACTIVE": False,
            "NROF_AUTHED_BUDDIES": 0,
            "RECEIVEDAUTHREQUEST": "",
        }
        if prop == "ALIASES":
            return Line("USER", handle, prop, ())
        if prop not in values:
            return None
        return Line("USER", handle, prop, values[prop])

    def friends(self) -> list[str]:
        return sorted(u.handle for u in self.scenario.users if u.handle != self.me)
