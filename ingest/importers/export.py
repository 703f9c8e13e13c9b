"""Read Skype's export: messages.json streamed with ijson, then the shared files of media/.

Memory stays bounded whatever the size of messages.json: values are built one message at a
time from the parser's events. A message needs its conversation's record, and JSON does not
promise that the record's keys (id, properties, threadProperties, ...) come before its
MessageList; so a conversation's messages wait until its object closes, in memory up to
`_BUFFERED` of them and in a temporary file beyond. The same holds one level up for userId and
exportDate: when `conversations` comes first, a cheap first pass reads just those two.

A conversation's record is an item of its own, just before its messages; a message carries
only the record's id, which is all the processor needs of it to name the chat.

Items come out in a fixed order (each conversation in file order, then its messages in file
order; then media in archive order), which is what lets a killed import skip what it already
spooled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import ijson

from chatchannels.ingest.importers.detect import EXPORT_TAR
from chatchannels.ingest.importers.maindb import FileError

_BUFFERED = 2000
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportItem:
    kind: str
    place: dict[str, Any]
    conversation: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    media: dict[str, Any] | None = None


class NotAnExport(ValueError):
    """The JSON parsed but is not shaped like an export where it matters."""


class _Counting:
    """A read-only stream that counts what went through it, for progress and error offsets."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data


class _Slice:
    """At most `size` bytes of an open file from where it stands; closes the file."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self._fh = fh
        self._left = size

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(want)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _Slice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _value(events: Iterator[tuple[str, Any]], event: str, value: Any) -> Any:
    if event == "start_map":
        obj: dict[str, Any] = {}
        for ev, key in events:
            if ev == "end_map":
                return obj
            ev2, val2 = next(events)
            obj[key] = _value(events, ev2, val2)
        raise ijson.IncompleteJSONError("object not closed")
    if event == "start_array":
        items: list[Any] = []
        for ev, val in events:
            if ev == "end_array":
                return items
            items.append(_value(events, ev, val))
        raise ijson.IncompleteJSONError("array not closed")
    return value


def _skip(events: Iterator[tuple[str, Any]], event: str) -> None:
    if event not in ("start_map", "start_array"):
        return
    depth = 1
    for ev, _ in events:
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return


class _Spill:
    """A conversation's messages until its record is complete: a list, then a temp file."""

    def __init__(self) -> None:
        self.memory: list[tuple[int, Any]] = []
        self.file: IO[str] | None = None

    def add(self, index: int, message: Any) -> None:
        if len(self.memory) < _BUFFERED:
            self.memory.append((index, message))
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.file.write(json.dumps([index, message], ensure_ascii=False) + "\n")

    def drain(self) -> Iterator[tuple[int, Any]]:
        yield from self.memory
        self.memory = []
        if self.file is not None:
            self.file.seek(0)
            for line in self.file:
                index, message = json.loads(line)
                yield index, message
            self.file.close()
            self.file = None


