"""`chatchannels publish --metrics-port` and `serve`'s /metrics: Prometheus scrapes over HTTP
while they run on the real PostgreSQL; and the month manifests the publisher writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime

import psycopg
import pytest

from chatchannels.publishers.site import read_site_manifests, store_manifests
from tests.support.publishers_seeding import StoreSeeder
from tests.support.scrape import scrape, scrape_until
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

CHAT = "#alice/$bob;1"
PUBLISHER_METRICS = {
    "chatchannels_publisher_batches",
    "chatchannels_publisher_changes",
    "chatchannels_publisher_batch_duration_seconds",
    "chatchannels_publisher_catch_up_duration_seconds",
    "chatchannels_publisher_watermark_change_seq",
    "chatchannels_publisher_lag_changes",
}
SERVE_METRICS = {"chatchannels_serve_requests", "chatchannels_serve_search_duration_seconds"}


def t(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


def start(stack, pg_dsn: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, CHATCHANNELS_STACK_DIR=str(stack.stack_dir), CHATCHANNELS_DSN=pg_dsn)
    return subprocess.Popen(
        [sys.executable, "-m", "chatchannels.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=60)


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def watermark_at(seq: int):
    def ready(samples) -> bool:
        return all(
            samples.get(("chatchannels_publisher_watermark_change_seq", (("publisher", p),))) == seq
            for p in ("site", "search")
        )

    return ready


@pytest.fixture
def seeder(pg_dsn):
    seeder = StoreSeeder(pg_dsn)
    yield seeder
    seeder.close()


def test_scrapes_of_the_running_publisher_and_serve_have_their_metrics(
    stack, pg_dsn, seeder, tmp_path
):
    site = tmp_path / "site"
    seeder.chat(CHAT, "planning", ["alice", "bob"])
    seeder.message("m1", CHAT, "alice", t(4, 3), "hello bob", "Alice")
    seeder.message("m2", CHAT, "bob", t(5, 1), "hello in May", "Bob")
    port = free_port()
    publisher = start(
        stack,
        pg_dsn,
        "publish",
        "--site-dir",
        str(site),
        "--poll",
        "0.5",
        "--metrics-port",
        str(port),
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        scrape_until(url, watermark_at(seeder.seq), f"both publishers at change {seeder.seq}")
        before = read_site_manifests(site)
        seeder.edit("m2", "hello in May, edited", "bob", t(5, 2))
        names, samples = scrape_until(
            url, watermark_at(seeder.seq), f"both publishers at change {seeder.seq}"
        )
        assert publisher.poll() is None
    finally:
        stop(publisher)
    assert names >= PUBLISHER_METRICS, PUBLISHER_METRICS - names
    for p in ("site", "search"):
        assert samples[("chatchannels_publisher_lag_changes", (("publisher", p),))] == 0
        assert samples[("chatchannels_publisher_changes_total", (("publisher", p),))] == seeder.seq

    # The manifests: one a chat-month, as the store gives them; the edit moved May's only.
    after = read_site_manifests(site)
    assert set(after) == {(CHAT, "2026-04"), (CHAT, "2026-05")}
    with psycopg.connect(pg_dsn) as conn:
        assert store_manifests(conn) == after
    assert after[(CHAT, "2026-04")] == before[(CHAT, "2026-04")]
    assert after[(CHAT, "2026-05")] != before[(CHAT, "2026-05")]
    [may] = site.glob("chats/*/2026-05.manifest.json")
    assert json.loads(may.read_text())["revisions"] == 2

    port = free_port()
    server = start(stack, pg_dsn, "serve", "--site-dir", str(site), "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        scrape_until(f"{base}/metrics", lambda s: True, "serve to answer")
        assert get(f"{base}/search.json?q=hello") == 200
        assert get(f"{base}/search.json?q=hello&sort=sideways") == 400
        assert get(f"{base}/no-such-page.html") == 404
        names, samples = scrape(f"{base}/metrics")
    finally:
        stop(server)
    assert names >= SERVE_METRICS, SERVE_METRICS - names

    def requests(route: str, code: str) -> float:
        return samples.get(
            ("chatchannels_serve_requests_total", (("code", code), ("route", route))), 0
        )

    assert requests("search_json", "200") == 1
    assert requests("search_json", "400") == 1
    assert requests("static", "404") == 1
    # The first scrape, answered before it was counted.
    assert requests("metrics", "200") == 1
    histogram = ("chatchannels_serve_search_duration_seconds_count", (("format", "json"),))
    assert samples[histogram] == 2
