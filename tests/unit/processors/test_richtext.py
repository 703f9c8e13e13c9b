"""Bodies as a typed content model: a Desktop API body is text, every character itself; Skype's
XML (main.db, the export) parses into typed nodes; both give the text a reader sees."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors import richtext as rt
from chatchannels.processors.content import content_key
from chatchannels.publishers.markup import render_markup, to_html

CODE = "if (a<b && c>d) { x = y >> 2; } // <3 & <b>bold</b>"

PICTURE = (
    '<URIObject uri="https://api.asm.skype.com/v1/objects/0-weu-d1-abc" url_thumbnail='
    '"https://api.asm.skype.com/v1/objects/0-weu-d1-abc/views/imgt1_anim" type="Picture.1" '
    'doc_id="0-weu-d1-abc" width="640" height="480">Para exibir esta foto, acesse '
    '<a href="https://login.skype.com/login/sso?go=xmmfallback?pic=0-weu-d1-abc">'
    "https://login.skype.com/login/sso?go=xmmfallback?pic=0-weu-d1-abc</a>"
    '<OriginalName v="holiday &amp; beach.png"/><FileSize v="108188"/>'
    '<meta type="photo" originalName="holiday &amp; beach.png"/></URIObject>'
)
CALL = (
    '<partlist type="ended" alt="" callId="1550000000123"><part identity="8:bob">'
    '<name>Bob</name><duration>84.82</duration></part><part identity="8:live:alice">'
    "<name>Alice</name><duration>83.1</duration></part></partlist>"
)
SMS = (
    '<sms alt="call me &amp; soon"><type>2</type><status>6</status><targets>'
    '<target status="6">+34123456789</target></targets><body><chunk id="0">call me &amp; soon'
    "</chunk></body><encoded_body>call me &amp; soon</encoded_body></sms>"
)


def xml(body: str) -> tuple[rt.Node, ...]:
    return rt.parse(body, rt.SKYPE_XML)


def test_a_text_body_is_one_run_of_its_characters() -> None:
    assert rt.parse(CODE) == (rt.Text(CODE),)
    assert rt.parse("") == ()
    assert rt.body_text(CODE) == CODE


@pytest.mark.parametrize(
    ("body", "text"),
    [
        # Markup dropped, entities decoded: what the Desktop API's BODY holds (spec 3).
        (
            "Tom &amp; Jerry &lt;3 &quot;x&quot; &apos;y&apos; &#39;z&#39;",
            "Tom & Jerry <3 \"x\" 'y' 'z'",
        ),
        ("<b>bold</b> <i>it</i> <s>s</s> <pre>p</pre>", "bold it s p"),
        ('exactly <ss type="smile">:)</ss>', "exactly :)"),
        (
            '<a href="https://x.org/?a=1&amp;b=2">https://x.org/?a=1&amp;b=2</a>',
            "https://x.org/?a=1&b=2",
        ),
        ('<at id="8:live:bob">Bob</at>, look', "Bob, look"),
        ('<flag country="ee" alt="EE">ee</flag>', "EE"),
        ('edited<e_m ts="1526383416" ts_ms="1526383417250" a="bob" t="61"/>', "edited"),
        # A quote is its text without the legacy decoration, and a block: the reply is a new line.
        (
            '<quote author="bob" authorname="Bob" timestamp="1600529710" conversation="8:bob"'
            ' messageid="1600529710240"><legacyquote>[1600529710] Bob: </legacyquote>the question'
            "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>the answer",
            "the question\nthe answer",
        ),
        ('<quote author="bob">q</quote>\nreply', "q\nreply"),
        (PICTURE, "holiday & beach.png"),
        (CALL, "Call ended, 1:25"),
        (
            '<partlist type="started" alt="" callId="1"><part identity="8:bob"/></partlist>',
            "Call started",
        ),
        ('<partlist type="missed" callId="1"></partlist>', "Call missed"),
        (
            '<files alt="sent"><file size="12" index="0">a.txt</file>'
            '<file size="3" index="1">b</file></files>',
            "a.txt, b",
        ),
        ('<contacts><c t="s" s="bob" f="Bob B"/><c t="s" s="carol"/></contacts>', "Bob B, carol"),
        (
            '<location latitude="59437000" longitude="24745000" address="Tallinn"></location>',
            "Tallinn",
        ),
        (SMS, "call me & soon"),
        # System events: a topic change's text is the topic (SETTOPIC's BODY); member changes
        # have none (USERS says who).
        (
            "<topicupdate><eventtime>1</eventtime><initiator>8:a</initiator>"
            "<value>Q3 &amp; more</value></topicupdate>",
            "Q3 & more",
        ),
        (
            "<addmember><eventtime>1</eventtime><initiator>8:a</initiator><target>8:b</target></addmember>",
            "",
        ),
        (
            '[{"cards":[{"content":{"title":"Welcome"}}]}]',
            '[{"cards":[{"content":{"title":"Welcome"}}]}]',
        ),
        # Tolerance: what is not a well-formed tag is text; an unknown tag never closed is text;
        # a balanced unknown element is its text, or its alt.
        ("a < b > c, <3, x<y", "a < b > c, <3, x<y"),
        ("if (a<b && c>d)", "if (a<b && c>d)"),
        ('<img src=x onerror="alert(1)">', '<img src=x onerror="alert(1)">'),
        ("<x>never closed", "<x>never closed"),
        ('<font size="2">small</font>', "small"),
        ('<thing alt="shown">hidden</thing>', "shown"),
        ("<b>open", "open"),
        ("stray</b>", "stray</b>"),
        ("&notanentity; &amp &para &#128512;", "&notanentity; &amp &para \U0001f600"),
    ],
)
def test_plain_text_of_skype_xml(body: str, text: str) -> None:
    assert rt.body_text(body, rt.SKYPE_XML) == text


def test_the_kinds_parse_into_typed_nodes() -> None:
    assert xml(PICTURE) == (
        rt.Media(
            "Picture.1",
            "https://api.asm.skype.com/v1/objects/0-weu-d1-abc",
            "0-weu-d1-abc",
            "https://api.asm.skype.com/v1/objects/0-weu-d1-abc/views/imgt1_anim",
            "holiday & beach.png",
            108188,
        ),
    )
    assert xml(CALL) == (
        rt.Call(
            "ended",
            "1550000000123",
            (rt.CallPart("8:bob", "Bob", 84.82), rt.CallPart("8:live:alice", "Alice", 83.1)),
        ),
    )
    assert xml(SMS) == (rt.Sms("call me & soon", ("+34123456789",)),)
    assert xml(
        "<roleupdate><eventtime>1</eventtime><initiator>8:a</initiator>"
        "<target><id>8:b</id><role>Admin</role></target></roleupdate>"
    ) == (rt.SystemEvent("roleupdate", "8:a", ("8:b",), "Admin"),)
    assert xml('<quote author="bob" guid="x1">q</quote>') == (
        rt.Quote("bob", "", "", "", "x1", (rt.Text("q"),)),
    )


def test_the_model_is_deterministic_and_hashable() -> None:
    body = f"{PICTURE}{CALL}<b>x</b>"
    assert xml(body) == xml(body) and hash(xml(body)) == hash(xml(body))


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError):
        rt.parse("x", "html")


def test_nesting_deeper_than_any_client_writes_stays_text() -> None:
    deep = "<b>" * 10_000 + "x" + "</b>" * 10_000
    assert "x" in rt.body_text(deep, rt.SKYPE_XML)


@given(st.text())
def test_parsing_any_text_never_raises(body: str) -> None:
    for body_format in rt.FORMATS:
        rt.plain_text(rt.parse(body, body_format))


@given(st.text())
def test_text_escaped_as_skype_stores_it_parses_back_to_itself(text: str) -> None:
    assert rt.body_text(rt.escape_xml(text), rt.SKYPE_XML) == text
    assert rt.plain_text(rt.parse(text)) == text


class _Attributes(HTMLParser):
    """Every attribute name in the tags of some HTML, as a browser's tokenizer finds them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.extend(name for name, _ in attrs)


