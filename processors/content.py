"""Content normalisation and hashing: what must agree for two hosts' copies to be one message.

Only what every host reads the same goes into a key: message type, body and the handles a
system message is about. Status, display names, local ids and times differ per host and are
left out (design invariant 5). A body is compared as the text a reader sees in it
(richtext.body_text: a Desktop API body as it is, Skype's XML with its markup dropped), so a
main.db or export copy matches the live one; that text is normalised for what transports
change: Unicode form, Windows line ends (spec §6.5), and runs of blanks at the ends of lines.

The functions are cached: matching recomputes a whole group per change, so the same
bodies are normalised and hashed again and again.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from chatchannels.processors.richtext import TEXT, body_text

_TRAILING_BLANKS = re.compile(r"[ \t]+\n")
# Entries of the processor's memos: more than the distinct bodies (or messages) of the groups
# that the store's group cache holds, because a batch recomputing those groups visits each
# once in turn, and an LRU cache visited cyclically by more keys than it holds misses every
# time.
MEMO_SLOTS = 1 << 18


@lru_cache(maxsize=MEMO_SLOTS)
def normalise_body(body: str) -> str:
    text = unicodedata.normalize("NFC", body).replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING_BLANKS.sub("\n", text).strip()


@lru_cache(maxsize=MEMO_SLOTS)
def normalise_content(body: str, body_format: str = TEXT) -> str:
    """What two copies of a body must agree on, whatever format each was written in."""
    return normalise_body(body_text(body, body_format))


def normalise_handle(handle: str) -> str:
    """Skype names compare case-insensitively (spec §7.3)."""
    return handle.casefold()


def content_key(
    message_type: str | None, body: str, users: Iterable[str] = (), body_format: str = TEXT
) -> str:
    """A stable digest of what a message says; equal for every host's copy of it."""
    return _content_key(message_type, body, tuple(users), body_format)


@lru_cache(maxsize=MEMO_SLOTS)
def _content_key(
    message_type: str | None, body: str, users: tuple[str, ...], body_format: str
) -> str:
    parts = [
        (message_type or "").upper(),
        normalise_content(body, body_format),
        " ".join(sorted(normalise_handle(u) for u in users)),
    ]
    return stable_digest("content", *parts)


def stable_digest(*parts: str, length: int = 24) -> str:
    """Hex digest of the parts, unambiguous (length-prefixed), for keys and ids."""
    encoded = [part.encode("utf-8") for part in parts]
    framed = b"".join(len(data).to_bytes(8, "big") + data for data in encoded)
    return hashlib.sha256(framed).hexdigest()[:length]
