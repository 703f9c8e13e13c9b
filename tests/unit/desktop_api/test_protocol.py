"""Desktop API text protocol: the spec's transcripts (§9) line by line, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chatchannels.ingest.desktop_api import errors
from chatchannels.ingest.desktop_api.protocol import (
    OBJECT_NOUNS,
    SEARCH_NOUNS,
    AlterReply,
    ApiParseError,
    ErrorReply,
    ObjectProperty,
    Ok,
    Parameter,
    Pong,
    SearchResult,
    add_command_id,
    format_alter,
    format_alter_reply,
    format_error,
    format_get,
    format_get_parameter,
    format_handle_list,
    format_id_list,
    format_name,
    format_parameter,
    format_property,
    format_protocol,
    format_reply,
    format_search,
    format_search_result,
    format_set,
    format_set_parameter,
    format_timestamp,
    parse_bool,
    parse_date,
    parse_handle_list,
    parse_id_list,
    parse_int,
    parse_reply,
    parse_timestamp,
    parse_timezone,
    split_command_id,
)

CHAT = "#cecil/$bob;4d8cc9965791c6b9"
DIALOG = "#alice/$bob;a7ab206ec78060f1"


def parse_line(line: str):
    """Split the #id, then parse: what a client does with every string it receives."""
    cmd_id, text = split_command_id(line)
    return cmd_id, parse_reply(text)


# --- command ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#7 GET X", ("7", "GET X")),
        ("#RCH SEARCH RECENTCHATS", ("RCH", "SEARCH RECENTCHATS")),  # Miranda's word ids
        ("#0 OK", ("0", "OK")),
        ("#5 ERROR 105 Invalid chat name", ("5", "ERROR 105 Invalid chat name")),
        ("#7", (None, "#7")),
        ("#", (None, "#")),
        ("# GET X", (None, "# GET X")),
        ("#7\nGET X", (None, "#7\nGET X")),
        ("GET X", (None, "GET X")),
        ("#1  CHATMESSAGE 1 BODY x", ("1", " CHATMESSAGE 1 BODY x")),
    ],
)
def test_split_command_id(line, expected):
    assert split_command_id(line) == expected


def test_add_command_id_rejects_ids_with_spaces():
    assert add_command_id("12", "PING") == "#12 PING"
    for bad in ("", "a b", "a\nb"):
        with pytest.raises(ValueError):
            add_command_id(bad, "PING")


_token = st.text(
    st.characters(blacklist_categories=("Cs",)).filter(lambda c: not c.isspace()), min_size=1
)


@given(cmd_id=_token, text=st.text())
def test_command_id_round_trip(cmd_id, text):
    assert split_command_id(add_command_id(cmd_id, text)) == (cmd_id, text)


# --- transcripts (spec §9) ------------------------------------------------------------


def test_t1_t2_attach():
    assert format_name("ChatArchive") == "NAME ChatArchive"
    assert format_protocol(8) == "PROTOCOL 8"
    assert parse_line("#0 OK") == ("0", Ok())
    assert parse_line("#1 PROTOCOL 8") == ("1", Parameter("PROTOCOL", "8"))
    assert parse_line("OK") == (None, Ok())
    assert parse_reply("CONNSTATUS ONLINE") == Parameter("CONNSTATUS", "ONLINE")
    assert parse_reply("CURRENTUSERHANDLE johndoe55") == Parameter("CURRENTUSERHANDLE", "johndoe55")
    assert parse_reply("USERSTATUS ONLINE") == Parameter("USERSTATUS", "ONLINE")
    with pytest.raises(ValueError):
        format_name("Chat Archive")


def test_t3_t4_refusal_and_offline():
    assert parse_line("#0 ERROR 68") == ("0", ErrorReply(68, ""))
    assert format_error(68) == "ERROR 68"
    assert parse_reply("CONNSTATUS OFFLINE") == Parameter("CONNSTATUS", "OFFLINE")


