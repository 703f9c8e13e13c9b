"""Pages and feeds rendered from values (no store, no files)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

import feedparser

from chatchannels.publishers import feeds
from chatchannels.publishers.model import (
    Chat,
    ChatSummary,
    Message,
    MonthCount,
    Revision,
    Sighting,
)
from chatchannels.publishers.pages import PageRenderer

CHAT = "#alice/$bob;a7ab"
POSTED = datetime(2006, 5, 1, 12, 0, tzinfo=UTC)
EDITED = datetime(2006, 5, 2, 8, 30, tzinfo=UTC)
CHAT_ROW = Chat(CHAT, "", (), (("alice", "Alice"), ("bob", "Bob")))


def message(id="m1", body="hi <b>there</b>", **changes):
    values = dict(
        id=id,
        chat=CHAT,
        author="alice",
        author_name="Alice",
        posted_utc=POSTED,
        type="SAID",
        body=body,
        body_markup=body,
        edited_utc=None,
        edited_by=None,
        deleted=False,
        revisions=(Revision(0, body, None, None, False),),
        hosts=("alice-pc",),
        sightings=(Sighting("alice-pc", f"{id}-0", int(POSTED.timestamp()), 0),),
    )
    values.update(changes)
    return Message(**values)


def test_month_page_has_anchors_times_history_tombstones_and_hosts():
    edited = message(
        "m1",
        "new <i>text</i>",
        edited_utc=EDITED,
        edited_by="alice",
        revisions=(
            Revision(0, "old text", None, None, False),
            Revision(1, "new <i>text</i>", "alice", EDITED, False),
        ),
        hosts=("alice-pc", "bob-pc"),
        sightings=(
            Sighting("alice-pc", "m1-0", 1146484800, 7200),
            Sighting("bob-pc", "m1-1", 1146484847, 0),
        ),
    )
    deleted = message("m2", "", deleted=True, edited_utc=EDITED, edited_by="bob", author="bob")
    emote = message("m3", "waves", type="EMOTED")
    html = PageRenderer().month_page(CHAT_ROW, "2006-05", [edited, deleted, emote], "2006-04", None)
    assert '<article class="message edited" id="m-m1">' in html
    # The first message of a run has its time in the run's header (the next ones their own:
    # test_month_page_browser.py).
    assert (
        '<a class="permalink" href="#m-m1"><time datetime="2006-05-01T12:00:00Z"'
        ' title="2006-05-01 12:00:00 UTC">12:00</time></a>'
    ) in html
    assert "new <i>text</i>" in html and "old text" in html and "History (2 versions)" in html
    assert html.count('<details class="provenance">') == 3  # folded, one per message
    assert "<li><bdi>bob-pc</bdi>: local id <code><bdi>m1-1</bdi></code>" in html
    assert "Message deleted by <bdi>bob</bdi> at" in html
    assert '<span class="emote"><bdi>Alice</bdi></span> waves' in html
    assert 'href="2006-04.html"' in html and "→" not in html
    assert 'href="../../style.css"' in html and '<html lang="en">' in html
    assert "<title>Alice &amp; Bob · May 2006 · Chat Channels</title>" in html


def test_every_field_is_escaped():
    evil = "<script>x()</script>\"'"
    html = PageRenderer().month_page(
        Chat(evil, evil, ((evil, evil),)),
        "2006-05",
        [message(author=evil, author_name=evil, hosts=(evil,), body=evil)],
        None,
        None,
    )
    assert "<script>" not in html
    index = PageRenderer().site_index([ChatSummary(evil, evil, 1, POSTED, evil)])
    assert "<script>" not in index and "&lt;script&gt;" in index
    chat = PageRenderer().chat_index(Chat(evil, evil, ((evil, evil),)), [MonthCount("2006-05", 1)])
    assert "<script>" not in chat


def test_rendering_is_a_function_of_its_inputs():
    renderer = PageRenderer()
    first = renderer.month_page(CHAT_ROW, "2006-05", [message()], None, None)
    assert PageRenderer().month_page(CHAT_ROW, "2006-05", [message()], None, None) == first


def test_feeds_parse_and_carry_tag_ids_and_real_update_times():
    edited = message("m1", "edited \x01 body & <b>bold</b>", edited_utc=EDITED, edited_by="a")
    plain = message("m2", "plain")
    gone = message("m3", "", deleted=True, edited_utc=EDITED)
    archive = feeds.archive_feed(CHAT, "2006-05", [edited, plain, gone], "2006-04")
    parsed = feedparser.parse(archive)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entries = {e.id: e for e in parsed.entries}
    assert set(entries) == {f"tag:chatchannels.intranet,2006:message/m{i}" for i in (1, 2, 3)}
    assert (
        entries["tag:chatchannels.intranet,2006:message/m1"].updated == "2006-05-02T08:30:00+00:00"
    )
    assert (
        entries["tag:chatchannels.intranet,2006:message/m2"].updated == "2006-05-01T12:00:00+00:00"
    )
    assert "<b>bold</b>" in entries["tag:chatchannels.intranet,2006:message/m1"].content[0].value
    assert "deleted" in entries["tag:chatchannels.intranet,2006:message/m3"].content[0].value
    assert parsed.feed.updated == "2006-05-02T08:30:00+00:00"
    assert b"<fh:archive/>" in archive
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links["prev-archive"] == "2006-04.atom"
    assert links["current"] == "../(alice)~24bob~3Ba7ab.atom"
    assert entries["tag:chatchannels.intranet,2006:message/m1"].link == (
        "../../chats/(alice)~24bob~3Ba7ab/2006-05.html#m-m1"
    )


def test_current_and_whole_archive_feeds():
    current = feedparser.parse(feeds.chat_feed(CHAT, [message()], "2006-05"))
    assert not current.bozo
    assert {link.rel: link.href for link in current.feed.links}["prev-archive"] == (
        "(alice)~24bob~3Ba7ab/2006-05.atom"
    )
    everything = feedparser.parse(feeds.all_feed([message()], None, {CHAT: "Alice & Bob"}))
    assert everything.entries[0].title == "Alice in Alice & Bob: hi <b>there</b>"
    empty = feedparser.parse(feeds.all_feed([]))
    assert not empty.bozo and empty.feed.updated == "1970-01-01T00:00:00+00:00"
    assert feeds.all_feed([message()]) == feeds.all_feed([message()])


def test_kinds_and_unknown_types_show_as_what_they_are():
    call = message(
        "m1",
        '<partlist type="ended" alt="" callId="9"><part identity="8:bob"><name>Bob</name>'
        "<duration>65</duration></part></partlist>",
        type="CALL",
    )
    other = message("m2", "<x>kept</x> as it was", type="OTHER:maindb-65")
    picture = message(
        "m3",
        '<URIObject type="Picture.1" doc_id="0-d"><OriginalName v="cat.png"/></URIObject>',
        type="MEDIA",
    )
    html = PageRenderer().month_page(CHAT_ROW, "2006-05", [call, other, picture], None, None)
    assert '<article class="message system call" id="m-m1">' in html
    assert '<span class="call">Call ended, 1:05 (<bdi>Bob</bdi>)</span>' in html
    assert "does not know: <code>OTHER:maindb-65</code>" in html and "kept as it was" in html
    assert (
        '<bdi>cat.png</bdi> <span class="facts">(PNG picture)</span>'
        ' <span class="mark">(file not archived)</span>'
    ) in html


PICTURE = '<URIObject type="Picture.1" doc_id="0-d"><OriginalName v="cat.png"/></URIObject>'
SHA = "0f" * 32


def test_archived_media_link_relative_to_each_page_and_feed():
    picture = message("m1", PICTURE, type="MEDIA", media=("0-d",))
    page = PageRenderer().month_page(CHAT_ROW, "2006-05", [picture], None, None, {"0-d": SHA})
    assert f'<a class="media" href="../../media/0f/{SHA}"' in page
    assert "not archived" not in page and "<img" not in page
    # With the site's thumbnail of it, the picture shows as the thumbnail.
    page = PageRenderer().month_page(
        CHAT_ROW, "2006-05", [picture], None, None, {"0-d": SHA}, {SHA}
    )
    assert f'<img src="../../thumbs/0f/{SHA}.jpg" alt="cat.png" loading="lazy">' in page
    current = feedparser.parse(feeds.chat_feed(CHAT, [picture], "2006-05", {"0-d": SHA}))
    assert f'href="../media/0f/{SHA}"' in current.entries[0].content[0].value
    archive = feedparser.parse(feeds.archive_feed(CHAT, "2006-05", [picture], None, {"0-d": SHA}))
    assert f'href="../../media/0f/{SHA}"' in archive.entries[0].content[0].value
    everything = feedparser.parse(feeds.all_feed([picture], {"0-d": SHA}))
    assert f'href="../media/0f/{SHA}"' in everything.entries[0].content[0].value
    # Without the store's file for it (unknown docid, or known without content): marked.
    for media in ({}, {"other": SHA}):
        page = PageRenderer().month_page(CHAT_ROW, "2006-05", [picture], None, None, media)
        assert '<span class="mark">(file not archived)</span>' in page
        assert "media/0f" not in page


def test_member_events_show_as_the_export_shows_its_thread_activity():
    """A Desktop API or main.db member event has an empty body and names its people in
    USERS; the export's ThreadActivity writes them as markup. Both read the same."""
    cases = [
        (
            message("a1", "", type="ADDEDMEMBERS", author="alice", users=("bob", "cecil")),
            "<addmember><initiator>8:alice</initiator><target>8:bob</target>"
            "<target>8:cecil</target></addmember>",
            "<bdi>alice</bdi> added <bdi>bob</bdi>, <bdi>cecil</bdi>",
            "alice added bob, cecil",
        ),
        (
            message("a2", "", type="LEFT", author="bob", users=()),
            "<deletemember><initiator>8:bob</initiator><target>8:bob</target></deletemember>",
            "<bdi>bob</bdi> left",
            "bob left",
        ),
        (
            message("a3", "", type="KICKED", author="alice", users=("dave",)),
            "<deletemember><initiator>8:alice</initiator><target>8:dave</target></deletemember>",
            "<bdi>alice</bdi> removed <bdi>dave</bdi>",
            "alice removed dave",
        ),
        (
            message("a4", "", type="SETROLE", author="alice", users=("bob",)),
            None,
            "<bdi>alice</bdi> changed the role of <bdi>bob</bdi>",
            "alice changed the role of bob",
        ),
        (
            # The Desktop API's SETTOPIC: the new topic is the body.
            message("a5", "plans &amp; dates", type="SETTOPIC", author="alice"),
            "<topicupdate><eventtime>1</eventtime><initiator>8:alice</initiator>"
            "<value>plans &amp; dates</value></topicupdate>",
            "<bdi>alice</bdi> set the topic to “plans &amp; dates”",
            "alice set the topic to “plans & dates”",
        ),
    ]
    renderer = PageRenderer()
    unnamed = Chat(CHAT, "", ())  # nobody's display name known: handles
    for event, export_markup, shown, line in cases:
        page = renderer.month_page(unnamed, "2006-05", [event], None, None)
        expected = f'<div class="body" dir="auto"><span class="event">{shown}</span></div>'
        assert expected in page, page
        if export_markup is not None:
            exported = message("x", export_markup, type=event.type)
            assert expected in renderer.month_page(unnamed, "2006-05", [exported], None, None)
        entry = feedparser.parse(feeds.chat_feed(CHAT, [event], "2006-05")).entries[0]
        assert entry.title == f"Alice: {line}"
        # feedparser's sanitiser drops the <bdi>s.
        assert f'<span class="event">{escape(line, quote=False)}</span>' in entry.content[0].value
    # Where the chat knows its people's display names, the page names them so.
    added = cases[0][0]
    page = renderer.month_page(CHAT_ROW, "2006-05", [added], None, None)
    assert '<span class="event"><bdi>Alice</bdi> added <bdi>Bob</bdi>, <bdi>cecil</bdi>' in page
