"""Writing the site's files: atomically (temp + rename), and only when the bytes change."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from chatchannels.stack.processes import pid_alive

_FULL = (errno.ENOSPC, errno.EDQUOT)
# write_atomic's temporary files: `.<name>.tmp-<pid>` beside the target.
_TEMP_MARK = ".tmp-"


class OutputFull(Exception):
    """The file system under a publisher's output has no room left; the message says which
    file could not be written. Nothing half-written is left in place (write_atomic)."""


@contextlib.contextmanager
def output_full_as_error() -> Iterator[None]:
    """A full disk met by any writer of the outputs (pages, the placements' SQLite file,
    the Whoosh index) as one OutputFull with a one-line message."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        raise OutputFull(f"no space left on the device{where}") from exc
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            raise
        raise OutputFull(f"no space left on the device ({exc})") from exc


def write_atomic(root: Path, rel: str, data: bytes) -> bool:
    """Write root/rel so that a reader sees the old or the new file, never half of one.

    Returns False (and touches nothing) when the file already holds exactly these bytes.
    Not synced to disk one by one: a publisher calls `sync_to_disk` once per batch, before
    it records its watermark, so a crash loses at most pages it will render again.
    `rel` comes from publishers.paths, whose components are encoded; we check anyway that it
    stays inside root.
    """
    target = _inside(root, rel)
    try:
        if target.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}{_TEMP_MARK}{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    except BaseException as exc:
        temp.unlink(missing_ok=True)  # half of a file, on a full disk
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(target)  # a failed write() does not say which file
        raise
    return True


def remove_stale_temps(root: Path) -> list[Path]:
    """Remove what write_atomic calls of processes that died before their rename (a
    publisher killed mid-write): half-written files nobody will finish."""
    removed = []
    for temp in root.rglob(f".*{_TEMP_MARK}*"):
        pid = temp.name.rsplit(_TEMP_MARK, 1)[1]
        if pid.isdigit() and not pid_alive(int(pid)) and temp.is_file():
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def sync_to_disk() -> None:
    """Flush everything written so far (one sync per batch instead of one fsync per page)."""
    os.sync()


def remove_file(root: Path, rel: str) -> bool:
    target = _inside(root, rel)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    # An emptied chat folder goes too, so a removed chat leaves nothing behind.
    parent = target.parent
    if parent != root and not any(parent.iterdir()):
        parent.rmdir()
    return True


def file_exists(root: Path, rel: str) -> bool:
    return _inside(root, rel).is_file()


def _inside(root: Path, rel: str) -> Path:
    parts = rel.split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"refusing to write {rel!r}: not a plain path inside the site {root}")
    return root.joinpath(*parts)
