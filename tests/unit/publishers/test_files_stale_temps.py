"""What a publisher killed between write and rename leaves is swept by the next one, and
only that: a live writer's temporary file and the site's own files stay."""

from __future__ import annotations

import os
import subprocess
import sys

from chatchannels.publishers.files import remove_stale_temps, write_atomic


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_files_of_dead_writers_go_and_nothing_else(tmp_path) -> None:
    write_atomic(tmp_path, "chats/a/2006-01.html", b"<html></html>")
    dead = tmp_path / "chats" / "a" / f".2006-02.html.tmp-{dead_pid()}"
    dead.write_bytes(b"<html><bo")
    live = tmp_path / f".index.html.tmp-{os.getpid()}"
    live.write_bytes(b"being written")
    odd = tmp_path / ".notes.tmp-later"
    odd.write_bytes(b"not ours")

    assert remove_stale_temps(tmp_path) == [dead]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        ".index.html.tmp-" + str(os.getpid()),
        ".notes.tmp-later",
        "chats/a/2006-01.html",
    ]