def _top_level(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """(key, its value's first event, that event's value) of each top-level key; the caller
    reads or skips the value before asking for the next."""
    event, _ = next(events)
    if event != "start_map":
        raise NotAnExport("the top level is not a JSON object")
    for event, key in events:
        if event == "end_map":
            return
        ev, val = next(events)
        yield key, ev, val


def read_header(stream: IO[bytes]) -> dict[str, Any]:
    """userId and exportDate, from the top level only (the first pass, when needed)."""
    found: dict[str, Any] = {}
    events = iter(ijson.basic_parse(stream, use_float=True))
    for key, ev, val in _top_level(events):
        if key in ("userId", "exportDate"):
            found[key] = _value(events, ev, val)
        else:
            _skip(events, ev)
    return found


def iter_messages(
    stream: IO[bytes],
    header: dict[str, Any],
    need_header: Callable[[], dict[str, Any]],
) -> Iterator[ExportItem | FileError]:
    """Every message of messages.json as an ExportItem; `header` is filled with userId and
    exportDate before the first item (from `need_header()` if they come after the messages).
    """
    events = iter(ijson.basic_parse(stream, use_float=True))
    for key, ev, val in _top_level(events):
        if key in ("userId", "exportDate"):
            header[key] = _value(events, ev, val)
        elif key == "conversations":
            if ev != "start_array":
                raise NotAnExport(f"conversations is a JSON {ev.removeprefix('start_')}")
            if not {"userId", "exportDate"} <= header.keys():
                header.update(need_header())
            yield from _conversations(events)
        else:
            _skip(events, ev)


def _conversations(events: Iterator[tuple[str, Any]]) -> Iterator[ExportItem | FileError]:
    for index, (event, _) in enumerate(events):
        if event == "end_array":
            return
        if event != "start_map":
            raise NotAnExport(f"conversations[{index}] is not an object")
        record: dict[str, Any] = {}
        spill = _Spill()
        pending: Exception | None = None
        try:
            _conversation(events, record, spill)
        except Exception as exc:
            pending = exc
        if pending is None:
            yield ExportItem("conversation", {"conversation": index}, conversation=record)
        # A message's event names its conversation by id only: the processor reads nothing
        # else of it, and the whole record is in the conversation's own event.
        reference = {"id": record["id"]} if "id" in record else {}
        # Also on a truncated file: the messages read whole are kept, with the id if it was
        # read (it comes first in every export seen); a partial record is not an item.
        for position, message in spill.drain():
            yield _message_item(index, position, reference, message)
        if pending is not None:
            raise pending


def _conversation(events: Iterator[tuple[str, Any]], record: dict[str, Any], spill: _Spill) -> None:
    for ev, key in events:
        if ev == "end_map":
            return
        ev2, val2 = next(events)
        if key != "MessageList" or ev2 != "start_array":
            record[key] = _value(events, ev2, val2)
            continue
        for position, (ev3, val3) in enumerate(events):
            if ev3 == "end_array":
                break
            spill.add(position, _value(events, ev3, val3))
    raise ijson.IncompleteJSONError("conversation object not closed")


def _message_item(
    conversation: int, position: int, reference: dict, message: Any
) -> ExportItem | FileError:
    place = {"conversation": conversation, "message": position}
    if not isinstance(message, dict):
        return FileError(_place_text(place), f"a JSON {type(message).__name__}, not a message")
    return ExportItem("message", place, conversation=reference, message=message)


def archive_media(source: IO[bytes], media_root: Path) -> tuple[str, int]:
    """Copy a content file to `<root>/<sha256[:2]>/<sha256>`: atomic, and a no-op if there."""
    media_root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=media_root, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        target = media_root / sha[:2] / sha
        if target.exists():
            os.unlink(tmp_name)
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return sha, size


@dataclass(frozen=True)
class _MediaSource:
    """A media/ entry: where its metadata and its content file are, in a tar or a folder."""

    docid: str
    meta_name: str | None
    content_name: str | None


def _media_sources(names: list[str]) -> list[_MediaSource]:
    metas: dict[str, str] = {}
    contents: dict[str, str] = {}
    order: list[str] = []
    for name in names:
        base = PurePosixPath(name).name
        if base.endswith(".json"):
            docid = base[: -len(".json")]
            metas.setdefault(docid, name)
        elif ".1." in base:
            docid = base.split(".1.", 1)[0]
            contents.setdefault(docid, name)
        else:
            # Previews (<docid>.2.jpg) and anything else: not a shared file of its own.
            continue
        if docid not in order:
            order.append(docid)
    return [_MediaSource(d, metas.get(d), contents.get(d)) for d in order]


def _names(source: _MediaSource) -> list[str]:
    return [n for n in (source.meta_name, source.content_name) if n is not None]


def _member_name(name: str) -> str:
    return name[2:] if name.startswith("./") else name


class ExportReader:
    """One export (a .tar, or a bare messages.json with an optional media/ folder beside it)."""

    def __init__(self, path: Path, kind: str, media_root: Path) -> None:
        self.path = Path(path)
        self.kind = kind
        self.media_root = media_root
        self.header: dict[str, Any] = {}
        self.errors: list[FileError] = []
        self.size = self.path.stat().st_size
        self._position = 0
        self._stream: _Counting | None = None
        self._base = 0

    @property
    def bytes_read(self) -> int:
        """How far into the file reading has got, for the progress bar."""
        if self._stream is not None:
            return self._base + self._stream.count
        return self._position

    @property
    def account(self) -> str | None:
        value = self.header.get("userId")
        return value if isinstance(value, str) else None

    @property
    def client(self) -> str | None:
        value = self.header.get("exportDate")
        return value if isinstance(value, str) else None

    def items(self) -> Iterator[ExportItem]:
        with ExitStack() as stack:
            if self.kind == EXPORT_TAR:
                tar = stack.enter_context(tarfile.open(self.path, "r:"))
                yield from self._tar_items(self._members(tar))
            else:
                yield from self._json_items(self.path.open("rb"), "messages.json")
                media_dir = self.path.parent / "media"
                if media_dir.is_dir():
                    yield from self._folder_media(media_dir)

    # --- messages.json ----------------------------------------------------------------

    def _open_messages(self, stack: ExitStack) -> IO[bytes] | None:
        if self.kind != EXPORT_TAR:
            return stack.enter_context(self.path.open("rb"))
        tar = stack.enter_context(tarfile.open(self.path, "r:"))  # noqa: SIM115
        for member in tar:
            if _member_name(member.name) == "messages.json":
                return stack.enter_context(self._slice(member))
        return None

    def _json_items(self, raw: IO[bytes], where: str) -> Iterator[ExportItem]:
        stream = _Counting(raw)
        self._stream = stream
        prefix = "" if self.kind != EXPORT_TAR else "member "
        try:
            with raw:
                yield from self._guarded(iter_messages(stream, self.header, self._first_pass))
        except _Stop as stop:
            self.errors.append(FileError(f"{prefix}{where}, byte {stream.count}", stop.problem))
        finally:
            self._position = self._base + stream.count
            self._stream = None

    def _guarded(self, inner: Iterator[ExportItem | FileError]) -> Iterator[ExportItem]:
        while True:
            try:
                item = next(inner)
            except StopIteration:
                return
            except ijson.IncompleteJSONError as exc:
                raise _Stop(f"the JSON ends early: {_first_line(exc)}") from exc
            except ijson.JSONError as exc:
                raise _Stop(f"not valid JSON: {_first_line(exc)}") from exc
            except NotAnExport as exc:
                raise _Stop(f"not a Skype export: {exc}") from exc
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise _Stop(f"the file ends early or cannot be read: {exc}") from exc
            if isinstance(item, FileError):
                self.errors.append(item)
                continue
            yield item

    def _first_pass(self) -> dict[str, Any]:
        with ExitStack() as stack:
            stream = self._open_messages(stack)
            return read_header(stream) if stream is not None else {}

    # --- tar ----------------------------------------------------------------------------

    def _members(self, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
        members: list[tarfile.TarInfo] = []
        failure: Exception | None = None
        try:
            for member in tar:
                members.append(member)
        except (tarfile.TarError, OSError) as exc:
            failure = exc
        last = members[-1] if members else None
        if last is not None and last.offset_data + last.size > self.size:
            # tarfile stops quietly, or fails on the next header, at a cut inside a member.
            self.errors.append(
                FileError(
                    f"member {last.name}, byte {self.size - last.offset_data}",
                    f"the archive is truncated: the member has {last.size} bytes, "
                    f"the file ends {last.offset_data + last.size - self.size} bytes short",
                )
            )
        elif failure is not None:
            offset = last.offset_data + last.size if last is not None else 0
            self.errors.append(FileError(f"tar header at byte {offset}", f"unreadable: {failure}"))
        return members

    def _tar_items(self, members: list[tarfile.TarInfo]) -> Iterator[ExportItem]:
        by_name = {_member_name(m.name): m for m in members if m.isfile()}
        messages = by_name.get("messages.json")
        if messages is not None:
            self._base = messages.offset_data
            yield from self._json_items(self._slice(messages), "messages.json")
        names = [n for n in by_name if n.startswith("media/") and n.count("/") == 1]
        for source in _media_sources(names):
            item = self._media_item(
                source,
                lambda name: self._slice(by_name[name]),
                lambda name: by_name[name].offset_data + by_name[name].size <= self.size,
            )
            self._position = max(
                [self._position]
                + [by_name[n].offset_data + by_name[n].size for n in _names(source)]
            )
            yield item

    def _slice(self, member: tarfile.TarInfo) -> IO[bytes]:
        # Not tar.extractfile: it refuses a cut member's data outright, where the bytes
        # that are there still hold whole messages.
        fh = self.path.open("rb")
        fh.seek(member.offset_data)
        return _Slice(fh, member.size)

    def _folder_media(self, folder: Path) -> Iterator[ExportItem]:
        names = [f"media/{p.name}" for p in sorted(folder.iterdir()) if p.is_file()]
        for source in _media_sources(names):
            yield self._media_item(
                source,
                lambda name: (self.path.parent / name).open("rb"),
                lambda name: True,
            )

    def _media_item(
        self,
        source: _MediaSource,
        open_member: Callable[[str], IO[bytes]],
        complete: Callable[[str], bool],
    ) -> ExportItem:
        place_name = source.meta_name or source.content_name or source.docid
        meta: dict[str, Any] | None = None
        if source.meta_name is not None:
            try:
                fh = open_member(source.meta_name)
                with fh:
                    loaded = json.load(fh)
                if isinstance(loaded, dict):
                    meta = loaded
                else:
                    self.errors.append(FileError(f"member {source.meta_name}", "not an object"))
            except (ValueError, tarfile.TarError, OSError) as exc:
                self.errors.append(
                    FileError(f"member {source.meta_name}", f"unreadable: {_first_line(exc)}")
                )
        sha = size = name = None
        if source.content_name is not None:
            if complete(source.content_name):
                with open_member(source.content_name) as fh:
                    sha, size = archive_media(fh, self.media_root)
                name = PurePosixPath(source.content_name).name
            else:
                self.errors.append(
                    FileError(f"member {source.content_name}", "cut off by the truncation")
                )
        return ExportItem(
            "media",
            {"member": place_name},
            conversation=None,
            media={"docid": source.docid, "meta": meta, "sha256": sha, "size": size, "name": name},
        )


class _Stop(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _place_text(place: dict[str, Any]) -> str:
    if "member" in place:
        return f"member {place['member']}"
    return f"conversations[{place['conversation']}].MessageList[{place['message']}]"
