"""The object layer (Skype, Chat, ChatMessage, User) over a real dbus-daemon and the stub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatchannels.ingest.desktop_api import errors
from chatchannels.ingest.desktop_api.objects import Chat, ChatMessage, Skype, User
from tests.support.skype_stub import SkypeStub, StubConfig, new_client, run

pytestmark = pytest.mark.integration

CHAT = "#cecil/$bob;4d8cc9965791c6b9"
PROPERTIES = {
    ("CHAT", CHAT, "TOPIC"): "",
    ("CHAT", CHAT, "MEMBERS"): "bob cecil alice",
    ("CHAT", CHAT, "ACTIVEMEMBERS"): "",
    ("CHAT", CHAT, "ADDER"): "",
    ("CHAT", CHAT, "TIMESTAMP"): "1358276196",
    ("CHAT", CHAT, "ACTIVITY_TIMESTAMP"): "0",
    ("CHAT", CHAT, "BOOKMARKED"): "TRUE",
    ("CHAT", CHAT, "CHATMESSAGES"): "188, 293",
    ("CHATMESSAGE", "188", "TYPE"): "ADDEDMEMBERS",
    ("CHATMESSAGE", "188", "BODY"): "",
    ("CHATMESSAGE", "188", "USERS"): "alice",
    ("CHATMESSAGE", "293", "BODY"): " indented\nsecond line",
    ("CHATMESSAGE", "293", "TIMESTAMP"): "1357987875",
    ("CHATMESSAGE", "293", "CHATNAME"): CHAT,
    ("CHATMESSAGE", "293", "EDITED_BY"): "",
    ("CHATMESSAGE", "293", "IS_EDITABLE"): "FALSE",
    ("USER", "bob", "FULLNAME"): "Bob",
    ("USER", "bob", "TIMEZONE"): "90000",
    ("USER", "bob", "BIRTHDAY"): "0",
    ("USER", "bob", "LANGUAGE"): "hu Hungarian",
    ("USER", "bob", "BUDDYSTATUS"): "3",
    ("USER", "echo123", "TIMEZONE"): "0",
}
SEARCHES = {
    "CHATS": ("CHATS", [CHAT]),
    "RECENTCHATS": ("CHATS", ["#alice/$bob;ea753190f0a3e49b", CHAT]),
    "BOOKMARKEDCHATS": ("CHATS", []),
}


def test_typed_reads(dbus_bus):
    async def scenario():
        stub = SkypeStub(
            dbus_bus.address, StubConfig(properties=dict(PROPERTIES), searches=SEARCHES)
        )
        await stub.start()
        client = new_client(dbus_bus.address)
        skype = Skype(client)
        try:
            await client.connect()
            assert [c.id for c in await skype.chats()] == [CHAT, "#alice/$bob;ea753190f0a3e49b"]

            chat = Chat(client, CHAT)
            assert await chat.topic == ""
            assert await chat.members == ("bob", "cecil", "alice")
            assert await chat.active_members == ()
            assert await chat.adder is None
            assert await chat.timestamp == datetime(2013, 1, 15, 18, 56, 36, tzinfo=UTC)
            assert await chat.activity_timestamp is None
            assert await chat.bookmarked is True
            added, message = await chat.messages()
            assert (added, message) == (ChatMessage(client, "188"), ChatMessage(client, "293"))

            assert await added.read("TYPE", "BODY") == {"TYPE": "ADDEDMEMBERS", "BODY": ""}
            assert await added.users == ("alice",)
            assert await message.body == " indented\nsecond line"
            assert await message.timestamp == datetime(2013, 1, 12, 10, 51, 15, tzinfo=UTC)
            assert await message.chat_name == CHAT
            assert await message.edited_by is None
            assert await message.is_editable is False

            bob = User(client, "bob")
            assert await bob.full_name == "Bob"
            assert await bob.timezone == timedelta(hours=1)
            assert await bob.birthday is None
            assert await bob.language == "hu Hungarian"
            assert await bob.buddy_status == 3
            assert await User(client, "echo123").timezone is None

            with pytest.raises(errors.InvalidChatName):
                await Chat(client, "19:abc@thread.skype").topic
            with pytest.raises(errors.UnknownObject):
                await bob.city
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_reply_for_another_object_is_rejected(dbus_bus):
    async def scenario():
        answers = {"GET CHATMESSAGE 5 BODY": "CHATMESSAGE 6 BODY y", "GET CHAT x TOPIC": "PONG"}
        stub = SkypeStub(dbus_bus.address, StubConfig(answers=answers))
        await stub.start()
        client = new_client(dbus_bus.address)
        try:
            await client.connect()
            with pytest.raises(errors.UnexpectedReply) as info:
                await ChatMessage(client, "5").body
            assert info.value.command == "GET CHATMESSAGE 5 BODY"
            with pytest.raises(errors.UnexpectedReply):
                await Chat(client, "x").topic
        finally:
            await client.close()
            await stub.quit()

    run(scenario)


def test_objects_are_values():
    assert Chat(None, "x") == Chat(None, "x")
    assert Chat(None, "x") != ChatMessage(None, "x")
    assert len({User(None, "bob"), User(None, "bob")}) == 1
