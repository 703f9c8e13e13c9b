"""The site on a file system that fills up: `publish --once` fails with one line saying so,
a following `publish` waits for space (one log line a try), and once there is room the site
ends as one publish with room all along would have made it."""

from __future__ import annotations

import random
import re

import pytest

from chatchannels.publishers.publishing import publish
from tests.support.faults import (
    fill,
    index_documents,
    private_stack,
    run_cli,
    site_files,
    site_settled,
    start_cli,
    stop_process,
    tmpfs,
    wait_until,
)
from tests.support.publishers_seeding import StoreSeeder

pytestmark = pytest.mark.integration

WAITING = re.compile(
    r"waiting for space to write the outputs: no space left on the device.*attempt"
)


def seed(seeder: StoreSeeder, first: int, count: int) -> None:
    from datetime import UTC, datetime, timedelta

    rng = random.Random(first)
    start = datetime(2006, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(first, first + count):
        posted = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
        chat = f"#owner/$chat{n % 6};{n % 6:016x}"
        rows.append((f"m{n:06d}", chat, f"user{n % 4}", f"User {n % 4}", posted, f"words {n}"))
    seeder.bulk_messages(rows)


def test_site_disk_full_publish_fails_in_one_line_then_resumes(
    stack, private_stack_dir, tmp_path
) -> None:
    with private_stack(stack, private_stack_dir, kafka=False) as settings:
        dsn = settings.postgres_dsn
        seeder = StoreSeeder(dsn)
        log = tmp_path / "publish.log"
        try:
            seed(seeder, 0, 1500)
            with tmpfs(tmp_path / "sitefs", "16m") as volume:
                site = volume / "site"
                once = ["publish", "--once", "--site-dir", str(site)]
                assert start_cli(settings, log, *once).wait(timeout=120) == 0, log.read_text()
                seed(seeder, 1500, 1500)
                filler = fill(volume)

                full = run_cli(settings, *once)
                assert full.returncode == 2, full
                assert full.stdout == "", full.stdout
                [line] = full.stderr.splitlines()
                assert line.startswith(f"Error: cannot write the site in {site}: no space left"), (
                    line
                )
                assert line.endswith("; free some space and publish again"), line

                follower = start_cli(
                    settings, log, "publish", "--site-dir", str(site), "--poll", "1"
                )
                try:
                    wait_until(
                        "the publisher to wait for space",
                        lambda: len(WAITING.findall(log.read_text())) >= 3,
                        60,
                        follower,
                    )
                    filler.unlink()
                    seed(seeder, 3000, 200)  # and the store goes on growing
                    wait_until(
                        "the site to catch up",
                        lambda: site_settled(site) == seeder.seq,
                        120,
                        follower,
                    )
                finally:
                    stop_process(follower)
                published = site_files(site, dot_files=False), index_documents(site)
        finally:
            seeder.close()
        reference = tmp_path / "reference"
        publish(dsn, reference, once=True, media_dir=settings.media_root)
    assert published == (site_files(reference, dot_files=False), index_documents(reference))