def test_t6_t7_protocol_ping_identity():
    assert parse_reply("PROTOCOL 8") == Parameter("PROTOCOL", "8")
    assert parse_line("#2 PONG") == ("2", Pong())
    assert format_get_parameter("CURRENTUSERHANDLE") == "GET CURRENTUSERHANDLE"
    assert parse_reply("SKYPEVERSION 4.3.0.37") == Parameter("SKYPEVERSION", "4.3.0.37")
    assert format_get_parameter("profile fullname") == "GET PROFILE FULLNAME"


def test_t8_t9_search_chats():
    assert format_search("CHATS") == "SEARCH CHATS"
    line = f"#5 CHATS #alice/$bob;ea753190f0a3e49b, {CHAT}, {DIALOG}"
    assert parse_line(line) == (
        "5",
        SearchResult("CHATS", ("#alice/$bob;ea753190f0a3e49b", CHAT, DIALOG)),
    )
    assert parse_line(f"#RCH CHATS {CHAT}") == ("RCH", SearchResult("CHATS", (CHAT,)))


def test_empty_search_result_with_and_without_space():
    assert parse_reply("CHATMESSAGES ") == SearchResult("CHATMESSAGES", ())
    assert parse_reply("CHATMESSAGES") == SearchResult("CHATMESSAGES", ())
    assert format_search_result("CHATS", []) == "CHATS "
    assert format_search_result("USERS", ["echo123", "bob"]) == "USERS echo123, bob"


def test_chat_ids_with_commas_survive_lists():
    name = "#pcroland.tk/$live:salamondavid_1;571b01cfad580ed6"
    odd = "#a,b/$c;0123456789abcdef"
    assert parse_reply(f"CHATS {odd}, {name}") == SearchResult("CHATS", (odd, name))


def test_chat_properties():
    assert format_get("CHAT", CHAT, "topic") == f"GET CHAT {CHAT} TOPIC"
    assert parse_reply(f"CHAT {CHAT} TOPIC ") == ObjectProperty("CHAT", CHAT, "TOPIC", "")
    assert parse_reply(f"CHAT {DIALOG} ACTIVEMEMBERS") == ObjectProperty(
        "CHAT", DIALOG, "ACTIVEMEMBERS", ""
    )
    members = parse_reply(f"CHAT {CHAT} MEMBERS bob cecil alice")
    assert parse_handle_list(members.value) == ("bob", "cecil", "alice")
    friendly = parse_reply(f"CHAT {CHAT} FRIENDLYNAME bob, cecil")
    assert friendly.value == "bob, cecil"
    created = parse_reply(f"CHAT {CHAT} TIMESTAMP 1358276196")
    assert parse_timestamp(created.value) == datetime(2013, 1, 15, 18, 56, 36, tzinfo=UTC)
    assert parse_timestamp(parse_reply(f"CHAT {CHAT} ACTIVITY_TIMESTAMP 0").value) is None
    assert parse_reply(f"CHAT {CHAT} OPENED") == ObjectProperty("CHAT", CHAT, "OPENED", "")


def test_t15_body_verbatim_with_leading_space_and_newline():
    line = 'CHATMESSAGE 295177 BODY  indented, "quotes" & <angle>\nsecond line'
    reply = parse_reply(line)
    assert reply == ObjectProperty(
        "CHATMESSAGE", "295177", "BODY", ' indented, "quotes" & <angle>\nsecond line'
    )
    assert format_reply(reply) == line


def test_t16_t17_receive_notifications():
    assert parse_reply("CHATMEMBER 288 IS_ACTIVE TRUE") == ObjectProperty(
        "CHATMEMBER", "288", "IS_ACTIVE", "TRUE"
    )
    assert parse_reply("CHATMESSAGE 293 STATUS RECEIVED") == ObjectProperty(
        "CHATMESSAGE", "293", "STATUS", "RECEIVED"
    )
    posters = parse_reply("CHAT #alice/$bob;ea753190f0a3e49b POSTERS alice bob")
    assert parse_handle_list(posters.value) == ("alice", "bob")


def test_t18_recent_messages_id_list():
    _, reply = parse_line(
        "#26 CHAT #sergey/$publisher;1d2681243dabfe7f RECENTCHATMESSAGES 1675305, 1675337, 19017"
    )
    assert parse_id_list(reply.value) == ("1675305", "1675337", "19017")
    assert [parse_int(i) for i in parse_id_list(reply.value)] == [1675305, 1675337, 19017]


