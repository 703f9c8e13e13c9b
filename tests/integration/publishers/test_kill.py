"""`publish` killed with SIGKILL at 20 random points while the store grows: no half-written
file is ever in place, and the site, feeds and search index end identical to one
uninterrupted publish of the same store."""

from __future__ import annotations

import random
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from whoosh import index as whoosh_index

from chatchannels.publishers.placements import DB_FILE
from chatchannels.publishers.publishing import index_dir, publish
from tests.support.faults import index_documents, private_stack, site_files, start_cli
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

KILLS = 20
CHATS = [f"#owner/$chat{n};{n:016x}" for n in range(8)]
START = datetime(2006, 1, 1, tzinfo=UTC)


def grow(seeder: StoreSeeder, rng: random.Random, round_: int, per_round: int = 250) -> None:
    """New messages over a year of eight chats, and edits, deletions and moves of older ones
    (a move changes a message's month, so two pages change)."""
    rows = []
    for k in range(per_round):
        n = round_ * per_round + k
        posted = START + timedelta(minutes=rng.randrange(365 * 24 * 60))
        author = f"user{n % 5}"
        rows.append((f"m{n:06d}", rng.choice(CHATS), author, author.title(), posted, f"text {n}"))
    seeder.bulk_messages(rows)
    if round_:
        older = rng.sample(range(round_ * per_round), 6)
        seeder.edit(f"m{older[0]:06d}", f"edited in round {round_}", "user0", START)
        seeder.delete(f"m{older[1]:06d}", "user1", START)
        seeder.move(f"m{older[2]:06d}", START + timedelta(days=rng.randrange(365)))


def served_files_are_whole(site: Path) -> None:
    """Every file a reader could be served is complete (write_atomic: temp + rename)."""
    for path in site.rglob("*"):
        rel = path.relative_to(site)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), rel
        elif path.suffix == ".atom":
            assert not feedparser.parse(data).bozo, rel


def test_publish_killed_at_20_random_points_ends_as_one_uninterrupted_publish(
    stack, private_stack_dir, tmp_path
) -> None:
    with private_stack(stack, private_stack_dir, kafka=False) as settings:
        dsn = settings.postgres_dsn
        site, log = tmp_path / "site", tmp_path / "publish.log"
        rng = random.Random(20)
        seeder = StoreSeeder(dsn)
        seeder.user("user0", "User Zero")
        seeder.chat(CHATS[0], "the first chat", ["user0", "user1"])
        kills = runs = 0
        # Where to kill: at a random point of a run. A run that ends before its kill shows how
        # long runs take here, and later kills aim within that, so KILLS of them land on a
        # fast machine as on a slow one.
        span = 3.0
        try:
            while kills < KILLS:
                assert runs < KILLS * 3, f"only {kills} of {KILLS} kills landed in {runs} runs"
                grow(seeder, rng, runs)
                runs += 1
                started = time.monotonic()
                proc = start_cli(
                    settings, log, "publish", "--once", "--site-dir", str(site),
                    "--batch-size", "100",
                )  # fmt: skip
                time.sleep(rng.uniform(0.3, 1.0) * span)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                else:
                    span = time.monotonic() - started
                proc.wait(timeout=30)
                served_files_are_whole(site)
        finally:
            seeder.close()
        finisher = start_cli(settings, log, "publish", "--once", "--site-dir", str(site))
        assert finisher.wait(timeout=300) == 0, log.read_text()[-3000:]

        reference = tmp_path / "reference"
        publish(dsn, reference, once=True, media_dir=settings.media_root)

    killed_files = site_files(site, dot_files=True)
    # The placements' SQLite file is compared by what `serve` and the feeds show; its bytes
    # are SQLite's own (page layout depends on the history of writes).
    del killed_files[DB_FILE]
    reference_files = site_files(reference, dot_files=True)
    del reference_files[DB_FILE]
    assert killed_files == reference_files
    assert index_documents(site) == index_documents(reference)
    assert our_index_files(index_dir(site)) == our_index_files(index_dir(reference))
    assert not list(site.rglob(".*.tmp-*")), "a killed publisher's temporary file was left"
    # Nothing a killed index writer left (segments never committed, temporary tables of
    # contents). How many committed segments there are depends on where the kills fell.
    assert unreferenced_index_files(index_dir(site)) == []


def our_index_files(folder: Path) -> dict[str, bytes]:
    """The files we keep beside Whoosh's (its watermark, the chats' titles): dot-files."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith(".")}


def unreferenced_index_files(folder: Path) -> list[str]:
    """Whoosh's files in the index folder that its current table of contents does not name
    (its lock file aside; our own files beside them are dot-files: our_index_files)."""
    ix = whoosh_index.open_dir(str(folder))
    try:
        named = {segment.make_filename(".seg") for segment in ix._segments()}
        named |= {f"_MAIN_{ix.latest_generation()}.toc", "MAIN_WRITELOCK"}
    finally:
        ix.close()
    return sorted(
        p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name not in named
    )
