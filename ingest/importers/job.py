"""One import: read a file's objects, spool them as raw events, deliver the spool to Kafka.

The agent's spool and delivery carry the events, so an import has the agent's guarantees:
an event exists once its spool transaction committed; Kafka gets it with acks=all from the
idempotent producer; kill -9 and Kafka outages lose nothing.

Resuming: the reading order of a file is fixed, so "how many objects of this file are
spooled" says exactly where to go on. That count is a spool mark (`import:<sha256>`) written
in the same transaction as the events it counts, so after a kill the count and the spooled
events always agree; a rerun skips that many objects and spools exactly the rest. A second
mark (`imported:<sha256>`) says the file was read to its end: a rerun adds nothing.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chatchannels.event_signing import Signer
from chatchannels.ingest.agent.spool import EventBuilder, Spool, read_summary
from chatchannels.ingest.importers.detect import MAINDB, Importable
from chatchannels.ingest.importers.events import (
    FileInfo,
    default_host,
    export_event,
    file_sha256,
    maindb_event,
)
from chatchannels.ingest.importers.export import ExportReader
from chatchannels.ingest.importers.maindb import FileError, MainDb
from chatchannels.rawevents import EventClock, encode_raw_event

BATCH = 500
_BOOTSTRAP_S = 5.0


def wall_clock() -> EventClock:
    """This machine's clock when it read the record, with its UTC offset (as the agent's)."""
    utc = time.time()
    return EventClock(utc=round(utc, 6), tz_offset_s=_utc_offset(int(utc // 60)))


@functools.lru_cache(maxsize=2)
def _utc_offset(minute: int) -> int:
    # Offsets change only on whole minutes, and localtime was a tenth of an import's time.
    return int(time.localtime(minute * 60).tm_gmtoff)


class Progress(Protocol):
    def begin(self, name: str, total: int | None, unit: str) -> None: ...

    def update(self, objects: int, completed: int) -> None: ...

    def end(self) -> None: ...


class NoProgress:
    def begin(self, name: str, total: int | None, unit: str) -> None:
        pass

    def update(self, objects: int, completed: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass
class FileReport:
    path: str
    kind: str
    description: str
    sha256: str = ""
    host: str = ""
    spool: str = ""
    objects: int = 0
    spooled: int = 0
    skipped: int = 0
    already_imported: bool = False
    errors: list[FileError] = field(default_factory=list)
    pending: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "what": self.description,
            "kind": self.kind,
            "sha256": self.sha256,
            "host": self.host,
            "spool": self.spool,
            "objects": self.objects,
            "spooled": self.spooled,
            "skipped_already_imported": self.skipped,
            "already_imported": self.already_imported,
            "errors": [e.as_json() for e in self.errors],
            "undelivered": self.pending,
            "seconds": round(self.seconds, 3),
        }


def count_mark(sha256: str) -> str:
    return f"import:{sha256}"


def done_mark(sha256: str) -> str:
    return f"imported:{sha256}"


def spool_path(spool_dir: Path, host: str) -> Path:
    # Named like the agent's agent-spool.db, one file per host: a spool holds one seq series.
    return Path(spool_dir) / f"import-{host}.db"


class _Source:
    """A file's objects in their fixed order, and how to make each one's event."""

    def __init__(self, importable: Importable, media_root: Path) -> None:
        self.kind = importable.kind
        if self.kind == MAINDB:
            self.db: MainDb | None = MainDb(importable.path)
            self.export: ExportReader | None = None
        else:
            self.db = None
            self.export = ExportReader(importable.path, importable.kind, media_root)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def total(self) -> tuple[int | None, str]:
        if self.db is not None:
            return self.db.count(), "objects"
        assert self.export is not None
        return self.export.size, "bytes"

    def completed(self, objects: int) -> int:
        return objects if self.export is None else self.export.bytes_read

    def items(self) -> Iterator[Any]:
        if self.db is not None:
            return self.db.rows()
        assert self.export is not None
        return self.export.items()

    def file_info(self, sha256: str, name: str) -> FileInfo:
        if self.db is not None:
            return FileInfo(sha256, name, self.db.account, self.db.client)
        assert self.export is not None
        return FileInfo(sha256, name, self.export.account, self.export.client)

    @property
    def errors(self) -> list[FileError]:
        return self.db.errors if self.db is not None else self.export.errors  # type: ignore[union-attr]


def spool_file(
    importable: Importable,
    spool: Spool,
    report: FileReport,
    *,
    session: str,
    media_root: Path,
    clock: Callable[[], EventClock] | None = None,
    progress: Progress | None = None,
    on_object: Callable[[int], None] | None = None,
) -> FileReport:
    """Spool the file's objects not yet spooled; `report` gets the counts and errors."""
    started = time.monotonic()
    clock = clock or wall_clock
    progress = progress or NoProgress()
    marks = spool.marks()
    sha = report.sha256
    if marks.get(done_mark(sha)):
        report.already_imported = True
        report.skipped = marks.get(count_mark(sha), 0)
        return report
    skip = marks.get(count_mark(sha), 0)
    source = _Source(importable, media_root)
    host = spool.host
    try:
        total, unit = source.total()
        progress.begin(importable.path.name, total, unit)
        batch: list[EventBuilder] = []
        build = maindb_event if source.kind == MAINDB else export_event
        info: FileInfo | None = None
        file_json: dict[str, Any] = {}
        objects = 0
        for item in source.items():
            objects += 1
            if on_object is not None:
                on_object(objects)
            if objects > skip:
                if info is None:
                    # After the first item: an export's userId may come late in the file.
                    info = source.file_info(sha, importable.path.name)
                    file_json = info.as_json()
                batch.append(_builder(build, item, file_json, host, session, clock()))
                if len(batch) >= BATCH:
                    spool.append(batch, time.time(), {count_mark(sha): objects})
                    report.spooled += len(batch)
                    batch = []
            if objects % 200 == 0:
                progress.update(objects, source.completed(objects))
        spool.append(batch, time.time(), {count_mark(sha): objects, done_mark(sha): 1})
        report.spooled += len(batch)
        report.objects = objects
        report.skipped = min(skip, objects)
        report.errors = list(source.errors)
        progress.update(objects, source.completed(objects))
    finally:
        progress.end()
        source.close()
        report.seconds += time.monotonic() - started
    return report


