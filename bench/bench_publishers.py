"""Publishers: index build rate, search latency, full site render, on N seeded messages.

`python -m bench.bench_publishers [--quick] [-n N] [--search-only]` (or `make bench`, which
passes nothing; `--search-only` stops after the searches, before the site render):
seeds N messages (200,000 by default, 20,000 with --quick) into a fresh database on the
stack, then measures, from zero, as `chatchannels publish` does it:
- the search index build through the change stream (target >= 2,500 messages/s), against the
  ceiling of bare Whoosh adding the same documents in one writer;
- search latency p50/p95 over a fixed set of queries (target p95 < 10 ms), unfiltered and as
  two readers see it (only their chats, publishers/access/gate.py): one who reads a few
  chats and one who reads most; the difference is what the permission filter costs;
- the full site render (pages and feeds) from zero, with its statistics pages and, in the
  same run, without them: the difference is what statistics add.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.report import Figure, report
from chatchannels.publishers import paths
from chatchannels.publishers.changes import catch_up, run_publishers
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.search_index import (
    POOL_MB,
    SearchDocument,
    SearchPublisher,
    WhooshBackend,
    whoosh_fields,
    whoosh_schema,
)
from chatchannels.publishers.site import SitePublisher
from chatchannels.publishers.statistics import Statistics
from chatchannels.publishers.store import read_messages
from chatchannels.publishers.tallies import Tallies
from chatchannels.settings import Settings, load_settings
from chatchannels.stack.postgres import database_dsn, drop_database, ensure_database
from tests.support.publishers_seeding import StoreSeeder

DEFAULT_N = 200_000
QUICK_N = 20_000
CHATS = 40
AUTHORS = 30
MONTHS = 36
BATCH = 50_000
QUERIES = [
    "meeting",
    "release schedule",
    '"the build"',
    "deploy OR rollback",
    "server -test",
    "author:user7",
    "chat:chat3 budget",
    "date:2007-03 review",
    "after:2008-01-01 before:2008-02-01",
    "coffee NOT lunch",
    '"please review" author:user12',
    "zebra",
]
# Chat text follows Zipf's law; the query words sit at ranks from very common to rare.
VOCABULARY_SIZE = 5000
PLACED = {
    "the": 0,
    "please": 60,
    "build": 100,
    "test": 120,
    "server": 150,
    "meeting": 50,
    "release": 200,
    "review": 250,
    "schedule": 300,
    "deploy": 400,
    "lunch": 500,
    "coffee": 600,
    "budget": 800,
    "rollback": 2000,
    "zebra": 4800,
}


def chat_name(number: int) -> str:
    return f"#chat{number}/$peer;{number:x}"


# Two readers' visible chats (gate.py), one in a few chats, one in most, beside everything.
UNFILTERED = "unfiltered (an administrator)"
READERS = {
    UNFILTERED: None,
    "a reader of 3 of 40 chats": frozenset(chat_name(c) for c in (3, 17, 29)),
    "a reader of 36 of 40 chats": frozenset(chat_name(c) for c in range(4, CHATS)),
}


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnoprstuvwy"
    words = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(VOCABULARY_SIZE)]
    for word, rank in PLACED.items():
        words[rank] = word
    return words


def seed_rows(n: int, rng: random.Random):
    start = datetime(2006, 1, 1, tzinfo=UTC)
    step = MONTHS * 30 * 24 * 3600 / n
    words = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    for i in range(n):
        author = f"user{rng.randrange(AUTHORS)}"
        chat = rng.randrange(CHATS)
        body = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(4, 30)))
        posted = start + timedelta(seconds=int(i * step))
        yield (f"m{i:08x}", chat_name(chat), author, author.title(), posted, body)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(dsn: str, n: int, work: Path, search_only: bool = False) -> list[Figure]:
    seeder = StoreSeeder(dsn)
    t0 = time.perf_counter()
    seeder.bulk_messages(seed_rows(n, random.Random(2006)))
    seeder.conn.execute("ANALYZE")
    seeder.close()
    seed_s = time.perf_counter() - t0

    backend = WhooshBackend(work / "index")
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    with psycopg.connect(dsn, autocommit=True) as conn:
        built = catch_up(conn, SearchPublisher(backend), BATCH)
    index_s, index_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    t0 = time.perf_counter()
    backend.maintain()  # what `publish` does once it is idle
    merge_s = time.perf_counter() - t0
    assert built.changes == n, built

    # Each query without a filter and as two readers see it (publishers/access/gate.py), in
    # turn, so that the machine's neighbours weigh on the three alike; CPU time too, which
    # the neighbours do not inflate.
    per_query: dict[str, list[float]] = {query: [] for query in QUERIES}
    wall: dict[str, list[float]] = {reader: [] for reader in READERS}
    cpu: dict[str, list[float]] = {reader: [] for reader in READERS}
    for _ in range(20):
        for query in QUERIES:
            for reader, chats in READERS.items():
                q0, c0 = time.perf_counter(), time.process_time()
                backend.search(query, limit=20, chats=chats)
                wall[reader].append((time.perf_counter() - q0) * 1000)
                cpu[reader].append((time.process_time() - c0) * 1000)
            per_query[query].append(wall[UNFILTERED][-1])
    latencies = wall[UNFILTERED]
    # A stop word matches most messages; no index makes that cheap, so it is reported apart.
    common: list[float] = []
    for _ in range(5):
        q0 = time.perf_counter()
        backend.search("the", limit=20)
        common.append((time.perf_counter() - q0) * 1000)
    backend.close()

    ceiling_rate = None if search_only else bare_whoosh_rate(dsn, min(n, 20_000), work / "bare")
    searched = [
        Figure(f"seed {n:,} messages (COPY)", n / seed_s, "messages/s"),
        Figure(
            "search index build from the change stream", n / index_s, "messages/s", ceiling_rate
        ),
        Figure("index merge when idle (after the build)", merge_s, "s"),
        # On a shared machine wall time measures the neighbours too; CPU time does not.
        Figure(
            "search index build per CPU second (publisher and its writers)",
            n / index_cpu,
            "messages/s",
        ),
        Figure(
            f"search latency p50 ({len(QUERIES)} queries x 20)", statistics.median(latencies), "ms"
        ),
        Figure("search latency p95 (target < 10 ms)", percentile(latencies, 0.95), "ms"),
        *(
            figure
            for reader in READERS
            for figure in (
                Figure(f"search latency p50, {reader}", statistics.median(wall[reader]), "ms"),
                Figure(
                    f"search latency p95, {reader} (target < 10 ms)",
                    percentile(wall[reader], 0.95),
                    "ms",
                ),
                Figure(f"search CPU time p50, {reader}", statistics.median(cpu[reader]), "ms"),
                Figure(f"search CPU time p95, {reader}", percentile(cpu[reader], 0.95), "ms"),
            )
        ),
        *(
            Figure(
                f"cost of the permission filter, CPU p50, {reader}",
                statistics.median(cpu[reader]) - statistics.median(cpu[UNFILTERED]),
                "ms",
            )
            for reader in READERS
            if reader != UNFILTERED
        ),
        *(
            Figure(f"search latency median: {query}", statistics.median(times), "ms")
            for query, times in per_query.items()
        ),
        Figure("search latency, stop word alone (median of 5)", statistics.median(common), "ms"),
    ]
    if search_only:
        return searched

    # With statistics first: the second render finds the store warmer, so what statistics
    # add is, if anything, overstated.
    with statistics_timed() as stats_s:
        site_s, site_cpu, site = render_site(dsn, work / "site")
    with statistics_left_out():
        bare_s, bare_cpu, _ = render_site(dsn, work / "site-without-statistics")
    stats_page = (work / "site" / paths.STATS_PATH).stat().st_size
    largest = max((p.stat().st_size for p in (work / "site").rglob("*.html")), default=0)
    return [
        *searched,
        Figure("full site render (pages + feeds) from zero", site_s, "s"),
        Figure("full site render rate", n / site_s, "messages/s"),
        Figure("full site render CPU time (publisher process)", site_cpu, "s"),
        Figure("site files written", site.pages_written, "files"),
        Figure("full site render from zero without statistics (same run)", bare_s, "s"),
        Figure("time statistics add to the site from zero", site_s - bare_s, "s"),
        Figure("CPU time statistics add (publisher process)", site_cpu - bare_cpu, "s"),
        # Inside the render with statistics: wall time in their own calls, the queries'
        # waits included; less exposed to the neighbours than the difference of two renders.
        Figure("statistics: counting (PostgreSQL into the tallies)", stats_s["refresh"], "s"),
        Figure("statistics: summing the tallies and rendering the pages", stats_s["pages"], "s"),
        Figure("archive statistics page size", stats_page / 1024, "KiB"),
        Figure("largest page (target < 2 MB)", largest / 1e6, "MB"),
    ]


def render_site(dsn: str, where: Path) -> tuple[float, float, SitePublisher]:
    """The site from zero as `publish` renders it: wall seconds, CPU seconds, the publisher."""
    site = SitePublisher(where)
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        run_publishers(dsn, [site], once=True, batch_size=BATCH)
    finally:
        site.close()
    return time.perf_counter() - t0, time.process_time() - cpu0, site


@contextlib.contextmanager
def statistics_timed():
    """Seconds spent counting (Tallies.refresh) and in the statistics pages (Tallies.read
    and PageRenderer.stats_page) while the block runs."""
    spent = {"refresh": 0.0, "pages": 0.0}
    saved = Tallies.refresh, Tallies.read, PageRenderer.stats_page

    def timed(call, into):
        def wrapper(*args):
            t0 = time.perf_counter()
            try:
                return call(*args)
            finally:
                spent[into] += time.perf_counter() - t0

        return wrapper

    Tallies.refresh = timed(saved[0], "refresh")
    Tallies.read = timed(saved[1], "pages")
    PageRenderer.stats_page = timed(saved[2], "pages")
    try:
        yield spent
    finally:
        Tallies.refresh, Tallies.read, PageRenderer.stats_page = saved


@contextlib.contextmanager
def statistics_left_out():
    """The site publisher as it was before statistics: nothing counted, no page rendered."""
    saved = Tallies.refresh, Tallies.read, PageRenderer.stats_page
    Tallies.refresh = lambda self, conn, chats: None
    Tallies.read = lambda self, chat: Statistics((), (), ())
    PageRenderer.stats_page = lambda self, chat, stats: ""
    try:
        yield
    finally:
        Tallies.refresh, Tallies.read, PageRenderer.stats_page = saved


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (the index writers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def bare_whoosh_rate(dsn: str, n: int, where: Path) -> float:
    """The ceiling: Whoosh alone adding the same documents, read in one query, in one process
    and one commit, with the publisher's memory for sorting postings."""
    from whoosh import index

    with psycopg.connect(dsn) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM messages LIMIT %s", (n,))]
        docs = [SearchDocument.of(m) for m in read_messages(conn, ids)]
    where.mkdir(parents=True)
    ix = index.create_in(str(where), whoosh_schema())
    t0 = time.perf_counter()
    writer = ix.writer(limitmb=POOL_MB)
    for doc in docs:
        writer.add_document(**whoosh_fields(doc))
    writer.commit(merge=False)
    elapsed = time.perf_counter() - t0
    ix.close()
    return len(docs) / elapsed


def run(
    settings: Settings | None = None, n: int = DEFAULT_N, search_only: bool = False
) -> list[Figure]:
    settings = settings or load_settings()
    name = f"bench_publishers_{uuid.uuid4().hex[:8]}"
    ensure_database(settings, name)
    dsn = database_dsn(settings, name)
    work = Path(tempfile.mkdtemp(prefix="bench-publishers-"))
    try:
        figures = measure(dsn, n, work, search_only)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        drop_database(settings, name)
    report(f"publishers on {n:,} messages (ceiling: bare Whoosh add, same documents)", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} messages")
    parser.add_argument("-n", type=int, default=None, help="messages to seed")
    parser.add_argument(
        "--search-only", action="store_true", help="the index build and searches, no site render"
    )
    args = parser.parse_args()
    from chatchannels.stack.manager import stack_up

    base = load_settings()
    stack_up(base)
    run(base, args.n or (QUICK_N if args.quick else DEFAULT_N), args.search_only)
