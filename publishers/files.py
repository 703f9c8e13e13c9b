"""Writing the site's files: atomically (temp + rename), and only when the bytes change."""

from __future__ import annotations

import os
from pathlib import Path


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
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with open(temp, "wb") as handle:
        handle.write(data)
    os.replace(temp, target)
    return True


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
