"""Skype markup to HTML: Skype's tags keep their meaning, everything else is text."""

from __future__ import annotations

from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors import richtext as rt
from chatchannels.publishers.markup import (
    Context,
    clean_text,
    markup_to_text,
    media_path,
    render_in,
    render_markup,
    safe_href,
    to_html,
)

ALLOWED = {
    "b": set(),
    "i": set(),
    "s": set(),
    "pre": set(),
    "span": {"class", "title"},
    "blockquote": {"class"},
    "cite": set(),
    "bdi": set(),
    "a": {"href", "rel", "class"},
}


class _Elements(HTMLParser):
    """What a browser's tokenizer would make of the output: tags and attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data):
        self.comments.append(data)


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("<b>bold</b> <i>it</i> <s>gone</s>", "<b>bold</b> <i>it</i> <s>gone</s>"),
        (
            '<ss type="smile">:)</ss>',
            '<span class="emoticon emoji" title="smile" role="img" aria-label="smile">'
            "\U0001f642</span>",
        ),
        ('<ss type="nosuch">(x)</ss>', '<span class="emoticon" title="nosuch">(x)</span>'),
        ("&apos;q&apos; &amp; &lt;b&gt;", "&#x27;q&#x27; &amp; &lt;b&gt;"),
        (
            '<a href="https://example.org/a?b=1&amp;c=2">site</a>',
            '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">'
            "site</a>",
        ),
        ('<a href="javascript:alert(1)">x</a>', '<span class="link">x</span>'),
        ('<a href=" JaVa\tScRiPt:alert(1)">x</a>', '<span class="link">x</span>'),
        ('<at id="8:live:bob">Bob</at>', '<span class="mention">@Bob</span>'),
        (
            '<quote authorname="Bob" timestamp="1"><legacyquote>[1] Bob: </legacyquote>old'
            "<legacyquote>\n\n&lt;&lt;&lt; </legacyquote></quote>new",
            '<blockquote class="quote"><cite><bdi>Bob</bdi>, <time datetime="1970-01-01T00:00:01Z"'
            ' title="1970-01-01 00:00:01 UTC">1970-01-01 00:00</time></cite> old</blockquote>new',
        ),
        ('text<e_m ts="1" a="bob" t="61"/>', "text"),
        (
            '<flag country="ee" alt="EE">ee</flag>',
            '<span class="emoji" title="EE" role="img" aria-label="EE">\U0001f1ea\U0001f1ea</span>',
        ),
        ('<flag country="x1" alt="X1">x1</flag>', "X1"),
        # A tag Skype wrote but we do not know shows its text (the SkypeKit rule); a tag a
        # person typed reaches us escaped, and shows as typed.
        ("<script>alert(1)</script>", "alert(1)"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<x>never closed", "&lt;x&gt;never closed"),
        ('<img src=x onerror="alert(1)">', "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"),
        ("<b>never closed", "<b>never closed</b>"),
        ("<b><i>crossed</b></i>", "<b><i>crossed</i></b>&lt;/i&gt;"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("nul\x00here", "nul\ufffdhere"),
    ],
)
def test_rendering(source, html):
    assert render_markup(source) == html


def test_plain_text_for_titles():
    assert markup_to_text('<b>hi</b> <ss type="smile">:)</ss> &amp; <x>') == "hi :) & <x>"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://a.b/", True),
        ("mailto:a@b", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>", False),
        ("vbscript:x", False),
        ("jav&#x09;ascript:x", False),
        ("//evil.example/x", False),
        ("relative/path", False),
        ("http://[::1", False),
    ],
)
def test_safe_href(url, safe):
    assert (safe_href(url) is not None) is safe


skype_like = st.lists(
    st.one_of(
        st.text(),
        st.sampled_from(
            [
                "<b>",
                "</b>",
                "<i>",
                "</i>",
                "<a href='javascript:x'>",
                '<a href="https://x">',
                "</a>",
                "<ss type='\"><script>'>",
                "</ss>",
                "<quote authorname='<b>'>",
                "</quote>",
                "<legacyquote>",
                "</legacyquote>",
                "<script>",
                "</script>",
                "<style>",
                "<!--",
                "-->",
                "&amp;",
                "&lt;",
                "&#0;",
                "<pre>",
                "<e_m/>",
                "<svg onload=x>",
                "<![CDATA[",
                "<URIObject alt='x'>",
                "</URIObject>",
                '<URIObject doc_id="d1" type="Picture.1"><OriginalName v="<i onload=x>"/>',
                '<partlist type="ended"><part identity="8:<b>"><name>',
                "</name><duration>",
                "</duration></part></partlist>",
                '<files><file size="12">',
                "</file></files>",
                "<addmember><initiator>",
                "</initiator><target>",
                "</target></addmember>",
                '<sms alt="&lt;script&gt;">',
                '<contacts><c s="x" f="<svg onload=y>"/></contacts>',
                '[{"card": "<script>"}]',
                "\u202e",
            ]
        ),
    ),
    max_size=20,
).map("".join)


@given(skype_like)
def test_output_holds_only_allowed_elements_and_attributes(source):
    html = render_markup(source, {"d1": "ab" * 32})
    parsed = elements(html)
    assert not parsed.comments
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED, (source, html)
        assert set(attrs) <= ALLOWED[tag], (source, html)
        if tag == "a":
            assert safe_href(attrs["href"]) is not None or attrs["href"] == media_path("ab" * 32)
    assert "<script" not in html.lower() and "<style" not in html.lower()
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)


@given(st.text())
def test_clean_text_is_always_accepted_by_lxml(text):
    from lxml import etree

    element = etree.Element("x")
    element.text = clean_text(text)  # lxml raises on characters XML cannot carry
    assert etree.tostring(element)


@pytest.mark.parametrize(
    ("body", "contexts"),
    [
        (
            '<b>see</b> <URIObject doc_id="d1" type="Picture.1"><OriginalName v="a.png"/>'
            "</URIObject>",
            [Context(), Context({"d1": "a" * 64}, "../../", thumbs={"a" * 64})],
        ),
        (
            "<addmember><initiator>8:alice</initiator><target>8:bob</target></addmember>",
            [Context(), Context(names={"bob": "Bob Builder"})],
        ),
        (
            '<quote authorname="Bob" timestamp="1146484800">old</quote> new',
            [Context(), Context(zone=ZoneInfo("Asia/Tokyo"))],
        ),
    ],
)
def test_a_body_renders_in_each_context_it_is_rendered_in(body, contexts):
    """Bodies are cached between renderings; those whose HTML depends on the context
    (files, people, a quote's time) render in each context as in the first."""
    fresh = [to_html(rt.parse(body, rt.SKYPE_XML), c) for c in contexts]
    assert len(set(fresh)) == len(contexts)
    for _ in range(2):
        assert [render_in(body, c) for c in contexts] == fresh
