"""Chat rows from the hosts' CHAT reads: Skype notifies one property at a time, so what a
host read of a chat is the merge of its reads, and each property is taken from whichever
host read it last in true time."""

from __future__ import annotations

from chatchannels.processors.engine import Applied, Engine
from chatchannels.processors.rows import chat_row
from tests.support.processor_events import CHAT, T0, Host

PREFIX = f"CHAT {CHAT} "


def chat_of(*hosts: Host):
    engine = Engine()
    for host in hosts:
        for event, broker_utc in host.records:
            assert isinstance(engine.apply(event, broker_utc), Applied)
    skews = {name: clock.skew_s for name, clock in engine.clocks.items()}
    return chat_row(engine.objects.values(), skews)


def test_a_later_notification_of_one_property_keeps_the_others() -> None:
    a = Host("a")
    a.event(CHAT, [PREFIX + "TOPIC Lunch", PREFIX + "MEMBERS bob Alice"], at=T0, obj="CHAT")
    a.event(CHAT, [PREFIX + "ACTIVITY_TIMESTAMP 1700000000"], at=T0 + 60, obj="CHAT")
    row = chat_of(a)
    assert (row.topic, row.members) == ("Lunch", ("alice", "bob"))


def test_each_property_comes_from_the_host_that_read_it_last_in_true_time() -> None:
    # a read the topic first; b (its clock 40 s slow) saw it change; a's later notification
    # about something else must not make a's old topic the newest.
    a, b = Host("a"), Host("b", skew=-40)
    a.event(CHAT, [PREFIX + "TOPIC Lunch", PREFIX + "MEMBERS alice bob"], at=T0, obj="CHAT")
    b.event(CHAT, [PREFIX + "TOPIC Lunch at noon"], at=T0 + 30, obj="CHAT")
    a.event(CHAT, [PREFIX + "MEMBERS alice bob carol"], at=T0 + 60, obj="CHAT")
    row = chat_of(a, b)
    assert (row.topic, row.members) == ("Lunch at noon", ("alice", "bob", "carol"))
    assert chat_of(b, a) == row


def test_a_redelivered_read_changes_nothing() -> None:
    a = Host("a")
    first = a.event(CHAT, [PREFIX + "TOPIC Lunch"], at=T0, obj="CHAT")
    a.event(CHAT, [PREFIX + "TOPIC Dinner"], at=T0 + 60, obj="CHAT")
    a.records.append(first)
    assert chat_of(a).topic == "Dinner"
