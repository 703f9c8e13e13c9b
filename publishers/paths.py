"""Where things live in the site: chat names as file names, months, anchors and links.

Chat names are arbitrary text chosen by Skype (`#alice/$bob;a7ab…`) or by whoever named a
chat, so they never reach the file system as they are (design.md, invariant 7). The encoding:

- Chat Channels 2006 mapped `#` to `(` and `/` to `)`; we keep that, so old links read alike.
- ASCII lower-case letters, digits, `-` and `_` stay as they are; a `.` stays unless it leads
  or trails the name.
- Every other character, each of its UTF-8 bytes, becomes `~XX` (upper-case hex). That covers
  `$`, `;`, `(`, `)`, `~` itself, `%`, path separators, and upper-case letters too, so two names
  that differ only in case stay two files on a case-insensitive file share.
- Names that would clash with the site's own files (`all`, `index`, ...) or Windows device
  names (`con`, `nul`, ...) get their first character escaped.
- The empty name is `~`, which no other name encodes to.

Decoding inverts each step, so `decode_chat_name(encode_chat_name(x)) == x` and the encoding is
injective. A name whose encoding would exceed what file systems allow keeps a readable prefix
and a digest of the whole name; such names cannot be decoded from the file name alone.
"""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import UTC, datetime

from chatchannels.publishers.utc import utc_iso

SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
LEGACY = {"#": "(", "/": ")"}
UNLEGACY = {v: k for k, v in LEGACY.items()}
# The site's own names at the levels where encoded chat names sit, and Windows device names.
RESERVED = frozenset(
    {"all", "index", "search", "style", "feeds", "chats"}
    | {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)
# 255 bytes is the usual file-name limit; `.atom`/`.html` and a temp suffix must still fit.
MAX_COMPONENT = 200
DIGEST_MARK = "~~"
ESCAPE = re.compile(r"~([0-9A-F]{2})")
# Message ids that encode to themselves: safe characters without a `.`, short, and no
# reserved name begins with `m`.
PLAIN_ID = re.compile(r"m[0-9a-z_-]{0,190}")


class ChatNameError(ValueError):
    """A file name that is not the encoding of any chat name."""


def _escape_char(char: str) -> str:
    return "".join(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


@functools.lru_cache(maxsize=4096)
def encode_chat_name(name: str) -> str:
    """The chat's file-name component: safe, injective, reversible (see the module doc)."""
    if name == "":
        return "~"
    out = []
    last = len(name) - 1
    for i, char in enumerate(name):
        if char in LEGACY:
            out.append(LEGACY[char])
        elif char in SAFE and not (char == "." and i in (0, last)):
            out.append(char)
        else:
            out.append(_escape_char(char))
    encoded = "".join(out)
    if encoded.split(".")[0] in RESERVED:
        encoded = _escape_char(name[0]) + encoded[1:]
    if len(encoded) > MAX_COMPONENT:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        prefix = encoded[: MAX_COMPONENT - len(DIGEST_MARK) - len(digest)]
        # Never cut an escape in half: the prefix stays readable and never ends in `~`.
        prefix = re.sub(r"~[0-9A-F]?$", "", prefix)
        encoded = prefix + DIGEST_MARK + digest
    return encoded


def decode_chat_name(component: str) -> str:
    """The chat name a component encodes. Raises ChatNameError for anything else."""
    if component == "~":
        return ""
    if DIGEST_MARK in component:
        raise ChatNameError(f"{component!r} is a shortened name; look the chat up by its digest")
    raw = bytearray()
    i = 0
    while i < len(component):
        char = component[i]
        if char == "~":
            match = ESCAPE.match(component, i)
            if not match:
                raise ChatNameError(f"{component!r}: bad escape at position {i}")
            raw.append(int(match[1], 16))
            i = match.end()
            continue
        if char in UNLEGACY:
            raw += UNLEGACY[char].encode()
        elif char in SAFE:
            raw += char.encode()
        else:
            raise ChatNameError(f"{component!r}: {char!r} at position {i} is never produced")
        i += 1
    try:
        name = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ChatNameError(f"{component!r}: escapes are not UTF-8 ({exc})") from exc
    if encode_chat_name(name) != component:
        # Another spelling of a real name (e.g. an escaped safe letter): not ours.
        raise ChatNameError(f"{component!r} is not the canonical encoding of {name!r}")
    return name


def month_of(posted_utc: datetime) -> str:
    """The month partition of a message: its UTC year-month, `YYYY-MM`."""
    return utc_iso(posted_utc)[:-19]


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a `YYYY-MM` month in UTC."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def message_anchor(message_id: str) -> str:
    # Message ids are `m` + hex digest (processors/canonical.py); anything else is escaped
    # so that an anchor is always a valid, inert fragment. Such an id encodes to itself:
    # checked at once, because the site asks for 600,000 anchors of 200,000 messages, too
    # many for encode_chat_name's cache.
    if PLAIN_ID.fullmatch(message_id):
        return "m-" + message_id
    return "m-" + encode_chat_name(message_id)


MANIFEST_SUFFIX = ".manifest.json"


# Paths relative to the site root, with `/` separators (they double as URLs).
def chat_dir(chat: str) -> str:
    return f"chats/{encode_chat_name(chat)}"


def chat_index_path(chat: str) -> str:
    return f"{chat_dir(chat)}/index.html"


def chat_stats_path(chat: str) -> str:
    return f"{chat_dir(chat)}/stats.html"


def month_page_path(chat: str, month: str) -> str:
    return f"{chat_dir(chat)}/{month}.html"


def month_manifest_path(chat: str, month: str) -> str:
    return f"{chat_dir(chat)}/{month}{MANIFEST_SUFFIX}"


def message_link(chat: str, month: str, message_id: str) -> str:
    return f"{month_page_path(chat, month)}#{message_anchor(message_id)}"


ALL_FEED_PATH = "feeds/all.atom"
STATS_PATH = "stats.html"


def chat_feed_path(chat: str) -> str:
    return f"feeds/{encode_chat_name(chat)}.atom"


def archive_feed_path(chat: str, month: str) -> str:
    return f"feeds/{encode_chat_name(chat)}/{month}.atom"


def relative_link(from_path: str, to_path: str) -> str:
    """A link from one site path to another that works from a file share (never absolute).

    An empty `to_path` gives the prefix that leads back to the site root ("" or "../...").
    Both paths are relative to the site root, so no file system is consulted.
    """
    here = from_path.split("/")[:-1]
    if to_path == "":
        return "../" * len(here)
    target, hash_, fragment = to_path.partition("#")
    there = target.split("/")
    common = 0
    while common < min(len(here), len(there) - 1) and here[common] == there[common]:
        common += 1
    link = "/".join([".."] * (len(here) - common) + there[common:])
    return link + hash_ + fragment
