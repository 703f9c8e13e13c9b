"""Raw events of imported records (schemas/raw-event.v1.json, skypeMaindbPayload and
skypeExportPayload): the record verbatim, plus what makes it self-contained.

A chat's own records (main.db Conversations and Chats rows, an export's conversation object)
are events of their own; a message's event carries of them only what the processor needs to
name its chat, since repeating them in every message made up most of each event."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatchannels.ingest.importers.export import ExportItem
from chatchannels.ingest.importers.maindb import MaindbRow
from chatchannels.rawevents import SCHEMA_ID, EventClock

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    name: str
    account: str | None
    client: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "account": self.account,
            "client": self.client,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def default_host(sha256: str) -> str:
    """An imported file is a host of its own: one clock, one seq series (plan, contract)."""
    return f"file-{sha256[:16]}"


def _file(file: FileInfo | dict[str, Any]) -> dict[str, Any]:
    return file.as_json() if isinstance(file, FileInfo) else file


def _envelope(
    source: str, host: str, session: str, seq: int, clock: EventClock, payload: dict
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "host": host,
        "session": session,
        "seq": seq,
        "clock": {"utc": clock.utc, "tz_offset_s": clock.tz_offset_s},
        "source": source,
        "payload": payload,
    }


def maindb_event(
    item: MaindbRow,
    *,
    file: FileInfo | dict[str, Any],
    host: str,
    session: str,
    seq: int,
    clock: EventClock,
) -> dict[str, Any]:
    payload = {
        "file": _file(file),
        "place": {"table": item.table, "rowid": item.rowid},
        "row": item.row,
    }
    if item.needs_conversation:
        payload["conversation"] = item.conversation
    return _envelope("skype-maindb", host, session, seq, clock, payload)


def export_event(
    item: ExportItem,
    *,
    file: FileInfo | dict[str, Any],
    host: str,
    session: str,
    seq: int,
    clock: EventClock,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "file": _file(file),
        "place": item.place,
        "kind": item.kind,
        "conversation": item.conversation,
    }
    if item.kind == "message":
        payload["message"] = item.message
    elif item.kind == "media":
        payload["media"] = item.media
    return _envelope("skype-export", host, session, seq, clock, payload)


# encode_raw_event's settings; one encoder object, since json.dumps with arguments builds a
# new one per call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
# Records that repeat from event to event: every event carries the same file, and the
# messages of a chat named by its conversation the same Conversations row.
_SHARED = ("conversation", "file")
_CACHE_LIMIT = 10_000


class EventEncoder:
    """encode_raw_event's exact bytes, with the shared records encoded once, not per event.

    Encoding was the import's largest cost; the shared records are most of each event.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, str]] = {}

    def _shared(self, value: Any) -> str:
        hit = self._cache.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        text = _dumps(value)
        # The value is kept with its text, so its id cannot be reused by another object.
        self._cache[id(value)] = (value, text)
        return text

    def encode(self, event: dict[str, Any]) -> bytes:
        payload = event["payload"]
        inner = []
        for key in sorted(payload):
            value = payload[key]
            shared = key in _SHARED and isinstance(value, dict)
            inner.append(_key(key) + (self._shared(value) if shared else _dumps(value)))
        outer = []
        for key in sorted(event):
            text = "{" + ",".join(inner) + "}" if key == "payload" else _dumps(event[key])
            outer.append(_key(key) + text)
        return ("{" + ",".join(outer) + "}").encode()


@functools.cache
def _key(key: str) -> str:
    return _dumps(key) + ":"