@given(st.text(alphabet=st.sampled_from(list("<>&;=\"' /abcefilnorstxz:#0123456789"))))
def test_html_of_any_body_has_no_script_and_no_event_handler(body: str) -> None:
    for body_format in rt.FORMATS:
        html = to_html(rt.parse(body, body_format), {"d": "ab" * 32})
        attributes = _Attributes()
        attributes.feed(html)
        assert "<script" not in html.lower()
        assert not [n for n in attributes.names if n.startswith("on")], html


def test_kinds_render_as_what_they_are() -> None:
    assert render_markup(CALL) == (
        '<span class="call">Call ended, 1:25 (<bdi>Bob</bdi>, <bdi>Alice</bdi>)</span>'
    )
    assert render_markup('<files><file size="2048" index="0">a&amp;b.txt</file></files>') == (
        '<span class="files">Files: <bdi>a&amp;b.txt</bdi> (2.0 KB)</span>'
    )
    # The store does not map media to archived files yet: shown as missing, with its name.
    assert render_markup(PICTURE) == (
        '<span class="media missing"><bdi>holiday &amp; beach.png</bdi>'
        ' <span class="facts">(PNG picture, 105.7 KB)</span>'
        ' <span class="mark">(file not archived)</span></span>'
    )
    sha = "0f" * 32
    assert render_markup(PICTURE, {"0-weu-d1-abc": sha}) == (
        f'<a class="media" href="/media/0f/{sha}" rel="nofollow noopener noreferrer">'
        '<bdi>holiday &amp; beach.png</bdi> <span class="facts">(PNG picture, 105.7 KB)</span></a>'
    )
    events = {
        "<addmember><initiator>8:a</initiator><target>8:b</target><target>8:live:c</target>"
        "</addmember>": "<bdi>a</bdi> added <bdi>b</bdi>, <bdi>live:c</bdi>",
        "<deletemember><initiator>8:a</initiator><target>8:a</target></deletemember>": (
            "<bdi>a</bdi> left"
        ),
        "<deletemember><initiator>8:a</initiator><target>8:b</target></deletemember>": (
            "<bdi>a</bdi> removed <bdi>b</bdi>"
        ),
        "<topicupdate><initiator>8:a</initiator><value>&lt;Q3&gt;</value></topicupdate>": (
            "<bdi>a</bdi> set the topic to “&lt;Q3&gt;”"
        ),
        "<pictureupdate><initiator>28:bot</initiator><value>URL@x</value></pictureupdate>": (
            "<bdi>28:bot</bdi> changed the chat's picture"
        ),
        "<joiningenabledupdate><value>true</value></joiningenabledupdate>": (
            "Someone: joiningenabledupdate true"
        ),
    }
    for body, line in events.items():
        assert render_markup(body) == f'<span class="event">{line}</span>'
    assert (
        render_markup(SMS)
        == '<span class="sms">SMS to <bdi>+34123456789</bdi>: call me &amp; soon</span>'
    )
    assert render_markup('<contacts><c s="bob" f="Bob B"/></contacts>') == (
        '<span class="contacts">Contacts: <bdi>Bob B</bdi> (bob)</span>'
    )
    assert render_markup('[{"t": "<b>"}]') == (
        '<span class="card" title="card">[{&quot;t&quot;: &quot;&lt;b&gt;&quot;}]</span>'
    )


