"""Manifests: one SHA-256 per chat and month over the canonical history the site shows.

Anyone holding a copy of the archive (a backup, a replay, another site) can recompute a
month's digest from the store and compare it with `<month>.manifest.json` beside the
month's page, with a few lines of code. The bytes hashed (README, "Manifests"):

- one line per message of the chat posted in the UTC month, in (posted time, id) order;
- a line is the message as a JSON object with keys sorted, no spaces (separators `,` and
  `:`), non-ASCII characters as themselves, UTF-8, ending in `\\n`;
- its keys: id, chat, author, author_name, posted_utc, type, body, body_markup, edited_utc,
  edited_by, deleted, users, media, revisions; revisions is a list, in revision order, of
  objects with revision, body_markup, editor, edited_utc, deleted;
- times as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, or null.

Which hosts captured a message is left out: that is provenance, which grows as late hosts
catch up, not history. Pure: messages in, bytes and digests out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from chatchannels.publishers.model import Message, Revision
from chatchannels.publishers.utc import utc_iso

FORMAT = "chatchannels.manifest.v1"


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc_iso(value) + "Z"


def _revision(revision: Revision) -> dict[str, Any]:
    return {
        "revision": revision.revision,
        "body_markup": revision.body_markup,
        "editor": revision.editor,
        "edited_utc": _time(revision.edited_utc),
        "deleted": revision.deleted,
    }


def message_line(message: Message) -> bytes:
    """The bytes one message contributes to its month's digest (module doc)."""
    doc = {
        "id": message.id,
        "chat": message.chat,
        "author": message.author,
        "author_name": message.author_name,
        "posted_utc": _time(message.posted_utc),
        "type": message.type,
        "body": message.body,
        "body_markup": message.body_markup,
        "edited_utc": _time(message.edited_utc),
        "edited_by": message.edited_by,
        "deleted": message.deleted,
        "users": list(message.users),
        "media": list(message.media),
        "revisions": [_revision(r) for r in message.revisions],
    }
    # orjson writes what json.dumps(sort_keys=True, separators=(",", ":"),
    # ensure_ascii=False) does, in UTF-8, in a fifth of the time.
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"


def _order(message: Message) -> tuple[datetime, str]:
    return (message.posted_utc, message.id)


def month_manifest(chat: str, month: str, messages: Iterable[Message]) -> dict[str, Any]:
    """The manifest of one chat-month: its digest and counts, as written beside its page."""
    digest = hashlib.sha256()
    count = revisions = 0
    for message in sorted(messages, key=_order):
        digest.update(message_line(message))
        count += 1
        revisions += len(message.revisions)
    return {
        "format": FORMAT,
        "chat": chat,
        "month": month,
        "messages": count,
        "revisions": revisions,
        "sha256": digest.hexdigest(),
    }


def encode_manifest(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


def differing_months(
    left: Mapping[tuple[str, str], str], right: Mapping[tuple[str, str], str]
) -> list[tuple[str, str]]:
    """The (chat, month)s whose digests differ or that only one side has, sorted."""
    return sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
