"""Raw events of imported records (schemas/raw-event.v1.json, skypeMaindbPayload and
skypeExportPayload): the record verbatim, plus what makes it self-contained.

A chat's own records (main.db Conversations and Chats rows, an export's conversation object)
are events of their own; a message's event carries of them only what the processor needs to
name its chat, since repeating them in every message made up most of each event."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatchannels.ingest.importers.export import ExportItem
from chatchannels.ingest.importers.maindb import MaindbRow
from chatchannels.rawevents import EventClock, raw_event

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
    return raw_event(
        "skype-maindb", host=host, session=session, seq=seq, clock=clock, payload=payload
    )


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
    return raw_event(
        "skype-export", host=host, session=session, seq=seq, clock=clock, payload=payload
    )
