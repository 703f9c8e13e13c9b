"""Raw event -> observation, and a clear DecodeError for everything bad."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.ingest.agent.reads import Exchange, ObjectRead, build_event
from chatchannels.ingest.desktop_api.protocol import ApiParseError, ObjectProperty, parse_reply
from chatchannels.processors.decode import DecodeError, decode_event, own_prefix, own_property
from chatchannels.processors.observations import MessageObservation, ObjectObservation
from chatchannels.rawevents import EventClock
from tests.support.processor_events import CHAT, T0, Host


def test_full_read_gives_every_property() -> None:
    host = Host("alice-pc", skew=5)
    event, _ = host.read("293", posted=T0, body="  two\nlines ")
    obs = decode_event(event)
    assert obs == MessageObservation(
        host="alice-pc",
        seq=1,
        local_id="293",
        reason="notification",
        captured_utc=T0 + 6,
        tz_offset_s=3600,
        chat=CHAT,
        author="bob",
        author_name="Bob",
        type="SAID",
        status="RECEIVED",
        timestamp=T0 + 5,
        body="  two\nlines ",
        edited_timestamp=0,
        edited_by=None,
    )


def test_status_event_reads_its_news_from_the_trigger() -> None:
    event, _ = Host("h").status("293", "READ", at=T0)
    obs = decode_event(event)
    assert isinstance(obs, MessageObservation)
    assert (obs.status, obs.body, obs.timestamp, obs.chat) == ("READ", None, None, None)


def test_deletion_reads_an_empty_body() -> None:
    event, _ = Host("h").edit("293", edited=T0, body="")
    obs = decode_event(event)
    assert isinstance(obs, MessageObservation)
    assert (obs.body, obs.edited_timestamp, obs.edited_by) == ("", T0, "bob")


def test_chat_event_is_an_object_observation() -> None:
    lines = [f"CHAT {CHAT} TOPIC release party", f"CHAT {CHAT} MEMBERS alice bob"]
    event, _ = Host("h").event(CHAT, lines, at=T0, obj="CHAT", reason="backfill")
    obs = decode_event(event)
    assert isinstance(obs, ObjectObservation)
    captured = obs.captured_utc
    assert obs.properties == (
        ("MEMBERS", "alice bob", captured),
        ("TOPIC", "release party", captured),
    )


def test_session_event_keeps_the_agents_parameters() -> None:
    lines = ["CURRENTUSERHANDLE alice", "PROTOCOL 8", "ERROR 7 GET: invalid WHAT"]
    event, _ = Host("h").event("attach", lines, at=T0, obj="SESSION", reason="reattach")
    event["payload"]["trigger"] = "CONNSTATUS ONLINE"
    obs = decode_event(event)
    assert isinstance(obs, ObjectObservation)
    assert [(name, value) for name, value, _ in obs.properties] == [
        ("CONNSTATUS", "ONLINE"),
        ("CURRENTUSERHANDLE", "alice"),
        ("PROTOCOL", "8"),
    ]


def test_poll_trigger_about_the_chat_is_not_an_error() -> None:
    host = Host("h")
    event, _ = host.read("7", posted=T0, body="x", reason="poll")
    event["payload"]["trigger"] = f"CHAT {CHAT} ACTIVITY_TIMESTAMP {T0}"
    assert isinstance(decode_event(event), MessageObservation)


def test_error_replies_and_flagged_anomalies_are_skipped() -> None:
    event, _ = Host("h").read("7", posted=T0, body="x")
    event["payload"]["lines"] += ["ERROR 15 Unknown message", "garbage line"]
    event["payload"]["anomalies"] = [{"line": "garbage line", "problem": "unparsable"}]
    obs = decode_event(event)
    assert isinstance(obs, MessageObservation) and obs.body == "x"


def _broken(mutate) -> DecodeError:
    event, _ = Host("alice-pc").read("7", posted=T0, body="x")
    event = copy.deepcopy(event)
    mutate(event)
    result = decode_event(event)
    assert isinstance(result, DecodeError), result
    return result


def test_schema_invalid_event_names_the_field() -> None:
    error = _broken(lambda e: e["clock"].update(tz_offset_s="+01:00"))
    assert (error.kind, error.host, error.seq) == ("schema", "alice-pc", 1)
    assert "clock/tz_offset_s" in error.reason


def test_unparsable_line_names_the_line() -> None:
    error = _broken(lambda e: e["payload"]["lines"].insert(2, "  not a reply"))
    assert (error.kind, error.where) == ("line", "payload.lines[2]")
    assert "'  not a reply'" in error.reason
    assert str(error).startswith("host alice-pc seq 1: payload.lines[2]: ")


def test_line_about_another_object_is_refused() -> None:
    error = _broken(lambda e: e["payload"]["lines"].append("CHATMESSAGE 8 BODY y"))
    assert error.where == "payload.lines[9]"
    assert "CHATMESSAGE 8" in error.reason


def test_impossible_timestamps_are_refused() -> None:
    error = _broken(lambda e: e["payload"]["lines"].__setitem__(0, "CHATMESSAGE 7 TIMESTAMP 12"))
    assert (error.kind, error.where) == ("value", "payload.lines[0]")
    assert "impossible timestamp 12" in error.reason
    error = _broken(lambda e: e["payload"]["lines"].__setitem__(0, "CHATMESSAGE 7 TIMESTAMP 1e9"))
    assert "not a decimal integer" in error.reason


def test_empty_author_is_refused() -> None:
    error = _broken(lambda e: e["payload"]["lines"].__setitem__(1, "CHATMESSAGE 7 FROM_HANDLE "))
    assert (error.kind, error.reason) == ("value", "empty author")


def test_other_sources_payloads_are_checked_by_their_schema() -> None:
    # The Desktop API's lines are no export object or main.db row: a schema error, not a crash.
    for source in ("skype-export", "skype-maindb"):
        error = _broken(lambda e, source=source: e.update(source=source))
        assert (error.kind, error.host, error.seq) == ("schema", "alice-pc", 1)
        assert "payload" in error.reason


def test_non_object_is_a_schema_error() -> None:
    assert isinstance(decode_event({"schema": 3}), DecodeError)


@given(
    lines=st.lists(st.text(max_size=40), max_size=6),
    trigger=st.none() | st.text(max_size=40),
    obj_id=st.text(min_size=1, max_size=8),
)
def test_any_lines_decode_or_give_an_error(lines, trigger, obj_id) -> None:
    event, _ = Host("h").read("7", posted=T0, body="x")
    event["payload"].update(lines=lines, trigger=trigger, id=obj_id)
    result = decode_event(event)
    assert isinstance(result, MessageObservation | DecodeError)


def test_events_as_the_agent_builds_them_decode() -> None:
    pairs = [
        ("GET CHATMESSAGE 293 CHATNAME", f"CHATMESSAGE 293 CHATNAME {CHAT}"),
        ("GET CHATMESSAGE 293 TIMESTAMP", f"CHATMESSAGE 293 TIMESTAMP {T0}"),
        ("GET CHATMESSAGE 293 FROM_HANDLE", "CHATMESSAGE 293 FROM_HANDLE bob"),
        ("GET CHATMESSAGE 293 TYPE", "ERROR 16 Invalid PROP"),
        ("GET CHATMESSAGE 293 BODY", "!!garbage"),
        ("GET CHATMESSAGE 293 STATUS", "CHATMESSAGE 294 STATUS READ"),
        ("GET CHATMESSAGE 293 USERS", None),
    ]
    exchanges = tuple(Exchange(c, r, "timed out" if r is None else "") for c, r in pairs)
    read = ObjectRead(
        "notification",
        "CHATMESSAGE",
        "293",
        "CHATMESSAGE 293 SPARKLE x",
        exchanges,
        trigger_problem="unknown CHATMESSAGE property SPARKLE",
    )
    clock = EventClock(utc=T0 + 1.5, tz_offset_s=0)
    event = build_event(read, host="alice-pc", session="0" * 32, seq=3, clock=clock)
    obs = decode_event(event)
    assert isinstance(obs, MessageObservation)
    assert (obs.chat, obs.timestamp, obs.author, obs.body, obs.status) == (
        CHAT,
        T0,
        "bob",
        None,
        None,
    )
    session = ObjectRead(
        "reattach",
        "SESSION",
        "attach",
        None,
        tuple(
            Exchange(c, r, "") for c, r in [("GET CURRENTUSERHANDLE", "CURRENTUSERHANDLE alice")]
        ),
    )
    obs = decode_event(build_event(session, host="alice-pc", session="0" * 32, seq=4, clock=clock))
    assert isinstance(obs, ObjectObservation) and obs.properties == (
        ("CURRENTUSERHANDLE", "alice", obs.captured_utc),
    )


_TOKEN = st.sampled_from(["CHATMESSAGE", "chatmessage", "CHAT", "SESSION", "USER", "293", "2 3"])
_PIECE = st.sampled_from(["BODY", "body", "B0DY_x", "9X", "", " ", "\t", "\n", "x y", "é"])


@given(_TOKEN, _TOKEN, st.lists(_PIECE | st.text(max_size=4), max_size=4))
def test_own_lines_split_exactly_as_parse_reply_splits_them(obj, obj_id, pieces):
    own = own_prefix(obj, obj_id)
    text = f"{obj} {obj_id} " + "".join(pieces)
    found = own_property(own, text) if own is not None else None
    if found is None:
        return
    try:
        reply = parse_reply(text)
    except ApiParseError as exc:
        raise AssertionError(f"fast path took {text!r}, parse_reply refuses it") from exc
    assert reply == ObjectProperty(obj, obj_id, *found)