def test_t19_missed_messages():
    assert format_search("missedchatmessages") == "SEARCH MISSEDCHATMESSAGES"
    assert parse_reply("CHATMESSAGES 295177") == SearchResult("CHATMESSAGES", ("295177",))
    assert parse_reply("CHATMESSAGE 295177 TYPE SAID").value == "SAID"
    assert parse_reply("CHATMESSAGE 295177 BODY hey ben").value == "hey ben"


def test_t20_t21_sending_and_editing_commands():
    assert parse_reply("CHATMESSAGE 864 STATUS SENDING").value == "SENDING"
    assert (
        format_set("CHATMESSAGE", "864", "BODY", "Test message after being edited")
        == "SET CHATMESSAGE 864 BODY Test message after being edited"
    )
    assert parse_bool(parse_reply("CHATMESSAGE 864 IS_EDITABLE TRUE").value) is True
    assert parse_reply("CHATMESSAGE 864 EDITED_BY anappo").value == "anappo"


def test_t23_deletion_is_an_empty_body():
    assert parse_reply("CHATMESSAGE 293 BODY ") == ObjectProperty("CHATMESSAGE", "293", "BODY", "")
    assert parse_reply("CHATMESSAGE 293 BODY") == ObjectProperty("CHATMESSAGE", "293", "BODY", "")
    assert format_property("CHATMESSAGE", "188", "BODY", "") == "CHATMESSAGE 188 BODY "


def test_t25_seen_and_error_32():
    assert format_set("CHATMESSAGE", "61", "SEEN") == "SET CHATMESSAGE 61 SEEN"
    assert parse_reply("CHATMESSAGE 61 STATUS READ").prop == "STATUS"
    assert parse_reply("ERROR 32 Invalid WHAT") == ErrorReply(32, "Invalid WHAT")


def test_t27_t29_alter_chat_replies_drop_the_id():
    assert format_alter("CHAT", CHAT, "settopic", "topic") == f"ALTER CHAT {CHAT} SETTOPIC topic"
    assert format_alter("CHAT", CHAT, "LEAVE") == f"ALTER CHAT {CHAT} LEAVE"
    assert parse_reply("ALTER CHAT SETTOPIC") == AlterReply("CHAT", "SETTOPIC", "")
    assert parse_reply("ALTER CHAT ADDMEMBERS") == AlterReply("CHAT", "ADDMEMBERS", "")
    assert parse_reply("ALTER CHAT LEAVE") == AlterReply("CHAT", "LEAVE", "")
    assert parse_reply("ALTER GROUP 70 ADDUSER daniel") == AlterReply(
        "GROUP", "ADDUSER", "daniel", "70"
    )
    assert parse_reply(f"ALTER CHAT {CHAT} BOOKMARKED TRUE") == AlterReply(
        "CHAT", "BOOKMARKED", "TRUE", CHAT
    )
    assert parse_reply("ALTER CHATMEMBER CANSETROLETO TRUE") == AlterReply(
        "CHATMEMBER", "CANSETROLETO", "TRUE"
    )
    assert format_alter_reply("CHAT", "LEAVE") == "ALTER CHAT LEAVE"


def test_t30_t31_create_and_member_objects():
    assert parse_reply(f"CHAT {DIALOG} STATUS DIALOG") == ObjectProperty(
        "CHAT", DIALOG, "STATUS", "DIALOG"
    )
    reply = parse_reply("CHAT #test/$test3;5f7cdbdd32dc731c MEMBEROBJECTS 453, 454, 1465")
    assert parse_id_list(reply.value) == ("453", "454", "1465")
    assert parse_reply("CHATMEMBER 1465 IDENTITY test_p").value == "test_p"


def test_t32_users():
    assert format_search("FRIENDS") == "SEARCH FRIENDS"
    assert parse_reply("USERS echo123, bob") == SearchResult("USERS", ("echo123", "bob"))
    assert parse_int(parse_reply("USER bob TIMEZONE 90000").value) - 86400 == 3600
    assert parse_reply("USER bob LANGUAGE hu Hungarian").value == "hu Hungarian"
    assert parse_reply("USER bob PHONE_HOME ") == ObjectProperty("USER", "bob", "PHONE_HOME", "")


