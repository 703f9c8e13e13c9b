"""Names across Skype's sources: export conversation ids, chat names and handles.

The Desktop API and main.db name a chat by its legacy chat name (`#creator/$other;hex`),
cloud groups by their thread id (`19:<hex>@thread.skype`), and a one-to-one chat stored
from the cloud by the partner's bare handle. The export names the same chats by MRIs: a
legacy chat as `19:<base64 of its chat name>@p2p.thread.skype`, a partner as `8:bob`. One
chat must stay one chat whatever its source, so exports are mapped to the names main.db and
the Desktop API use (spec skype-history-formats.md 1.6, 2.5).

A one-to-one chat stored from the cloud has no legacy name: each side's main.db names it by
the other person, and the export by the partner's MRI, so "bob" in Alice's file and "alice"
in Bob's are one chat. Such chats are named by the unordered pair of the two handles
(`dialog_chat_name`), the key spec 2.5 asks for, whichever side a file comes from.
"""

from __future__ import annotations

import base64
import binascii
import re

P2P_SUFFIX = "@p2p.thread.skype"

# One leading `<digits>:` MRI prefix. Bots (`28:`) keep theirs because their names can
# collide with real skypenames; thread ids (`19:`) and the call-log pseudo-conversation
# (`48:calllogs`) are not people, and without the prefix `48:calllogs` would be a
# skypename.
_PREFIX = re.compile(r"([0-9]+):")
_KEPT_PREFIXES = frozenset({"19", "28", "48"})
# What a legacy chat name decoded from a p2p thread id must look like: `#creator/$...`,
# printable, one line. Anything else is an id that does not decode to a chat name.
_LEGACY_NAME = re.compile(r"#[^\s/]+/\$\S+")


class ChatNameError(ValueError):
    """An export conversation id that names no chat (say, bad base64 in a p2p thread id)."""


def bare_handle(mri: str) -> str:
    """`8:live:bob` -> `live:bob`, `2:x@example.com` -> `x@example.com`; `28:concierge`,
    `19:...` and bare handles unchanged (older exports give `from` without a prefix)."""
    match = _PREFIX.match(mri)
    if match is None or match.group(1) in _KEPT_PREFIXES:
        return mri
    return mri[match.end() :]


DIALOG_PREFIX = "dialog:"


def dialog_chat_name(owner: str | None, partner: str) -> str:
    """`dialog:alice;bob` for the one-to-one chat of two handles, in either order; the
    partner's bare handle when the file does not say whose it is (nothing to pair it with).
    Handles compare case-insensitively (spec 7.3), so the pair is casefolded."""
    if not owner or partner.startswith("48:"):
        return partner
    pair = sorted({owner.casefold(), partner.casefold()})
    return DIALOG_PREFIX + ";".join(pair)


def is_partner_name(chat: str) -> bool:
    """Whether a main.db chat name is a partner's bare handle (a one-to-one chat stored from
    the cloud) rather than a legacy `#...` name or a `19:` thread."""
    return not chat.startswith(("#", "19:", DIALOG_PREFIX))


def export_chat_name(conversation_id: str, account: str | None = None) -> str:
    """The chat name main.db and the Desktop API use for an export conversation id of
    `account`'s export (its userId, any MRI form)."""
    if conversation_id.startswith("19:") and conversation_id.endswith(P2P_SUFFIX):
        return legacy_chat_name(conversation_id)
    if conversation_id.startswith("19:"):
        # Cloud threads (`@thread.skype`, `@thread.v2`, ...) are named alike everywhere.
        return conversation_id
    name = bare_handle(conversation_id)
    if not name:
        raise ChatNameError(f"empty conversation id {conversation_id!r}")
    return dialog_chat_name(bare_handle(account) if account else None, name)


def legacy_chat_name(p2p_thread_id: str) -> str:
    """`19:I3RyYXZpcy5yLmNvcnkvJGMyOWM1OTc2MjEzNGUzZWY=@p2p.thread.skype` ->
    `#travis.r.cory/$c29c59762134e3ef`."""
    encoded = p2p_thread_id.removeprefix("19:").removesuffix(P2P_SUFFIX)
    try:
        raw = base64.b64decode(encoded, validate=True)
        name = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise ChatNameError(f"not base64 of a chat name: {p2p_thread_id[:120]!r}") from None
    if not _LEGACY_NAME.fullmatch(name) or not name.isprintable():
        raise ChatNameError(
            f"decodes to {name[:80]!r}, not a chat name #creator/$...: {p2p_thread_id[:120]!r}"
        )
    return name


def p2p_thread_id(chat_name: str) -> str:
    """The export's conversation id for a legacy chat name (inverse of legacy_chat_name)."""
    if not _LEGACY_NAME.fullmatch(chat_name) or not chat_name.isprintable():
        raise ChatNameError(f"not a legacy chat name: {chat_name[:120]!r}")
    return "19:" + base64.b64encode(chat_name.encode("utf-8")).decode("ascii") + P2P_SUFFIX
