"""Message bodies as a typed content model, and the plain text a reader sees in them; pure.

A body comes in one of two formats (MessageObservation.body_format):
- "text": the Desktop API's BODY. Every character is itself: a `<` is a less-than sign (code,
  arrows, `<3`), an `&` an ampersand. It parses to one text run.
- "skype-xml": main.db `body_xml` and the export's `content` (spec skype-history-formats.md
  1.7-1.8): an XML-like fragment with entities, written by Skype, which escapes every `<` and
  `&` a person typed. Parsing is tolerant, because old clients and hand-edited files were not
  always well-formed: only a strict `<name attr="value">` is a tag (so `a < b`, `<3` and
  `<img src=x>` stay text), an unknown tag that is never closed is text too, a known tag left
  open closes with its parent, and an end tag that closes nothing is text. A balanced unknown
  element counts as its text (the SkypeKit rule: `alt` if present, else its content).

The nodes are frozen dataclasses of tuples and strings, so equal bodies give equal models.
`plain_text` is what search indexes and what content keys hash; the HTML renderer is in
publishers/markup.py.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from html.entities import html5

TEXT, SKYPE_XML = "text", "skype-xml"
FORMATS = (TEXT, SKYPE_XML)
STYLES = frozenset({"b", "i", "s", "pre"})
# Elements whose content Skype writes only for clients that understand nothing else; the
# element they decorate carries the same meaning.
DECORATION = frozenset({"legacyquote", "e_m"})
# Deeper tags are text: the model is walked recursively, and no Skype client nests this deep.
MAX_DEPTH = 64
SYSTEM_EVENTS = frozenset(
    {
        "addmember",
        "deletemember",
        "topicupdate",
        "pictureupdate",
        "roleupdate",
        "historydisclosedupdate",
        "joiningenabledupdate",
    }
)
_ATTR = r"""[A-Za-z_:][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*')"""
_TAG = re.compile(rf"<(/?)([A-Za-z_][\w:.-]*)((?:\s+{_ATTR})*)\s*(/?)>")
_ATTRS = re.compile(r"""([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
# Only references with their semicolon: HTML's legacy forms (`&copy` without `;`) would turn
# text like `&para` in old, loosely escaped rows into other characters.
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Styled:
    style: str  # b | i | s | pre
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Link:
    href: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Quote:
    author: str
    authorname: str
    timestamp: str
    conversation: str
    messageid: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Mention:
    id: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Emoticon:
    type: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Flag:
    country: str
    text: str


@dataclass(frozen=True)
class File:
    name: str
    size: int | None


@dataclass(frozen=True)
class Files:
    files: tuple[File, ...]


@dataclass(frozen=True)
class Media:
    type: str
    uri: str
    doc_id: str
    thumbnail: str
    original_name: str
    size: int | None


@dataclass(frozen=True)
class CallPart:
    identity: str
    name: str
    duration_s: float | None


@dataclass(frozen=True)
class Call:
    outcome: str  # started | ended | missed, as Skype wrote it
    call_id: str
    parts: tuple[CallPart, ...]


@dataclass(frozen=True)
class Contact:
    handle: str
    name: str


@dataclass(frozen=True)
class Contacts:
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class Location:
    latitude: str
    longitude: str
    address: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class SystemEvent:
    kind: str  # addmember | deletemember | topicupdate | pictureupdate | roleupdate | ...
    initiator: str
    targets: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class Sms:
    text: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Card:
    """Content Skype wrote as JSON (Notice and PopCard cards): kept, as its text."""

    text: str


Node = (
    Text
    | Styled
    | Link
    | Quote
    | Mention
    | Emoticon
    | Flag
    | Files
    | Media
    | Call
    | Contacts
    | Location
    | SystemEvent
    | Sms
    | Card
)
WithChildren = Styled | Link | Quote | Mention | Emoticon | Location


def parse(body: str, body_format: str = TEXT) -> tuple[Node, ...]:
    if body_format == TEXT:
        return (Text(body),) if body else ()
    if body_format == SKYPE_XML:
        return _parse_xml(body)
    raise ValueError(f"unknown body format {body_format!r}")


def decode_entities(text: str) -> str:
    return _ENTITY.sub(_entity, text)


def _entity(match: re.Match[str]) -> str:
    reference = match.group()
    if reference[1] == "#":
        return html.unescape(reference)
    # Whole names only: html.unescape would read `&notit;` as `¬it;`.
    return html5.get(reference[1:], reference)


def escape_xml(text: str) -> str:
    """Plain text as Skype stores it in body_xml: `&`, `<` and `>` escaped, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def as_skype_xml(body: str, body_format: str) -> str:
    return escape_xml(body) if body_format == TEXT else body


@lru_cache(maxsize=1 << 16)
def body_text(body: str, body_format: str = TEXT) -> str:
    """The plain text of a body: the body itself for "text", else `plain_text` of its model."""
    return body if body_format == TEXT else plain_text(parse(body, body_format))


def plain_text(nodes: tuple[Node, ...]) -> str:
    """The text a reader sees, as the Desktop API's BODY gives it where Skype's own stripping
    is known (markup dropped, entities decoded, an emoticon's or link's shown text kept)."""
    parts: list[str] = []
    previous: Node | None = None
    for node in nodes:
        text = _node_text(node)
        # A quote is a block: the reply after it is a new line, not part of its last word.
        ends_line = parts[-1][-1:].isspace() if parts else True
        if isinstance(previous, Quote) and text[:1] and not (text[0].isspace() or ends_line):
            parts.append("\n")
        parts.append(text)
        previous = node
    return "".join(parts)


def _node_text(node: Node) -> str:
    match node:
        case Text(text=text) | Flag(text=text) | Sms(text=text) | Card(text=text):
            return text
        case Location(address=address, children=()):
            return address
        case Styled() | Link() | Quote() | Mention() | Emoticon() | Location():
            return plain_text(node.children)
        case Files(files=files):
            return ", ".join(f.name for f in files)
        case Media(original_name=name):
            return name
        case Call():
            return call_summary(node)
        case Contacts(contacts=contacts):
            return ", ".join(c.name or c.handle for c in contacts)
        case SystemEvent(value=value):
            # The Desktop API's BODY of SETTOPIC is the new topic; member changes have an
            # empty BODY (who they are about is in USERS).
            return value
    raise TypeError(f"not a content node: {node!r}")


def call_summary(call: Call) -> str:
    """`Call ended, 1:25` (the longest part's duration), `Call started`, `Call missed`."""
    durations = [p.duration_s for p in call.parts if p.duration_s is not None]
    label = f"Call {call.outcome}" if call.outcome else "Call"
    if call.outcome == "ended" and durations:
        return f"{label}, {duration_text(max(durations))}"
    return label


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


# --- parsing skype-xml --------------------------------------------------------------------


@dataclass
class _Element:
    name: str  # lower case
    attrs: dict[str, str]
    start: str  # the start tag as written, for an element that turns out to be text
    children: list[_Element | str]


_KNOWN = (
    STYLES
    | DECORATION
    | SYSTEM_EVENTS
    | {
        "a",
        "quote",
        "at",
        "ss",
        "flag",
        "files",
        "file",
        "uriobject",
        "partlist",
        "part",
        "contacts",
        "c",
        "location",
        "sms",
    }
)


def _parse_xml(source: str) -> tuple[Node, ...]:
    stripped = source.strip()
    if stripped[:1] in ("[", "{") and _is_json(stripped):
        return (Card(source),)
    if "<" not in source:  # most bodies: no markup to build a tree for
        return (Text(decode_entities(source)),) if source else ()
    root = _Element("", {}, "", [])
    stack = [root]
    pos = 0
    for match in _TAG.finditer(source):
        if match.start() > pos:
            stack[-1].children.append(source[pos : match.start()])
        pos = match.end()
        closing, name, attr_text, self_closing = match.groups()
        name = name.lower()
        if closing:
            if self_closing or attr_text or all(e.name != name for e in stack[1:]):
                stack[-1].children.append(match.group())
                continue
            while stack[-1].name != name:
                _close_unclosed(stack)
            stack.pop()
            continue
        if len(stack) > MAX_DEPTH:
            stack[-1].children.append(match.group())
            continue
        element = _Element(name, _attrs(attr_text), match.group(), [])
        stack[-1].children.append(element)
        if not self_closing:
            stack.append(element)
    if pos < len(source):
        stack[-1].children.append(source[pos:])
    while len(stack) > 1:
        _close_unclosed(stack)
    return _convert(root.children)


def _is_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list | dict)
    except ValueError:
        return False


def _close_unclosed(stack: list[_Element]) -> None:
    """Pop an element its parent's end (or the body's) reached unclosed: a known one closes
    there; an unknown one was never markup, so its start tag is text again."""
    element = stack.pop()
    if element.name in _KNOWN:
        return
    siblings = stack[-1].children
    at = len(siblings) - 1 - siblings[::-1].index(element)
    siblings[at : at + 1] = [element.start, *element.children]


def _attrs(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, double, single in _ATTRS.findall(text):
        attrs.setdefault(name.lower(), decode_entities(double or single))
    return attrs


def _convert(items: list[_Element | str]) -> tuple[Node, ...]:
    nodes: list[Node] = []
    for item in items:
        for node in _convert_one(item):
            if isinstance(node, Text) and nodes and isinstance(nodes[-1], Text):
                nodes[-1] = Text(nodes[-1].text + node.text)
            elif not (isinstance(node, Text) and not node.text):
                nodes.append(node)
    return tuple(nodes)


def _text(item: _Element | str) -> str:
    return plain_text(_convert([item]))


def _children_named(element: _Element, name: str) -> list[_Element]:
    return [c for c in element.children if isinstance(c, _Element) and c.name == name]


def _child_text(element: _Element, name: str) -> str:
    found = _children_named(element, name)
    return _text(found[0]).strip() if found else ""


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _convert_one(item: _Element | str) -> tuple[Node, ...]:
    if isinstance(item, str):
        return (Text(decode_entities(item)),)
    name, attrs, get = item.name, item.attrs, item.attrs.get
    if name in DECORATION:
        return ()
    if name in SYSTEM_EVENTS:
        return (_system_event(item),)
    children = _convert(item.children)
    match name:
        case "b" | "i" | "s" | "pre":
            return (Styled(name, children),)
        case "a":
            return (Link(get("href", ""), children),)
        case "quote":
            return (
                Quote(
                    get("author", ""),
                    get("authorname", ""),
                    get("timestamp", ""),
                    get("conversation", ""),
                    get("messageid", "") or get("guid", ""),
                    children,
                ),
            )
        case "at":
            return (Mention(get("id", ""), children),)
        case "ss":
            return (Emoticon(get("type", ""), children),)
        case "flag":
            return (Flag(get("country", ""), get("alt") or plain_text(children)),)
        case "files":
            files = _children_named(item, "file")
            return (Files(tuple(File(_text(f), _int(f.attrs.get("size", ""))) for f in files)),)
        case "uriobject":
            return (_media(item),)
        case "partlist":
            return (_call(item),)
        case "contacts":
            people = _children_named(item, "c")
            return (
                Contacts(
                    tuple(Contact(c.attrs.get("s", ""), c.attrs.get("f", "")) for c in people)
                ),
            )
        case "location":
            return (
                Location(get("latitude", ""), get("longitude", ""), get("address", ""), children),
            )
        case "sms":
            numbers = tuple(
                _text(target).strip()
                for group in _children_named(item, "targets")
                for target in _children_named(group, "target")
            )
            return (Sms(get("alt") or _child_text(item, "encoded_body"), numbers),)
    if "alt" in attrs:
        return (Text(attrs["alt"]),)
    return children


def _media(item: _Element) -> Media:
    get = item.attrs.get
    name = ""
    size = None
    for child in item.children:
        if isinstance(child, _Element):
            if child.name == "originalname":
                name = name or child.attrs.get("v", "")
            elif child.name == "meta":
                name = name or child.attrs.get("originalname", "")
            elif child.name == "filesize":
                size = _int(child.attrs.get("v", ""))
    return Media(
        get("type", ""),
        get("uri", ""),
        get("doc_id", ""),
        get("url_thumbnail", ""),
        name,
        size,
    )


def _call(item: _Element) -> Call:
    parts = tuple(
        CallPart(
            part.attrs.get("identity", ""),
            _child_text(part, "name"),
            _float(_child_text(part, "duration")),
        )
        for part in _children_named(item, "part")
    )
    return Call(item.attrs.get("type", ""), item.attrs.get("callid", ""), parts)


def _system_event(item: _Element) -> SystemEvent:
    targets = []
    value = _child_text(item, "value")
    for target in _children_named(item, "target"):
        # A role update's target holds the member's id and the role given.
        ident = _child_text(target, "id")
        targets.append(ident or _text(target).strip())
        value = value or _child_text(target, "role")
    return SystemEvent(item.name, _child_text(item, "initiator"), tuple(targets), value)