# Digests content_key gave before bodies had formats: a Desktop API body's key must not change,
# or every canonical id would.
KEYS_BEFORE_FORMATS = [
    (("SAID", "if (a<b && c>d)", ()), "b28b702128aecaca97d61bcd"),
    (("SAID", "Tom &amp; Jerry <3", ()), "af24c1c704e9b81ea9dba69d"),
    (("ADDEDMEMBERS", "", ("Bob", "carol")), "e52b47ef7ba320c565593364"),
    (("SAID", "hi\r\nthere  \n", ()), "71d320eb75a5a01782a61301"),
    ((None, "<b>bold</b>", ()), "0321c0ec82973889d4eb1db5"),
]


@pytest.mark.parametrize(("args", "digest"), KEYS_BEFORE_FORMATS)
def test_content_keys_of_text_bodies_are_unchanged(args, digest) -> None:
    assert content_key(*args) == digest
    assert content_key(*args, body_format=rt.TEXT) == digest


def test_a_skype_xml_copy_has_the_key_of_the_desktop_text() -> None:
    assert content_key("SAID", "if (a&lt;b &amp;&amp; c&gt;d)", (), rt.SKYPE_XML) == (
        "b28b702128aecaca97d61bcd"
    )
    assert content_key("SAID", 'hi <ss type="smile">:)</ss>', (), rt.SKYPE_XML) == content_key(
        "SAID", "hi :)"
    )
    assert content_key("SAID", "<b>bold</b>", (), rt.SKYPE_XML) != content_key(
        "SAID", "<b>bold</b>"
    )
