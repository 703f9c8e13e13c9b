"""A body's format travels from the observation to the rows and pages: a Desktop API body is
text (a `<` is a character), a main.db or export body is Skype's XML, and copies of one message
in the two formats are one message."""

from __future__ import annotations

import feedparser

from chatchannels.processors.canonical import build_messages
from chatchannels.processors.engine import Applied, Engine
from chatchannels.processors.matching import cluster_messages
from chatchannels.processors.observations import BodySighting, HostMessage
from chatchannels.processors.richtext import SKYPE_XML, TEXT
from chatchannels.processors.rows import message_row, revision_rows
from chatchannels.processors.snapshots import dump_value, load_value
from chatchannels.publishers import feeds
from chatchannels.publishers.model import Chat, Message, Revision
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.search_index import SearchDocument
from tests.support.processor_events import CHAT, T0, Host

CODE = "if (a<b && c>d) { return x >> 2; } <3 <b>not bold</b> &amp;"
CODE_XML = (
    "if (a&lt;b &amp;&amp; c&gt;d) { return x &gt;&gt; 2; } &lt;3 &lt;b&gt;not bold&lt;/b&gt;"
    " &amp;amp;"
)


def published(engine: Engine) -> list[Message]:
    """The publishers' view of the engine's messages, through the store's row layout."""
    out = []
    for m in engine.canonical_messages():
        revisions = tuple(Revision(*row[1:]) for row in revision_rows(m))
        out.append(Message(*message_row(m), revisions=revisions))
    return out


def test_a_code_snippet_from_a_desktop_is_kept_exactly_everywhere() -> None:
    a = Host("a")
    a.read("1", posted=T0, body=CODE)
    engine = Engine()
    for event, broker_utc in a.records:
        assert isinstance(engine.apply(event, broker_utc), Applied)
    [message] = published(engine)
    assert message.body == CODE  # what search indexes
    assert message.body_markup == CODE_XML
    assert SearchDocument.of(message).body == CODE
    feed = feedparser.parse(feeds.chat_feed(CHAT, [message], None))
    [entry] = feed.entries
    assert entry.title == f"Bob: {CODE}"
    escaped_once = CODE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert entry.content[0].value == f"<div>{escaped_once}</div>"
    page = PageRenderer().month_page(Chat(CHAT, "", ()), "2023-11", [message], None, None)
    assert f'<div class="body" dir="auto">{escaped_once}</div>' in page
    assert "<b>not bold</b>" not in page


def sighting(body: str, body_format: str, seq: int, edited: int = 0, by: str | None = None):
    return BodySighting(body, edited, by, seq, 0.0, 0, body_format)


def host_message(host: str, at: int, *sightings: BodySighting) -> HostMessage:
    return HostMessage(
        host=host,
        local_id="7",
        last_seq=len(sightings),
        chat=CHAT,
        author="bob",
        type="SAID",
        timestamp=T0 + at,
        skew_s=0.0,
        epoch=0,
        sightings=sightings,
    )


def test_a_live_copy_and_a_main_db_copy_are_one_message_with_the_richer_body() -> None:
    live = host_message("agent", 0, sighting("Tom & Jerry <3 :)", TEXT, 1))
    maindb = host_message(
        "file-1", 1, sighting('Tom &amp; Jerry &lt;3 <ss type="smile">:)</ss>', SKYPE_XML, 1)
    )
    for order in ([live, maindb], [maindb, live]):
        [message] = build_messages(cluster_messages(order))
        assert [o.host for o in message.observations] == ["agent", "file-1"]
        assert message.body_format == SKYPE_XML
        assert message.body == 'Tom &amp; Jerry &lt;3 <ss type="smile">:)</ss>'
        [revision] = message.revisions
        assert revision.hosts == ("agent", "file-1") and revision.body_format == SKYPE_XML
        row = dict(zip(("body", "body_markup"), message_row(message)[6:8], strict=True))
        assert row == {"body": "Tom & Jerry <3 :)", "body_markup": message.body}


def test_an_edit_read_in_both_formats_is_one_revision() -> None:
    live = host_message(
        "agent",
        0,
        sighting("v1 <", TEXT, 1),
        sighting("v2 & more", TEXT, 2, edited=T0 + 30, by="bob"),
    )
    export = host_message(
        "file-2",
        0,
        sighting("v1 &lt;", SKYPE_XML, 1),
        sighting("<b>v2</b> &amp; more", SKYPE_XML, 2, edited=T0 + 31, by="bob"),
    )
    [message] = build_messages(cluster_messages([live, export]))
    assert [(r.kind, r.body, r.body_format, r.hosts) for r in message.revisions] == [
        ("original", "v1 &lt;", SKYPE_XML, ("agent", "file-2")),
        ("edit", "<b>v2</b> &amp; more", SKYPE_XML, ("agent", "file-2")),
    ]
    assert [row[2] for row in revision_rows(message)] == ["v1 &lt;", "<b>v2</b> &amp; more"]


def test_text_revisions_are_stored_as_skype_xml() -> None:
    live = host_message(
        "agent", 0, sighting("a<b", TEXT, 1), sighting("", TEXT, 2, edited=T0 + 5, by="bob")
    )
    [message] = build_messages(cluster_messages([live]))
    assert message.deleted and message_row(message)[6:8] == ("", "")
    assert [row[2] for row in revision_rows(message)] == ["a&lt;b", ""]


def test_snapshots_keep_the_format_and_old_ones_load_as_text() -> None:
    message = host_message("file-1", 0, sighting("<b>x</b>", SKYPE_XML, 1))
    assert load_value(HostMessage, dump_value(message)) == message
    old = dump_value(host_message("agent", 0, sighting("<b>x</b>", TEXT, 1))).replace(
        ',"body_format":"text"', ""
    )
    assert "body_format" not in old
    assert load_value(HostMessage, old).sightings[0].body_format == TEXT
    [canonical] = build_messages(cluster_messages([message]))
    assert load_value(type(canonical), dump_value(canonical)) == canonical
