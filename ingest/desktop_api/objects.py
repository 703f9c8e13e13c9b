"""A small object layer over the client, in the spirit of Skype4Py: `Skype`, `Chat`,
`ChatMessage`, `User`.

Objects are cheap frozen handles (the client and an id); reading a property is one GET,
so every property is awaited: `await message.body`, `await chat.members`. Values are typed
with the protocol codecs (timestamps as aware UTC datetimes, handle and id lists as tuples,
booleans, ints). Nothing here writes to Skype: an archive only reads. Calls, SMS and
voicemail are out of scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from chatchannels.ingest.desktop_api.client import SkypeClient
from chatchannels.ingest.desktop_api.errors import UnexpectedReply
from chatchannels.ingest.desktop_api.protocol import (
    ObjectProperty,
    SearchResult,
    format_get,
    format_search,
    parse_bool,
    parse_date,
    parse_handle_list,
    parse_id_list,
    parse_int,
    parse_timestamp,
    parse_timezone,
)

T = TypeVar("T")


def _text(value: str) -> str:
    return value


def _empty_is_none(value: str) -> str | None:
    return value or None


class _Property(Generic[T]):
    """A Desktop API property; reading it on an instance gives a coroutine for its value."""

    def __init__(self, prop: str, decode: Callable[[str], T]) -> None:
        self.prop = prop
        self.decode = decode

    def __get__(self, instance: _ApiObject | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance._read(self.prop, self.decode)


@dataclass(frozen=True)
class _ApiObject:
    noun: ClassVar[str]
    client: SkypeClient = field(compare=False, repr=False)
    id: str

    async def get(self, prop: str) -> str:
        """The raw value of any property, for the ones without a typed attribute."""
        return await self._read(prop, _text)

    async def read(self, *props: str) -> dict[str, str]:
        """Several raw values at once; the GETs are pipelined."""
        values = await asyncio.gather(*(self.get(p) for p in props))
        return dict(zip(props, values, strict=True))

    def _read(self, prop: str, decode: Callable[[str], T]) -> Coroutine[Any, Any, T]:
        async def read() -> T:
            command = format_get(self.noun, self.id, prop)
            reply = await self.client.command(command)
            if not (
                isinstance(reply, ObjectProperty)
                and reply.obj == self.noun
                and reply.prop == prop
                # Whether Skype normalises the case of ids it echoes is unknown (spec §12.9).
                and reply.obj_id.casefold() == self.id.casefold()
            ):
                raise UnexpectedReply(command, reply)
            return decode(reply.value)

        return read()


@dataclass(frozen=True)
class User(_ApiObject):
    noun: ClassVar[str] = "USER"

    handle = _Property("HANDLE", _text)
    full_name = _Property("FULLNAME", _text)
    display_name = _Property("DISPLAYNAME", _text)
    online_status = _Property("ONLINESTATUS", _text)
    # UTC offset; None when the user did not set one.
    timezone = _Property("TIMEZONE", parse_timezone)
    last_online = _Property("LASTONLINETIMESTAMP", parse_timestamp)
    birthday = _Property("BIRTHDAY", parse_date)
    language = _Property("LANGUAGE", _text)
    country = _Property("COUNTRY", _text)
    sex = _Property("SEX", _text)
    city = _Property("CITY", _text)
    province = _Property("PROVINCE", _text)
    homepage = _Property("HOMEPAGE", _text)
    about = _Property("ABOUT", _text)
    mood_text = _Property("MOOD_TEXT", _text)
    buddy_status = _Property("BUDDYSTATUS", parse_int)
    is_authorized = _Property("ISAUTHORIZED", parse_bool)
    is_blocked = _Property("ISBLOCKED", parse_bool)
    aliases = _Property("ALIASES", parse_handle_list)


@dataclass(frozen=True)
class ChatMessage(_ApiObject):
    noun: ClassVar[str] = "CHATMESSAGE"

    timestamp = _Property("TIMESTAMP", parse_timestamp)
    from_handle = _Property("FROM_HANDLE", _text)
    from_display_name = _Property("FROM_DISPNAME", _text)
    type = _Property("TYPE", _text)
    status = _Property("STATUS", _text)
    leave_reason = _Property("LEAVEREASON", _empty_is_none)
    chat_name = _Property("CHATNAME", _text)
    users = _Property("USERS", parse_handle_list)
    is_editable = _Property("IS_EDITABLE", parse_bool)
    edited_by = _Property("EDITED_BY", _empty_is_none)
    edited_timestamp = _Property("EDITED_TIMESTAMP", parse_timestamp)
    options = _Property("OPTIONS", parse_int)
    role = _Property("ROLE", _text)
    body = _Property("BODY", _text)


@dataclass(frozen=True)
class Chat(_ApiObject):
    noun: ClassVar[str] = "CHAT"

    name = _Property("NAME", _text)
    timestamp = _Property("TIMESTAMP", parse_timestamp)
    adder = _Property("ADDER", _empty_is_none)
    status = _Property("STATUS", _text)
    posters = _Property("POSTERS", parse_handle_list)
    members = _Property("MEMBERS", parse_handle_list)
    active_members = _Property("ACTIVEMEMBERS", parse_handle_list)
    applicants = _Property("APPLICANTS", parse_handle_list)
    topic = _Property("TOPIC", _text)
    topic_xml = _Property("TOPICXML", _text)
    friendly_name = _Property("FRIENDLYNAME", _text)
    bookmarked = _Property("BOOKMARKED", parse_bool)
    dialog_partner = _Property("DIALOG_PARTNER", _empty_is_none)
    activity_timestamp = _Property("ACTIVITY_TIMESTAMP", parse_timestamp)
    type = _Property("TYPE", _text)
    my_status = _Property("MYSTATUS", _text)
    my_role = _Property("MYROLE", _text)
    options = _Property("OPTIONS", parse_int)
    description = _Property("DESCRIPTION", _text)
    guidelines = _Property("GUIDELINES", _text)
    password_hint = _Property("PASSWORDHINT", _text)
    blob = _Property("BLOB", _text)
    message_ids = _Property("CHATMESSAGES", parse_id_list)
    recent_message_ids = _Property("RECENTCHATMESSAGES", parse_id_list)
    member_object_ids = _Property("MEMBEROBJECTS", parse_id_list)

    async def messages(self) -> list[ChatMessage]:
        return [ChatMessage(self.client, i) for i in await self.message_ids]


class Skype:
    """The signed-in Skype behind an attached client."""

    def __init__(self, client: SkypeClient) -> None:
        self.client = client

    async def search(self, what: str, target: str | None = None) -> tuple[str, ...]:
        command = format_search(what, target)
        reply = await self.client.command(command)
        if not isinstance(reply, SearchResult):
            raise UnexpectedReply(command, reply)
        return reply.items

    async def chats(self) -> list[Chat]:
        """Every chat Skype lists, merged from CHATS, RECENTCHATS and BOOKMARKEDCHATS.

        SEARCH CHATS alone returned only a few recent chats on Linux 4.x (spec §5.4).
        """
        found = await asyncio.gather(
            *(self.search(w) for w in ("CHATS", "RECENTCHATS", "BOOKMARKEDCHATS"))
        )
        names = dict.fromkeys(name for names in found for name in names)
        return [Chat(self.client, name) for name in names]