def test_t33_errors_map_to_typed_exceptions():
    cases = {
        "ERROR 105 Invalid chat name": errors.InvalidChatName,
        "ERROR 510 Invalid/uknown chat name given": errors.ChatCommandFailed,
        "ERROR 504 CHAT: action failed": errors.ChatCommandFailed,
        "ERROR 501 CHAT: No chat found for given chat": errors.ChatNotFound,
        "ERROR 2 Unknown command": errors.UnknownCommand,
        "ERROR 68": errors.AccessDenied,
        "ERROR 7 GET: invalid WHAT": errors.UnknownObject,
        "ERROR 10 Invalid PROP": errors.InvalidProperty,
        "ERROR 106 Invalid PROP": errors.InvalidProperty,
        "ERROR 15 Unknown message": errors.UnknownObject,
        "ERROR 16 Invalid PROP": errors.InvalidProperty,
        "ERROR 9901 Internal error": errors.InternalError,
        "ERROR 12345 never documented": errors.SkypeApiError,
    }
    for line, cls in cases.items():
        reply = parse_reply(line)
        exc = errors.error_from_reply(reply, "#30 FROB")
        assert type(exc) is cls, line
        assert (exc.code, exc.text, exc.command) == (reply.code, reply.text, "#30 FROB")
    assert isinstance(errors.error_from_reply(ErrorReply(105, ""), "x"), errors.UnknownObject)
    assert isinstance(errors.error_from_reply(ErrorReply(501, ""), "x"), errors.UnknownObject)


def test_keywords_case_insensitive_ids_verbatim():
    assert parse_reply("chatmessage 12 body Hi") == ObjectProperty(
        "CHATMESSAGE", "12", "BODY", "Hi"
    )
    assert parse_reply("user Bob.X fullname B") == ObjectProperty("USER", "Bob.X", "FULLNAME", "B")
    assert parse_reply("ok") == Ok()
    assert format_set_parameter("userstatus", "AWAY") == "SET USERSTATUS AWAY"
    assert format_parameter("CALLHISTORYCHANGED", "") == "CALLHISTORYCHANGED"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "keyword"),
        (" CHATMESSAGE 1 BODY x", "keyword"),
        ("#7", "keyword"),
        ("CHATMESSAGE", "object id"),
        ("CHATMESSAGE 12", "property"),
        ("CHATMESSAGE  BODY x", "object id"),
        ("CHAT #x 1BAD v", "property"),
        ("ERROR", "numeric"),
        ("ERROR x y", "numeric"),
        ("OK then", "no value"),
        ("ALTER", "object type"),
        ("ALTER CHAT", "action"),
        ("CHATS a b, c", "whitespace"),
        ("\x00\xff", "keyword"),
    ],
)
def test_bad_lines_raise_one_parse_error_naming_the_line(line, reason):
    with pytest.raises(ApiParseError) as info:
        parse_reply(line)
    assert info.value.line == line
    assert reason in info.value.reason
    assert repr(line) in str(info.value)


# --- value codecs ---------------------------------------------------------------------


def test_timezone_and_birthday():
    assert parse_timezone("90000") == timedelta(hours=1)
    assert parse_timezone("68400") == timedelta(hours=-5)
    assert parse_timezone("0") is None
    assert parse_date("19800229") == date(1980, 2, 29)
    assert parse_date("0") is None
    for bad in ("19810229", "1980022", "abcdefgh", ""):
        with pytest.raises(ApiParseError):
            parse_date(bad)


def test_codecs():
    assert parse_int("-12") == -12
    for bad in ("", " 1", "1_000", "١٢", "1.5", "0x1"):
        with pytest.raises(ApiParseError):
            parse_int(bad)
    assert parse_bool("false") is False
    with pytest.raises(ApiParseError):
        parse_bool("yes")
    with pytest.raises(ApiParseError):
        parse_timestamp("99999999999999999999")
    assert format_timestamp(None) == "0"
    assert format_id_list([]) == ""
    assert parse_id_list("") == ()
    assert parse_id_list(" 123, 456") == ("123", "456")  # Skype4Py's `CALLS  123, 456`
    assert parse_handle_list("") == ()
    assert format_handle_list(["bob", "cecil"]) == "bob cecil"