def _builder(
    build: Callable[..., dict[str, Any]],
    item: Any,
    file_json: dict[str, Any],
    host: str,
    session: str,
    clock: EventClock,
) -> EventBuilder:
    return lambda seq: encode_raw_event(
        build(item, file=file_json, host=host, session=session, seq=seq, clock=clock)
    )


@dataclass(frozen=True)
class Target:
    """Where events go: the spool folder, the media folder, and Kafka, signed by `signer`."""

    spool_dir: Path
    media_root: Path
    bootstrap: str
    topic: str
    # Who signs the records (event_signing.py): the importer, or an agent importing a file.
    signer: Signer
    wait_s: float = 60.0
    # Who the producer is (kafka_auth.KafkaLogin.client_options).
    kafka_options: Mapping[str, str] = field(default_factory=dict)


def import_file(
    importable: Importable,
    target: Target,
    *,
    session: str,
    host: str | None = None,
    progress: Progress | None = None,
) -> FileReport:
    """Spool one file (or the rest of it) and deliver its host's spool, up to the deadline."""
    from chatchannels.ingest.agent.delivery import Delivery

    report = FileReport(str(importable.path), importable.kind, importable.description)
    report.sha256 = file_sha256(importable.path)
    report.host = host or default_host(report.sha256)
    path = spool_path(target.spool_dir, report.host)
    report.spool = str(path)
    with Spool(path, report.host) as spool:
        delivery = Delivery(
            path,
            report.host,
            target.bootstrap,
            target.topic,
            producer_options={
                **target.kafka_options,
                "client_id": f"chatchannels-import-{report.host}",
                # The default 30 s would outlast a short --wait when Kafka is away.
                "bootstrap_timeout_ms": int(min(_BOOTSTRAP_S, target.wait_s) * 1000) or 1,
            },
            signer=target.signer,
        )
        # Delivery runs while the file is read, so the spool does not grow to the whole file.
        delivery.start()
        try:
            spool_file(
                importable,
                spool,
                report,
                session=session,
                media_root=target.media_root,
                progress=progress,
                on_object=lambda n: delivery.wake() if n % BATCH == 0 else None,
            )
        finally:
            _stop_within(delivery, target.wait_s)
    report.pending = read_summary(path).depth
    return report


def _stop_within(delivery: Any, wait_s: float) -> None:
    """Flush for up to `wait_s`; a producer stuck connecting must not hold the import longer.

    Whatever is not acknowledged stays in the spool, and the delivery thread (a daemon) ends
    with the process.
    """
    stopper = threading.Thread(
        target=delivery.stop, kwargs={"flush_timeout_s": wait_s}, daemon=True
    )
    stopper.start()
    stopper.join(wait_s + _BOOTSTRAP_S + 1.0)
