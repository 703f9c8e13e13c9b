"""Skype's message markup to safe HTML, and text made safe for XML and HTML.

Skype writes bodies as an XML-like fragment (spec: skype-history-formats.md 1.8): `<b>`, `<i>`,
`<s>`, `<pre>`, emoticons `<ss type="smile">:)</ss>`, links `<a href>`, mentions `<at>`, quotes
with `<legacyquote>` decoration, edit markers `<e_m/>`, media `<URIObject>`, and entities. We
keep the meaning of exactly those tags, rebuilt from scratch (never copied through), and render
everything else as the text it is: a `<script>` a person typed shows as `<script>`. Skype
itself escapes typed angle brackets, so an unknown tag is always something a person typed or
a plain-text body from the Desktop API (whose BODY is plain text).

Pure: no I/O. Every function returns text that is safe in its stated context.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

# Characters XML 1.0 forbids (lxml refuses them) and lone surrogates; shown as U+FFFD.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Tags whose markup we keep, as the HTML element that carries their meaning.
FORMATTING = {"b": "b", "i": "i", "s": "s", "pre": "pre"}
# Skype's own tags whose content is decoration or metadata, dropped with their content.
DROPPED_WITH_CONTENT = frozenset({"legacyquote", "e_m", "originalname", "filesize", "meta"})
# Skype's own tags rendered as their text (the SkypeKit rule: `alt` if present, else text).
AS_TEXT = frozenset(
    {
        "flag",
        "uriobject",
        "partlist",
        "part",
        "name",
        "duration",
        "files",
        "file",
        "location",
        "topicxml",
    }
)
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "ftp"})
VOID = frozenset({"e_m", "originalname", "filesize", "meta"})


def clean_text(text: str) -> str:
    """Text with the characters XML cannot carry replaced, so every page and feed is valid."""
    return XML_INVALID.sub("\ufffd", text)


def escape_text(text: str) -> str:
    """Text escaped for HTML/XML element content and quoted attribute values."""
    return escape(clean_text(text), quote=True)


def safe_href(url: str) -> str | None:
    """The URL if following it cannot run anything (http, https, mailto, ftp), else None."""
    url = clean_text(url).strip()
    # Browsers ignore tabs and newlines inside a scheme (`java\tscript:`); so must we.
    squeezed = re.sub(r"[\x00-\x20]", "", url)
    try:
        scheme = urlsplit(squeezed).scheme.lower()
    except ValueError:
        return None
    return url if scheme in SAFE_SCHEMES else None


class _SkypeMarkup(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.out: list[str] = []
        self.open: list[tuple[str, str]] = []  # (tag, closing HTML) of open known tags
        # While dropping a tag's content: that tag and how deeply it is nested in itself.
        self.drop_tag = ""
        self.drop_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs), self_closing=tag in VOID)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs), self_closing=True)

    def _drop_until_end_of(self, tag: str) -> None:
        self.drop_tag, self.drop_depth = tag, 1

    def _start(self, tag: str, attrs: dict[str, str | None], self_closing: bool) -> None:
        if self.drop_depth:
            if tag == self.drop_tag and not self_closing:
                self.drop_depth += 1
            return
        if tag in DROPPED_WITH_CONTENT:
            if not self_closing:
                self._drop_until_end_of(tag)
            return
        if tag in AS_TEXT:
            alt = attrs.get("alt")
            if alt:
                self.out.append(escape_text(alt))
                if not self_closing:
                    self._drop_until_end_of(tag)
            return
        html = self._open_html(tag, attrs)
        if html is None:
            self.out.append(escape_text(self.get_starttag_text() or ""))
            return
        opening, closing = html
        self.out.append(opening)
        if self_closing:
            self.out.append(closing)
        else:
            self.open.append((tag, closing))

    def _open_html(self, tag: str, attrs: dict[str, str | None]) -> tuple[str, str] | None:
        if tag in FORMATTING:
            name = FORMATTING[tag]
            return f"<{name}>", f"</{name}>"
        if tag == "ss":
            kind = escape_text(attrs.get("type") or "")
            return f'<span class="emoticon" title="{kind}">', "</span>"
        if tag == "at":
            return '<span class="mention">@', "</span>"
        if tag == "quote":
            who = attrs.get("authorname") or attrs.get("author") or ""
            cite = f"<cite><bdi>{escape_text(who)}</bdi></cite> " if who else ""
            return f'<blockquote class="quote">{cite}', "</blockquote>"
        if tag == "a":
            href = safe_href(attrs.get("href") or "")
            if href is None:
                return '<span class="link">', "</span>"
            return f'<a href="{escape_text(href)}" rel="nofollow noopener noreferrer">', "</a>"
        return None

    def handle_endtag(self, tag: str) -> None:
        if self.drop_depth:
            if tag == self.drop_tag:
                self.drop_depth -= 1
            return
        if any(opened == tag for opened, _ in self.open):
            # Close everything opened since: Skype's fragments are not always well nested.
            while self.open:
                opened, closing = self.open.pop()
                self.out.append(closing)
                if opened == tag:
                    break
            return
        if tag in DROPPED_WITH_CONTENT or tag in AS_TEXT:
            return
        self.out.append(escape_text(f"</{tag}>"))

    def handle_data(self, data: str) -> None:
        if not self.drop_depth:
            self.out.append(escape_text(data))

    def handle_comment(self, data: str) -> None:
        if not self.drop_depth:
            self.out.append(escape_text(f"<!--{data}-->"))

    def handle_decl(self, decl: str) -> None:
        self.out.append(escape_text(f"<!{decl}>"))

    def handle_pi(self, data: str) -> None:
        self.out.append(escape_text(f"<?{data}>"))

    def unknown_decl(self, data: str) -> None:
        self.out.append(escape_text(f"<![{data}]>"))

    def render(self) -> str:
        self.feed(self.source)
        self.close()
        self.out.extend(closing for _, closing in reversed(self.open))
        return "".join(self.out)


def render_markup(body_markup: str) -> str:
    """Skype markup as HTML that can only format text and link to http(s)/mailto/ftp."""
    return _SkypeMarkup(clean_text(body_markup)).render()


def markup_to_text(body_markup: str) -> str:
    """The plain text a reader sees, for titles and summaries (not escaped)."""
    rendered = render_markup(body_markup)
    parser = _TextOnly()
    parser.feed(rendered)
    parser.close()
    return "".join(parser.parts)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
