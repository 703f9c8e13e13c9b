"""A month as a conversation: runs of one person's messages, day breaks in the organisation's
time zone, system lines, participants, the calendar of months and chat titles (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from chatchannels.publishers.conversation import (
    Run,
    SystemLine,
    TimeZoneError,
    conversation,
    participants,
    time_zone,
)
from chatchannels.publishers.model import Chat, Message, MonthCount
from chatchannels.publishers.pages import PageRenderer, calendar

CHAT = "#alice/$bob;a7ab"
START = datetime(2006, 5, 1, 12, 0, tzinfo=UTC)


def msg(n: int, author: str, at: datetime, type: str = "SAID", name: str = "") -> Message:
    return Message(
        id=f"m{n}",
        chat=CHAT,
        author=author,
        author_name=name or author.title(),
        posted_utc=at,
        type=type,
        body=f"text {n}",
        body_markup=f"text {n}",
        edited_utc=None,
        edited_by=None,
        deleted=False,
    )


def shape(days) -> list[tuple[date, list[object]]]:
    """Each day with its items as author + message numbers, or 'sys' + number."""
    return [
        (
            day.date,
            [
                (item.author, [m.id for m in item.messages])
                if isinstance(item, Run)
                else ("sys", item.message.id)
                for item in day.items
            ],
        )
        for day in days
    ]


def test_one_person_within_a_few_minutes_is_one_run():
    minutes = timedelta(minutes=1)
    messages = [
        msg(1, "alice", START),
        msg(2, "alice", START + 4 * minutes),
        msg(3, "alice", START + 9 * minutes),  # exactly five minutes after the last: kept
        msg(4, "alice", START + 15 * minutes),  # six minutes later: a new run
        msg(5, "bob", START + 16 * minutes),
        msg(6, "alice", START + 17 * minutes),  # someone spoke in between: a new run
        msg(7, "alice", START + 18 * minutes, name="Alice (away)"),  # renamed: a new header
    ]
    assert shape(conversation(messages, UTC)) == [
        (
            date(2006, 5, 1),
            [
                ("alice", ["m1", "m2", "m3"]),
                ("alice", ["m4"]),
                ("bob", ["m5"]),
                ("alice", ["m6"]),
                ("alice", ["m7"]),
            ],
        )
    ]


def test_system_lines_stand_alone_and_end_a_run():
    messages = [
        msg(1, "alice", START),
        msg(2, "alice", START + timedelta(minutes=1), type="ADDEDMEMBERS"),
        msg(3, "alice", START + timedelta(minutes=2)),
        msg(4, "bob", START + timedelta(minutes=3), type="CALL"),
        msg(5, "bob", START + timedelta(minutes=4), type="SETTOPIC"),
    ]
    [(_, items)] = shape(conversation(messages, UTC))
    assert items == [
        ("alice", ["m1"]),
        ("sys", "m2"),
        ("alice", ["m3"]),
        ("sys", "m4"),
        ("sys", "m5"),
    ]
    assert isinstance(conversation(messages, UTC)[0].items[1], SystemLine)


def test_days_break_in_the_organisations_time_zone():
    late = datetime(2006, 5, 1, 22, 30, tzinfo=UTC)
    messages = [msg(1, "alice", late), msg(2, "alice", late + timedelta(minutes=2))]
    # In UTC both are on 1 May, one run.
    assert shape(conversation(messages, UTC)) == [(date(2006, 5, 1), [("alice", ["m1", "m2"])])]
    # In Tallinn (UTC+3 in May) they are 01:30 and 01:32 on 2 May.
    tallinn = time_zone("Europe/Tallinn")
    assert shape(conversation(messages, tallinn)) == [(date(2006, 5, 2), [("alice", ["m1", "m2"])])]
    # Across local midnight a run breaks, however close the messages are.
    midnight = datetime(2006, 5, 1, 21, 0, tzinfo=UTC)  # 00:00 in Tallinn
    split = [msg(1, "alice", midnight - timedelta(minutes=1)), msg(2, "alice", midnight)]
    assert [d.date for d in conversation(split, tallinn)] == [date(2006, 5, 1), date(2006, 5, 2)]


def test_time_zone_setting():
    assert time_zone("UTC") is UTC and time_zone("") is UTC
    assert str(time_zone("America/New_York")) == "America/New_York"
    with pytest.raises(TimeZoneError, match="Mars/Olympus"):
        time_zone("Mars/Olympus")


def test_month_page_tells_local_times_with_the_exact_utc_time_as_title():
    messages = [msg(1, "alice", datetime(2006, 5, 1, 22, 30, tzinfo=UTC))]
    chat = Chat(CHAT, "", (), (("alice", "Alice"), ("bob", "Bob")))
    html = PageRenderer("Europe/Tallinn").month_page(chat, "2006-05", messages, None, None)
    assert (
        '<time datetime="2006-05-01T22:30:00Z" title="2006-05-01 22:30:00 UTC">01:30</time>'
    ) in html
    assert '<h2 class="day" id="d-2006-05-02">' in html and "Tuesday, 2 May 2006" in html
    assert "times in Europe/Tallinn" in html
    with pytest.raises(TimeZoneError):
        PageRenderer("nowhere")


def test_participants_most_messages_first_under_their_latest_name():
    messages = [
        msg(1, "bob", START, name="Bob"),
        msg(2, "alice", START),
        msg(3, "bob", START, name="Robert"),
    ]
    assert participants(messages) == [("bob", "Robert", 2), ("alice", "Alice", 1)]


def test_calendar_of_months_fills_whole_years():
    years = calendar([MonthCount("2006-11", 3), MonthCount("2008-02", 5)])
    assert [(year, total) for year, _, total in years] == [(2006, 3), (2007, 0), (2008, 5)]
    assert years[0][1][10] == MonthCount("2006-11", 3) and years[0][1][9] is None
    html = PageRenderer().chat_index(
        Chat(CHAT, "", (("alice", "Alice"), ("bob", "")), ()),
        [MonthCount("2006-11", 3), MonthCount("2008-02", 5)],
    )
    assert '<a href="2006-11.html" aria-label="2006-11: 3 messages">3</a>' in html
    assert '<a href="2008-02.html"' in html and "<title>Alice &amp; bob · Chat Channels" in html


def test_a_chat_is_titled_by_its_topic_else_its_people_and_its_id_is_shown_small():
    legacy = Chat(CHAT, "", (), (("alice", "Alice Liddell"), ("bob", "")))
    assert legacy.title == "Alice Liddell & bob"
    assert Chat(CHAT, "Plans", (("alice", "Alice"),)).title == "Plans"
    html = PageRenderer().month_page(legacy, "2006-05", [msg(1, "alice", START)], None, None)
    assert "<h1><bdi>Alice Liddell &amp; bob</bdi>" in html
    assert "<small>Skype id <code><bdi>#alice/$bob;a7ab</bdi></code>" in html