@given(st.integers())
def test_int_and_timestamp_round_trip(n):
    assert parse_int(str(n)) == n
    # Years 1..9999 are what datetime holds; beyond that one clear parse error.
    if not -62135596800 <= n <= 253402300799:
        with pytest.raises(ApiParseError):
            parse_timestamp(str(n))
        return
    moment = parse_timestamp(str(n))
    assert (moment is None) == (n == 0)
    if moment is not None:
        assert moment.tzinfo is UTC
        assert format_timestamp(moment) == str(n)


@given(st.lists(_token, max_size=8))
def test_handle_list_round_trip(handles):
    assert parse_handle_list(format_handle_list(handles)) == tuple(handles)


@given(st.lists(_token, max_size=8))
def test_id_list_round_trip(items):
    assert parse_id_list(format_id_list(items)) == tuple(items)


# --- round trips and robustness -------------------------------------------------------

# Every Unicode plane, newlines, CR, tabs and leading/trailing spaces; no lone surrogates
# because such a str cannot travel as UTF-8 on D-Bus anyway.
_value = st.text(st.characters(blacklist_categories=("Cs",)))
_keyword = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
_reserved = {"OK", "PONG", "ERROR", "ALTER"} | SEARCH_NOUNS | OBJECT_NOUNS


@given(obj=st.sampled_from(sorted(OBJECT_NOUNS)), obj_id=_token, prop=_keyword, value=_value)
@example(obj="CHATMESSAGE", obj_id="1", prop="BODY", value=" \n\r\n x ")
@example(obj="CHAT", obj_id="#a/$b;1", prop="TOPIC", value="")
@example(obj="USER", obj_id="bob", prop="ABOUT", value="\U0010ffff\U0001f600\u00e9")
def test_object_property_round_trip(obj, obj_id, prop, value):
    line = format_property(obj, obj_id, prop, value)
    assert parse_reply(line) == ObjectProperty(obj, obj_id, prop.upper(), value)
    assert format_reply(parse_reply(line)) == line


@given(name=_keyword.filter(lambda k: k.upper() not in _reserved), value=_value)
def test_parameter_round_trip(name, value):
    assert parse_reply(format_parameter(name, value)) == Parameter(name.upper(), value)


@given(
    noun=st.sampled_from(sorted(SEARCH_NOUNS)),
    items=st.lists(_token, max_size=6),
)
def test_search_result_round_trip(noun, items):
    assert parse_reply(format_search_result(noun, items)) == SearchResult(noun, tuple(items))


@given(code=st.integers(min_value=0, max_value=10**6), text=_value)
def test_error_round_trip(code, text):
    assert parse_reply(format_error(code, text)) == ErrorReply(code, text)


@given(
    obj=_keyword,
    action=_keyword,
    rest=_value,
    obj_id=st.none() | _token.filter(lambda t: not t[0].isascii() or not t[0].isalpha()),
)
def test_alter_reply_round_trip(obj, action, rest, obj_id):
    line = format_alter_reply(obj, action, rest, obj_id)
    assert parse_reply(line) == AlterReply(obj.upper(), action.upper(), rest, obj_id)


@given(st.text())
@example("CHATMESSAGE 1\tBODY x")
@example("ERROR \u0661\u0662")
@example("ALTER CHAT #x")
def test_arbitrary_text_only_ever_raises_api_parse_error(text):
    try:
        reply = parse_reply(text)
    except ApiParseError as exc:
        assert exc.line == text
    else:
        assert isinstance(
            reply, ObjectProperty | Parameter | SearchResult | ErrorReply | Ok | Pong | AlterReply
        )


@given(st.binary())
def test_arbitrary_bytes_decoded_leniently_never_crash(data):
    text = data.decode("utf-8", errors="replace")
    try:
        split_command_id(text)
        parse_reply(split_command_id(text)[1])
    except ApiParseError as exc:
        assert exc.line == split_command_id(text)[1]
