import contextlib
import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.rawevents import (
    EventClock,
    RawEventError,
    decode_raw_event,
    encode_raw_event,
    raw_event_schema,
    skype_api_event,
    validate_raw_event,
)


def _event(**changes):
    event = skype_api_event(
        host="alice-pc",
        session="0" * 32,
        seq=1,
        clock=EventClock(utc=1357987875.25, tz_offset_s=3600),
        reason="notification",
        obj="CHATMESSAGE",
        obj_id="293",
        trigger="CHATMESSAGE 293 STATUS RECEIVED",
        lines=["CHATMESSAGE 293 BODY  two\nlines ", "CHATMESSAGE 293 TIMESTAMP 1357987875"],
    )
    event.update(changes)
    return event


def test_a_built_event_is_valid_and_round_trips_byte_for_byte():
    event = _event()
    validate_raw_event(event)
    data = encode_raw_event(event)
    assert decode_raw_event(data) == event
    assert encode_raw_event(decode_raw_event(data)) == data


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"seq": 0}, "seq"),
        ({"host": "has space"}, "host"),
        ({"source": "irc"}, "source"),
        ({"session": "xyz"}, "session"),
        ({"clock": {"utc": 1.0}}, "clock"),
    ],
)
def test_invalid_events_name_the_field(change, where):
    with pytest.raises(RawEventError, match=where):
        validate_raw_event(_event(**change))


def test_skype_api_payload_is_checked_too():
    event = _event()
    event["payload"]["reason"] = "whim"
    with pytest.raises(RawEventError, match="payload/reason"):
        validate_raw_event(event)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_raw_event_error(data):
    with contextlib.suppress(RawEventError):
        decode_raw_event(data)


@given(st.text(max_size=200))
def test_verbatim_lines_survive_encoding(text):
    event = _event()
    event["payload"]["lines"] = [text]
    assert decode_raw_event(encode_raw_event(event))["payload"]["lines"] == [text]


def test_encoding_is_compact_utf8_json():
    data = encode_raw_event(_event(host="h"))
    assert b": " not in data and json.loads(data)["host"] == "h"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_FIELDS = [
    ("schema",),
    ("host",),
    ("session",),
    ("seq",),
    ("clock",),
    ("clock", "utc"),
    ("clock", "tz_offset_s"),
    ("source",),
    ("payload",),
    ("payload", "reason"),
    ("payload", "object"),
    ("payload", "id"),
    ("payload", "trigger"),
    ("payload", "lines"),
    ("payload", "anomalies"),
    ("payload", "extra"),
]
_NEAR_VALID = st.sampled_from(
    ["chatchannels.raw.v1", "h\n", "0" * 32, "0" * 32 + "\n", "skype-export", "poll", "SESSION"]
) | st.sampled_from([0, 1, 1.0, True, -64801, 64800, [], [{"line": "x", "problem": "y"}]])


@given(st.lists(st.tuples(st.sampled_from(_FIELDS), _JSON | _NEAR_VALID), max_size=3))
def test_accepts_exactly_what_the_json_schema_accepts(changes):
    event = _event()
    _assert_verdict_of_the_schema(event, event, changes)


def _assert_verdict_of_the_schema(event, root, changes) -> None:
    """`changes` (path under `root`, value) made to `event`: validate_raw_event accepts it
    exactly when jsonschema, the reference, does."""
    for path, value in changes:
        target = root
        for name in path[:-1]:
            target = target[name] if isinstance(target.get(name), dict) else {}
        target[path[-1]] = value
    reference = jsonschema.Draft202012Validator(raw_event_schema()).is_valid(event)
    try:
        validate_raw_event(event)
        accepted = True
    except RawEventError:
        accepted = False
    assert accepted == reference


_FILE = {"sha256": "a" * 64, "name": "main.db", "account": "alice", "client": None}
_IMPORTED = {
    "skype-maindb": {
        "file": _FILE,
        "place": {"table": "Messages", "rowid": 7},
        "row": {"id": 7, "body_xml": "hi", "timestamp": 1_300_000_000},
    },
    "skype-export": {
        "file": _FILE,
        "place": {"conversation": 0, "message": 3},
        "kind": "message",
        "conversation": {"id": "8:bob"},
        "message": {"id": "1", "content": "hi", "originalarrivaltime": "2020-01-01T00:00:00Z"},
    },
}
_IMPORTED_FIELDS = [
    ("file",),
    ("file", "sha256"),
    ("file", "name"),
    ("file", "account"),
    ("place",),
    ("place", "table"),
    ("place", "rowid"),
    ("place", "message"),
    ("row",),
    ("row", "id"),
    ("kind",),
    ("conversation",),
    ("conversation", "id"),
    ("message",),
    ("media",),
    ("extra",),
]


@given(
    st.sampled_from(sorted(_IMPORTED)),
    st.lists(st.tuples(st.sampled_from(_IMPORTED_FIELDS), _JSON | _NEAR_VALID), max_size=3),
)
def test_imported_events_accepted_exactly_as_the_json_schema_accepts(source, changes):
    """The same for the importers' payloads, whose schema branches the compiled validator
    takes by `source`."""
    event = _event()
    event["source"] = source
    event["payload"] = json.loads(json.dumps(_IMPORTED[source]))
    _assert_verdict_of_the_schema(event, event["payload"], changes)
