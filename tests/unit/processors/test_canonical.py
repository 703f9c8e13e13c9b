"""Content keys, host-message folding, canonical ids, revisions and diffs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.canonical import build_messages, diff_messages
from chatchannels.processors.clocks import HostClock, observe_clock
from chatchannels.processors.content import content_key, normalise_body, stable_digest
from chatchannels.processors.matching import cluster_messages
from chatchannels.processors.observations import (
    HostMessage,
    MessageObservation,
    fold_observation,
    refresh_clock,
)
from tests.support.processor_events import CHAT, T0

CLOCK = observe_clock(HostClock("a"), 1, T0 + 5.0, T0 + 0.5)


def obs(seq: int, **props) -> MessageObservation:
    base = dict(host="a", seq=seq, local_id="7", reason="backfill", captured_utc=T0, tz_offset_s=0)
    return MessageObservation(**(base | props))


def full(seq: int = 1, **props) -> MessageObservation:
    message = dict(
        chat=CHAT, author="bob", type="SAID", timestamp=T0, body="hi", edited_timestamp=0
    )
    return obs(seq, **(message | props))


def test_normalisation_ignores_what_transports_change() -> None:
    assert normalise_body("  a \r\nb\t\r\n") == "a\nb"
    assert normalise_body("e\u0301") == normalise_body("\u00e9")
    assert content_key("SAID", "hi", ("Bob",)) == content_key("said", " hi ", ("bob",))
    assert content_key("SAID", "hi") != content_key("EMOTED", "hi")
    assert content_key("ADDEDMEMBERS", "", ("x",)) != content_key("ADDEDMEMBERS", "", ("y",))


def test_fold_keeps_the_body_history_and_only_proven_originals() -> None:
    message = fold_observation(None, full(body="v1", edited_timestamp=None), CLOCK)
    assert message.original_body is None
    message = fold_observation(message, full(2, body="v1"), CLOCK)
    assert message.original_body == "v1"
    message = fold_observation(message, obs(3, body="v2", edited_timestamp=T0 + 9), CLOCK)
    message = fold_observation(message, obs(4, status="READ"), CLOCK)
    assert [s.body for s in message.sightings] == ["v1", "v1", "v2"]
    assert (message.status, message.original_body, message.current.body) == ("READ", "v1", "v2")
    assert message.corrected_utc == T0 - 4.5


def test_fold_is_idempotent_for_redelivered_and_repeated_reads() -> None:
    once = fold_observation(None, full(), CLOCK)
    assert fold_observation(once, full(), CLOCK) is once
    again = fold_observation(once, full(2), CLOCK)
    assert again.sightings == once.sightings and again.last_seq == 2


def test_refresh_recorrects_only_the_same_epoch() -> None:
    spooled = observe_clock(HostClock("a"), 1, T0 + 5.0, T0 + 3600)
    message = fold_observation(None, full(), spooled)
    live = observe_clock(spooled, 2, T0 + 10.0, T0 + 5.2)
    refreshed = refresh_clock(message, live)
    assert (refreshed.skew_s, refreshed.sightings[0].skew_s) == (4.8, 4.8)
    assert refresh_clock(refreshed, live) is refreshed


def hm(host: str, local_id: str, body: str = "hi", at: float = T0, **extra) -> HostMessage:
    message = fold_observation(None, full(host=host, local_id=local_id, body=body), CLOCK)
    fields = {"timestamp": int(at)} | extra
    return HostMessage(**(message.__dict__ | fields))


def test_ids_do_not_depend_on_which_hosts_have_joined() -> None:
    alone = build_messages(cluster_messages([hm("m", "1")]))
    joined = build_messages(cluster_messages([hm("m", "1"), hm("a", "9"), hm("z", "3")]))
    assert [m.id for m in alone] == [m.id for m in joined]
    assert len(joined[0].observations) == 3


def test_equal_texts_get_distinct_ids_in_time_order() -> None:
    messages = build_messages(cluster_messages([hm("a", "1"), hm("a", "2", at=T0 + 5)]))
    assert len({m.id for m in messages}) == 2
    first_alone = build_messages(cluster_messages([hm("a", "1")]))
    assert first_alone[0].id == messages[0].id


def test_diff_reports_changed_rows_removed_ids_and_aliases() -> None:
    edited = fold_observation(
        None, full(host="b", local_id="4", body="hi!", edited_timestamp=T0 + 9), CLOCK
    )
    before = build_messages(cluster_messages([edited]))
    after = build_messages(cluster_messages([edited, hm("a", "1")]))
    change = diff_messages(before, after)
    assert change.upserted == tuple(after)
    assert change.removed == (before[0].id,)
    assert change.aliases == ((before[0].id, after[0].id),)
    assert diff_messages(after, after).upserted == ()


@given(st.text(max_size=30))
def test_normalisation_is_idempotent(body) -> None:
    assert normalise_body(normalise_body(body)) == normalise_body(body)


def test_digests_are_the_ones_earlier_releases_stored() -> None:
    # Ids and keys are digests kept in the store and in links: they must never change.
    assert stable_digest("message", "#c", "alice", "k", "0") == "efc0a668ff55a011b23bad82"
    assert stable_digest("content", "SAID", "héllo", "") == "19f1ef147162dbc6ec7a95fb"
    # Length-prefixed: moving text between parts gives another digest.
    assert stable_digest("ab", "c") != stable_digest("a", "bc")
