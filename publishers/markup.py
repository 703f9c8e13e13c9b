"""Message bodies to safe HTML, and text made safe for XML and HTML.

A stored body (`body_markup`) is Skype's XML (processors/rows.py escapes a Desktop API body
into it), parsed into the typed model of processors/richtext.py; this module only renders that
model. The HTML is rebuilt from the nodes, never copied through: formatting, links to
http(s)/mailto/ftp, quotes, mentions, emoticons, and each kind of content (calls, files,
media, contacts, system events) as a compact line of text. Text is escaped once; a `<b>`
typed on a desktop arrives as `&lt;b&gt;` and shows as `<b>`.

Pure: no I/O. Every function returns text that is safe in its stated context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from html import escape
from urllib.parse import urlsplit

from chatchannels.processors import richtext as rt
from chatchannels.publishers.model import Message

# Characters XML 1.0 forbids (lxml refuses them) and lone surrogates; shown as U+FFFD.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "ftp"})
SHA256 = re.compile("[0-9a-f]{64}")
LINK_REL = "nofollow noopener noreferrer"


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


@dataclass(frozen=True)
class Context:
    """What rendering a body needs besides the body: the archived files it may show
    (`media`: doc_id -> sha256; `thumbs`: the sha256s the site has a thumbnail of), the way
    from the page to the site's root (`root`, "../../" for a month page), the zone times
    are shown in, and the display names people are shown by in event lines (handle ->
    name; a handle without one shows as itself)."""

    media: Mapping[str, str] = field(default_factory=dict)
    root: str = "/"
    zone: tzinfo = UTC
    thumbs: Collection[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)


def render_markup(body_markup: str, media: Mapping[str, str] | None = None, root: str = "/") -> str:
    """A stored body (Skype's XML) as HTML that can only format text and link to
    http(s)/mailto/ftp and to archived media, under `root` (see Context)."""
    return render_in(body_markup, Context(media or {}, root))


def render_in(body_markup: str, context: Context) -> str:
    shared = _html_without_context(body_markup)
    return to_html(parse(body_markup), context) if shared is None else shared


# What a body's HTML may depend on besides the body: the files it shows, the people an
# event names, the zone a quote's time is told in.
_CONTEXTUAL = (rt.Media, rt.SystemEvent, rt.Quote)


@lru_cache(maxsize=1 << 14)
def _html_without_context(body_markup: str) -> str | None:
    """The body's HTML when no Context changes it, else None. Cached with parse: a month
    page and its archive feed render the same bodies in different contexts."""
    nodes = parse(body_markup)
    if any(isinstance(node, _CONTEXTUAL) for node in _walk(nodes)):
        return None
    return to_html(nodes, Context())


def _walk(nodes: tuple[rt.Node, ...]) -> Iterator[rt.Node]:
    for node in nodes:
        yield node
        if isinstance(node, rt.WithChildren):
            yield from _walk(node.children)


@lru_cache(maxsize=1 << 14)
def parse(body_markup: str) -> tuple[rt.Node, ...]:
    """A stored body's nodes (immutable). Cached: the site renders each month's bodies for
    its page and again for its archive feed, and parsing was half of rendering them."""
    return rt.parse(body_markup, rt.SKYPE_XML)


def markup_to_text(body_markup: str) -> str:
    """The plain text a reader sees, for titles and summaries (not escaped)."""
    return rt.body_text(body_markup, rt.SKYPE_XML)


def to_html(nodes: tuple[rt.Node, ...], context: Context) -> str:
    return "".join(_html(node, context) for node in nodes)


def media_path(sha256: str, root: str = "/") -> str:
    """Where the site shows an archived file: its `media` folder is a link to the archive."""
    return f"{root}media/{sha256[:2]}/{sha256}"


def thumbnail_path(sha256: str) -> str:
    """Where the site keeps the thumbnail of an archived picture (thumbnails.py makes it),
    relative to the site's root."""
    return f"thumbs/{sha256[:2]}/{sha256}.jpg"


# Message types whose body is empty and whose USERS say whom they are about, as the
# export's ThreadActivity nodes they correspond to.
MEMBER_EVENTS = {
    "ADDEDMEMBERS": "addmember",
    "LEFT": "deletemember",
    "KICKED": "deletemember",
    "SETROLE": "roleupdate",
}
# The other kinds that are something that happened to the chat rather than something said,
# as the event kind their line is written from; the body (a Desktop API SETTOPIC's new
# topic) is the event's value.
CHAT_EVENTS = {
    "SETTOPIC": "topicupdate",
    "SETPICTURE": "pictureupdate",
    "SETGUIDELINES": "guidelinesupdate",
    "SETOPTIONS": "optionsupdate",
    "KICKBANNED": "kickbanned",
    "CREATEDCHATWITH": "createdchatwith",
    "JOINEDASAPPLICANT": "joinedasapplicant",
    "GAP_IN_CHAT": "gap",
}
# What month pages show as compact system lines: the events above, and calls.
SYSTEM_TYPES = frozenset({*MEMBER_EVENTS, *CHAT_EVENTS, "CALL"})


def member_event(msg_type: str, author: str, users: tuple[str, ...]) -> rt.SystemEvent | None:
    """A member event as the system-event node an export writes for it, so both show alike."""
    kind = MEMBER_EVENTS.get(msg_type)
    if kind is None:
        return None
    return rt.SystemEvent(kind, author, () if msg_type == "LEFT" else users, "")


def type_event(message: Message) -> rt.SystemEvent | None:
    """The event a message of a system kind stands for when its body does not write it out
    (the Desktop API and main.db give the kind, USERS and a plain body; an export writes
    the event's markup instead, which renders as it is)."""
    if message.type in MEMBER_EVENTS:
        if message.body_markup:
            return None
        return member_event(message.type, message.author, message.users)
    kind = CHAT_EVENTS.get(message.type)
    if kind is None or any(isinstance(n, rt.SystemEvent) for n in parse(message.body_markup)):
        return None
    return rt.SystemEvent(kind, message.author, message.users, markup_to_text(message.body_markup))


def body_html(message: Message, context: Context) -> str:
    """What a message shows: its body, or the line of the event it stands for."""
    event = type_event(message)
    if event is not None:
        return event_html(event, context.names)
    return render_in(message.body_markup, context)


def body_text(message: Message) -> str:
    """The text a reader sees of a message, for titles (not escaped)."""
    event = type_event(message)
    if event is not None:
        return event_text(event)
    return message.body


def event_html(event: rt.SystemEvent, names: Mapping[str, str] | None = None) -> str:
    """The event's line, its people by their display names in `names` where known."""

    def person(handle: str) -> str:
        bare = bare_handle(handle)
        return _bdi((names or {}).get(bare) or bare)

    return f'<span class="event">{_event_line(event, person, escape_text)}</span>'


def event_text(event: rt.SystemEvent) -> str:
    """The line event_html shows, as plain text (not escaped)."""
    return _event_line(event, bare_handle, str)


def bare_handle(mri: str) -> str:
    """`8:live:bob` -> `live:bob`: Skype's MRI prefix dropped, except a bot's `28:`."""
    prefix, colon, rest = mri.partition(":")
    return rest if colon and prefix.isdigit() and prefix != "28" else mri


def size_text(size: int) -> str:
    value, unit = float(size), "bytes"
    for bigger in ("KB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def _bdi(text: str) -> str:
    return f"<bdi>{escape_text(text)}</bdi>"


def _names(handles: tuple[str, ...]) -> str:
    return ", ".join(_bdi(bare_handle(h)) for h in handles)


def _sized(name: str, size: int | None) -> str:
    return _bdi(name) + (f" ({size_text(size)})" if size is not None else "")


def _html(node: rt.Node, context: Context) -> str:
    inner = to_html(node.children, context) if isinstance(node, rt.WithChildren) else ""
    match node:
        case rt.Text(text=text):
            return escape_text(text)
        case rt.Flag(country=country, text=text):
            emoji = flag_emoji(country)
            if emoji is None:
                return escape_text(text)
            label = escape_text(text)
            return (
                f'<span class="emoji" title="{label}" role="img" aria-label="{label}">'
                f"{emoji}</span>"
            )
        case rt.Styled(style=style):
            return f"<{style}>{inner}</{style}>"
        case rt.Link(href=href):
            safe = safe_href(href)
            if safe is None:
                return f'<span class="link">{inner}</span>'
            return f'<a href="{escape_text(safe)}" rel="{LINK_REL}">{inner}</a>'
        case rt.Quote(author=author, authorname=authorname, timestamp=timestamp):
            cite = _cite(authorname or author, timestamp, context.zone)
            return f'<blockquote class="quote">{cite}{inner}</blockquote>'
        case rt.Mention():
            return f'<span class="mention">{"" if inner.startswith("@") else "@"}{inner}</span>'
        case rt.Emoticon(type=kind):
            emoji = EMOTICONS.get(kind.lower())
            if emoji is None:
                return f'<span class="emoticon" title="{escape_text(kind)}">{inner}</span>'
            label = escape_text(kind)
            return (
                f'<span class="emoticon emoji" title="{label}" role="img" aria-label="{label}">'
                f"{emoji}</span>"
            )
        case rt.Location(address=address):
            return f'<span class="location">{inner or escape_text(address)}</span>'
        case rt.Files(files=files):
            listed = ", ".join(_sized(f.name, f.size) for f in files)
            return f'<span class="files">Files: {listed}</span>'
        case rt.Media():
            return _media_html(node, context)
        case rt.Call(parts=parts):
            who = ", ".join(_bdi(p.name or bare_handle(p.identity)) for p in parts)
            return f'<span class="call">{escape_text(rt.call_summary(node))}' + (
                f" ({who})</span>" if who else "</span>"
            )
        case rt.Contacts(contacts=contacts):
            listed = ", ".join(
                _bdi(c.name or c.handle) + (f" ({escape_text(c.handle)})" if c.name else "")
                for c in contacts
            )
            return f'<span class="contacts">Contacts: {listed}</span>'
        case rt.SystemEvent():
            return event_html(node, context.names)
        case rt.Sms(text=text, targets=targets):
            to = f" to {_names(targets)}" if targets else ""
            return f'<span class="sms">SMS{to}: {escape_text(text)}</span>'
        case rt.Card(text=text):
            return f'<span class="card" title="card">{escape_text(text)}</span>'
    raise TypeError(f"not a content node: {node!r}")


def _cite(who: str, timestamp: str, zone: tzinfo) -> str:
    """A quote's byline: who wrote the quoted message and when (Skype's Unix seconds)."""
    try:
        when = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        when = None
    parts = [_bdi(who)] if who else []
    if when is not None:
        shown = when.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        exact = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        title = when.strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(f'<time datetime="{exact}" title="{title}">{shown}</time>')
    return f"<cite>{', '.join(parts)}</cite> " if parts else ""


def flag_emoji(country: str) -> str | None:
    """A two-letter country code as its flag (two regional indicator symbols)."""
    code = country.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return None
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code)


# Skype's emoticon types (the `type` of `<ss>`) shown as the emoji that mean the same; any
# other type shows the text Skype wrote for it (`:)`), with its type as the title.
EMOTICONS = {
    "smile": "🙂",
    "sad": "🙁",
    "laugh": "😄",
    "bigsmile": "😃",
    "wink": "😉",
    "cool": "😎",
    "surprised": "😮",
    "cry": "😢",
    "sweat": "😓",
    "speechless": "😐",
    "kiss": "😘",
    "tongueout": "😛",
    "blush": "😊",
    "wonder": "🤔",
    "think": "🤔",
    "sleepy": "😪",
    "yawn": "🥱",
    "angry": "😠",
    "evilgrin": "😈",
    "hug": "🤗",
    "heart": "❤️",
    "brokenheart": "💔",
    "like": "👍",
    "yes": "👍",
    "no": "👎",
    "clap": "👏",
    "facepalm": "🤦",
    "wave": "👋",
    "coffee": "☕",
    "beer": "🍺",
    "drink": "🍹",
    "cake": "🎂",
    "pizza": "🍕",
    "sun": "☀️",
    "rain": "🌧️",
    "flower": "🌺",
    "music": "🎵",
    "phone": "📞",
    "mail": "✉️",
    "star": "⭐",
    "rofl": "🤣",
    "party": "🥳",
    "puke": "🤮",
    "devil": "😈",
    "angel": "😇",
}


def media_kind(node: rt.Media) -> str:
    """What a shared file is, in words: `PNG picture`, `PDF file` (its name's extension and
    the kind Skype gave it, `Picture.1` or `RichText/Media_Video`)."""
    kind = node.type.split(".")[0].rsplit("/", 1)[-1].removeprefix("Media_").lower()
    kind = {"uriobject": "file", "genericfile": "file", "audiomsg": "audio message"}.get(kind, kind)
    stem, dot, extension = node.original_name.rpartition(".")
    if dot and stem and extension.isalnum() and len(extension) <= 5:
        return f"{extension.upper()} {kind or 'file'}"
    return kind or "file"


def _media_html(node: rt.Media, context: Context) -> str:
    media, root = context.media, context.root
    name = _bdi(node.original_name or node.type or "file")
    facts = ", ".join(
        [escape_text(media_kind(node))] + ([size_text(node.size)] if node.size is not None else [])
    )
    shown = f'{name} <span class="facts">({facts})</span>'
    sha256 = media.get(node.doc_id, "")
    if not SHA256.fullmatch(sha256):
        mark = '<span class="mark">(file not archived)</span>'
        return f'<span class="media missing">{shown} {mark}</span>'
    href = escape_text(media_path(sha256, root))
    if sha256 in context.thumbs:
        src = escape_text(root + thumbnail_path(sha256))
        alt = escape_text(node.original_name or "picture")
        return (
            f'<a class="media picture" href="{href}" rel="{LINK_REL}">'
            f'<img src="{src}" alt="{alt}" loading="lazy"><span>{shown}</span></a>'
        )
    return f'<a class="media" href="{href}" rel="{LINK_REL}">{shown}</a>'


def _event_line(
    event: rt.SystemEvent, person: Callable[[str], str], text: Callable[[str], str]
) -> str:
    """The event's line, its people through `person` and any other text through `text`."""
    who = person(event.initiator) if event.initiator else "Someone"
    value = text(event.value)
    names = ", ".join(person(h) for h in event.targets)
    match event.kind:
        case "addmember":
            return f"{who} added {names}"
        case "deletemember" if event.targets in ((), (event.initiator,)):
            return f"{who} left"
        case "deletemember":
            return f"{who} removed {names}"
        case "topicupdate":
            return f"{who} set the topic to “{value}”"
        case "pictureupdate":
            return f"{who} changed the chat's picture"
        case "roleupdate" if value:
            return f"{who} made {names} {value}"
        case "roleupdate":
            return f"{who} changed the role of {names}"
        case "guidelinesupdate":
            return f"{who} set the guidelines to “{value}”"
        case "optionsupdate":
            return f"{who} changed the chat's options"
        case "kickbanned":
            return f"{who} removed and banned {names}"
        case "createdchatwith":
            return f"{who} created the chat with {names}" if names else f"{who} created the chat"
        case "joinedasapplicant":
            return f"{who} asked to join"
        case "gap":
            return "Messages are missing here (Skype did not have them)"
    return f"{who}: {text(event.kind)} {value}".rstrip()
