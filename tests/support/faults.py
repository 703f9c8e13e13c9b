"""Helpers for the fault tests (tests/integration/*/test_*outage*, *_kill*, *_disk_full*,
*_restart*): a private stack a test may stop and start, the CLI as a real process whose
output goes to a file, a tmpfs of a given size, and the published site read back for
comparison."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER
from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.publishing import index_dir
from chatchannels.publishers.search_index import STATE_FILE as INDEX_STATE_FILE
from chatchannels.publishers.site import STATE_FILE
from chatchannels.settings import Settings, settings_env
from chatchannels.stack.manager import stack_down, stack_up
from chatchannels.stack.postgres import ensure_database, start_postgres, wait_postgres_ready
from tests.support.stack import private_stack_settings


@contextlib.contextmanager
def private_stack(shared: Settings, root: Path, *, kafka: bool = True) -> Iterator[Settings]:
    """A stack of the test's own on free ports (Kafka only if asked), stopped however the
    test ends. `root` must be a folder the `postgres` user can enter (private_stack_dir)."""
    settings = private_stack_settings(shared, root)
    try:
        if kafka:
            stack_up(settings)
        else:
            start_postgres(settings)
            wait_postgres_ready(settings)
            ensure_database(settings)
        yield settings
    finally:
        stack_down(settings)


def start_cli(settings: Settings, log: Path, *args: str) -> subprocess.Popen:
    """`chatchannels ARGS` on `settings`' stack; stdout and stderr go to `log` (a pipe
    nobody reads would stall a chatty process)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "chatchannels.cli", *args],
            env={**os.environ, **settings_env(settings)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def run_cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`chatchannels ARGS` on `settings`' stack, to its end; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "chatchannels.cli", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL if it is still there after `timeout`; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def wait_until(what: str, probe: Callable[[], object], timeout: float, *procs) -> None:
    """Poll `probe` until it is true; fail naming `what` on timeout, or at once if one of
    `procs` (subprocess.Popen) exited."""
    deadline = time.monotonic() + timeout
    while not probe():
        for proc in procs:
            assert proc.poll() is None, (
                f"{proc.args[2:5]} exited ({proc.returncode}) while waiting for {what}"
            )
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.2)


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "2m") mounted on `where` (created), unmounted however the
    test ends. Needs root, as the tests run here and in CI."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(where: Path, name: str = "filler") -> Path:
    """Fill the file system under `where` up to its last byte with one file."""
    filler = where / name
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    return filler


def site_files(site: Path, *, dot_files: bool) -> dict[str, str]:
    """Path -> SHA-256 of every file of the site (links by their target), the search
    index left out (Whoosh names its segments at random: see index_documents). With
    `dot_files` False, only what `serve` serves."""
    found = {}
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site)
        if rel.parts[0] == index_dir(site).name:
            continue
        if not dot_files and any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink():
            found[str(rel)] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def site_settled(site: Path) -> int | None:
    """The change_seq the site and its search index have both published, pages rendered:
    their watermark once they agree and no page waits to be rendered (the site's watermark
    moves before the pages of a catch-up are written), else None."""
    try:
        watermark = json.loads((site / STATE_FILE).read_text())["change_seq"]
        indexed = json.loads((index_dir(site) / INDEX_STATE_FILE).read_text())["change_seq"]
        db = sqlite3.connect(f"file:{site / DB_FILE}?mode=ro", uri=True, timeout=5)
    except (FileNotFoundError, sqlite3.OperationalError):
        return None
    try:
        (pending,) = db.execute("SELECT count(*) FROM pending").fetchone()
    finally:
        db.close()
    return None if pending or indexed != watermark else watermark


def index_documents(site: Path) -> list[tuple]:
    """Every document of the site's search index, all its stored fields, sorted, and the
    index's watermark."""
    from chatchannels.publishers.search_index import WhooshBackend

    backend = WhooshBackend(index_dir(site), create=False)
    try:
        with backend.ix.searcher() as searcher:
            docs = sorted(tuple(sorted(d.items())) for d in searcher.all_stored_fields())
        return [("watermark", backend.watermark()), *docs]
    finally:
        backend.close()


def consumed(dsn: str, topic: str) -> int:
    """Records the default processor has taken from `topic`, by its stored offsets."""
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM offsets WHERE consumer = %s AND topic = %s",
            (DEFAULT_CONSUMER, topic),
        ).fetchone()
    return int(row[0])
