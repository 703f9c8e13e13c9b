"""Pure parts of the agent: allow-list, notification classification, event assembly, config."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.ingest.agent.allowlist import AllowList, AllowListError
from chatchannels.ingest.agent.config import AgentConfigError, load_agent_config
from chatchannels.ingest.agent.reads import (
    Exchange,
    Kind,
    ObjectRead,
    build_event,
    classify,
    message_gets,
    message_ids,
    payload_parts,
)
from chatchannels.rawevents import EventClock, decode_raw_event, encode_raw_event
from chatchannels.settings import Settings

CHAT = "#alice/$bob;a7ab206ec78060f1"
CLOCK = EventClock(utc=1700000000.123456, tz_offset_s=3600)
SESSION = "0123456789abcdef0123456789abcdef"


# --- allow-list -------------------------------------------------------------------------


def test_empty_allow_list_refuses_and_says_how_to_fix():
    with pytest.raises(AllowListError, match="--all-chats"):
        AllowList.build([], [])
    assert AllowList.build([], [], everything=True).allows("#x/$y;1")


def test_allow_by_name_and_by_pattern_over_name_or_topic():
    allow = AllowList.build([CHAT], [r"(?i)release", r"^#ops/"])
    assert allow.allows(CHAT)
    assert allow.allows("#ops/$0123", topic=None)
    assert allow.allows("#z/$1", topic="Release planning")
    assert not allow.allows("#z/$1", topic="lunch")
    assert not allow.allows("#z/$1")
    assert allow.needs_topic


def test_bad_pattern_is_named():
    with pytest.raises(AllowListError, match=r"chat_patterns\[1\]"):
        AllowList.build([], ["ok", "(unclosed"])


@given(st.text(), st.text(), st.sets(st.text(), max_size=4))
def test_names_only_list_allows_exactly_its_names(name, topic, names):
    allow = AllowList.build(names | {"#fixed/$1"}, [])
    assert allow.allows(name, topic) == (name in names or name == "#fixed/$1")


# --- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "obj_id", "prop"),
    [
        ("CHATMESSAGE 293 STATUS RECEIVED", Kind.MESSAGE_STATUS, "293", "STATUS"),
        ("CHATMESSAGE 864 EDITED_TIMESTAMP 1175093385", Kind.MESSAGE_CONTENT, "864", ""),
        ("CHATMESSAGE 864 BODY ", Kind.MESSAGE_CONTENT, "864", "BODY"),
        (f"CHAT {CHAT} ACTIVITY_TIMESTAMP 1357987875", Kind.CHAT_ACTIVITY, CHAT, ""),
        (f"CHAT {CHAT} TOPIC new topic", Kind.CHAT_STRUCTURE, CHAT, "TOPIC"),
        (f"CHAT {CHAT} MEMBERS alice bob", Kind.CHAT_STRUCTURE, CHAT, ""),
        (f"CHAT {CHAT} ACTIVEMEMBERS", Kind.CHAT_SMALL, CHAT, ""),
        ("CONNSTATUS ONLINE", Kind.SESSION, "", ""),
        ("USER bob ONLINESTATUS ONLINE", Kind.IGNORED, "", ""),
        ("CHATMEMBER 288 IS_ACTIVE TRUE", Kind.IGNORED, "", ""),
        ("chatmessage 7 status read", Kind.MESSAGE_STATUS, "7", "STATUS"),
    ],
)
def test_classify(line, kind, obj_id, prop):
    notice = classify(line)
    assert notice.kind is kind
    assert notice.obj_id == obj_id
    if prop:
        assert notice.prop == prop
    assert notice.problem == ""


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("%%% garbage", "unparsable"),
        ("CHATMESSAGE 5", "unparsable"),
        ("ERROR 9901 Internal error", "ERROR 9901"),
        ("MESSAGE 1675305 STATUS RECEIVED", "protocol-1"),
    ],
)
def test_odd_notifications_are_flagged_not_raised(line, problem):
    notice = classify(line)
    assert notice.kind is Kind.ODD
    assert problem in notice.problem


def test_unknown_properties_are_kept_with_a_flag():
    assert "unknown CHATMESSAGE property" in classify("CHATMESSAGE 5 SPARKLE on").problem
    notice = classify(f"CHAT {CHAT} GLITTER x")
    assert notice.kind is Kind.CHAT_SMALL
    assert "unknown CHAT property GLITTER" in notice.problem


@given(st.text())
def test_classify_never_raises(line):
    assert classify(line).line == line


# --- event assembly ---------------------------------------------------------------------


def _read(*pairs: tuple[str, str | None], trigger="CHATMESSAGE 293 STATUS RECEIVED", **kw):
    exchanges = tuple(Exchange(c, r, "timed out" if r is None else "") for c, r in pairs)
    return ObjectRead("notification", "CHATMESSAGE", "293", trigger, exchanges, **kw)


def test_event_keeps_lines_verbatim_in_get_order_and_validates():
    body = "  two leading spaces\nsecond line\r\n<b>&amp;</b> 🎉 "
    read = _read(
        ("GET CHATMESSAGE 293 CHATNAME", f"CHATMESSAGE 293 CHATNAME {CHAT}"),
        ("GET CHATMESSAGE 293 BODY", f"CHATMESSAGE 293 BODY {body}"),
    )
    event = build_event(read, host="alice-pc", session=SESSION, seq=7, clock=CLOCK)
    assert event["payload"]["lines"] == [
        f"CHATMESSAGE 293 CHATNAME {CHAT}",
        f"CHATMESSAGE 293 BODY {body}",
    ]
    assert "anomalies" not in event["payload"]
    assert event["clock"] == {"utc": 1700000000.123456, "tz_offset_s": 3600}
    assert decode_raw_event(encode_raw_event(event)) == event
    assert read.value("BODY") == body


def test_odd_replies_go_in_verbatim_with_flags():
    read = _read(
        ("GET CHATMESSAGE 293 CHATNAME", f"CHATMESSAGE 293 CHATNAME {CHAT}"),
        ("GET CHATMESSAGE 293 TYPE", "ERROR 16 Invalid PROP"),
        ("GET CHATMESSAGE 293 BODY", "!!garbage"),
        ("GET CHATMESSAGE 293 STATUS", "CHATMESSAGE 294 STATUS READ"),
        ("GET CHATMESSAGE 293 USERS", None),
        trigger="CHATMESSAGE 293 SPARKLE x",
        trigger_problem="unknown CHATMESSAGE property SPARKLE",
    )
    lines, anomalies = payload_parts(read)
    assert lines == [
        f"CHATMESSAGE 293 CHATNAME {CHAT}",
        "ERROR 16 Invalid PROP",
        "!!garbage",
        "CHATMESSAGE 294 STATUS READ",
    ]
    problems = [(a["line"], a["problem"].split(" ")[0]) for a in anomalies]
    assert problems == [
        ("CHATMESSAGE 293 SPARKLE x", "unknown"),
        ("ERROR 16 Invalid PROP", "ERROR"),
        ("!!garbage", "unparsable"),
        ("CHATMESSAGE 294 STATUS READ", "reply"),
        ("GET CHATMESSAGE 293 USERS", "no"),
    ]
    event = build_event(read, host="h", session=SESSION, seq=1, clock=CLOCK)
    decode_raw_event(encode_raw_event(event))


def test_parameter_and_search_replies_are_recognised():
    read = ObjectRead(
        "backfill",
        "SESSION",
        "session",
        None,
        (
            Exchange("GET CURRENTUSERHANDLE", "CURRENTUSERHANDLE alice"),
            Exchange("SEARCH CHATS", "CHATS a, b"),
            Exchange("GET PROTOCOL", "CONNSTATUS ONLINE"),
        ),
    )
    _, anomalies = payload_parts(read)
    assert [a["line"] for a in anomalies] == ["CONNSTATUS ONLINE"]


def test_message_gets_start_with_chatname():
    gets = message_gets("293")
    assert gets[0] == "GET CHATMESSAGE 293 CHATNAME"
    assert "GET CHATMESSAGE 293 BODY" in gets


def test_message_ids_sorted_with_junk_returned():
    assert message_ids("36, 34, 35, 34") == ([34, 35, 36], [])
    assert message_ids("") == ([], [])
    assert message_ids("3, x1, 2") == ([2, 3], ["x1"])


# --- config -----------------------------------------------------------------------------


def test_config_without_allow_list_refuses_to_start(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('host_id = "alice-pc"\n')
    with pytest.raises(AgentConfigError, match="no chats to archive"):
        load_agent_config(path, Settings())
    config = load_agent_config(path, Settings(), all_chats=True)
    assert config.all_chats


def test_config_reads_keys_and_defaults_from_settings(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(
        'host_id = "alice-pc"\nspool = "/tmp/x/spool.db"\nchats = ["#a/$b;1"]\n'
        'chat_patterns = ["(?i)ops"]\nclock_offset_s = 12.5\n'
    )
    config = load_agent_config(path, Settings(kafka="k:1", topic="t"))
    assert (config.host_id, config.kafka, config.topic) == ("alice-pc", "k:1", "t")
    assert config.chats == ("#a/$b;1",)
    assert config.clock_offset_s == 12.5
    assert str(config.status_file) == "/tmp/x/spool.db.status.json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('chats = "#a"', "not a list of strings"),
        ('chats = ["#a"]\nhost_id = "bad host"', "host_id"),
        ('chats = ["#a"]\noverlap = "many"', "overlap"),
        ("chats = [", "cannot read"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(AgentConfigError, match=message):
        load_agent_config(path, Settings())
