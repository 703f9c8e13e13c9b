"""Import: a 200,000-message main.db into the log, the store, the site and the index.

A deterministic main.db from tests/data/skype/gen_maindb.py (the plaso file's schema, Zipf
words, Skype markup, planted needles) is imported with `chatchannels import`, as a user runs
it. First alone, into a topic nobody reads, for the import's own rate; then again into a
fresh topic, with the processor, the site publisher and the search publisher already
following it, each in a process of its own, as a deployment runs them (they take turns with
the import on two cores, which is why its rate is measured alone). Figures:
- the import into Kafka (spooled and acknowledged), messages/s, next to the produce ceiling:
  a bare idempotent acks=all producer sending the same encoded events;
- the store caught up (every event consumed), from the start of the import;
- browsable (every page rendered) and searchable (every message indexed), from the start
  of the import, next to Skyperious' 56-65 s HTML export of the same file (its README);
- search latency of the planted needles, next to Skyperious' 1.8-3.7 s per search; the hit
  counts are checked (3, 40 and 1), so a lost or doubled message fails the bench;
- a second import of the same history from a machine whose clock was 47 s fast (`shift`):
  messages added (target 0) and the time until the store has taken it in;
- peak RSS of the importing process.

`python -m bench.bench_import [--quick] [--messages N]`; quick: 20,000 messages. Under
`python -m bench`, BENCH_IMPORT_MESSAGES sets the number.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from bench import children
from bench.cpu import peak_rss_mb
from bench.report import Figure, bench_main, report
from chatchannels.kafka_auth import client_options
from chatchannels.settings import Settings
from chatchannels.stack.processes import die_with_parent

N_FULL, N_QUICK = 200_000, 20_000
GENERATOR = Path(__file__).resolve().parent.parent / "tests" / "data" / "skype" / "gen_maindb.py"
SKYPERIOUS_HTML_S = (56.0, 65.0)
SKYPERIOUS_SEARCH_S = (1.8, 3.7)
TARGET_SEARCHABLE_S = 90.0
# The needles gen_maindb.py plants, with how many messages hold each.
NEEDLES = {"zanzibarquux": 3, '"purple elephant parade"': 40, "quokkaflux": 1}
SHIFT_S = 47
DEADLINE_S = 900.0


def _generate(out: Path, messages: int) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "make", str(out), "--messages", str(messages)],
        check=True,
        timeout=DEADLINE_S,
        stdout=subprocess.DEVNULL,
    )


def _shift(src: Path, dst: Path, seconds: int) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "shift", str(src), str(dst), str(seconds)],
        check=True,
        timeout=DEADLINE_S,
        stdout=subprocess.DEVNULL,
    )


def _follow_processor(settings: Settings, topic: str) -> None:
    from chatchannels.processors.consumer import ProcessOptions, run_processor

    die_with_parent()
    run_processor(settings, ProcessOptions(topic=topic, batch_records=20_000))


def _caught_up_once(log: Path) -> bool:
    """Whether a follower has finished its first catch-up (of the empty store): it is
    following, as a running `publish` would be when the import starts."""
    return log.exists() and bool(log.read_text())


def _follow_publisher(dsn: str, site_dir: Path, which: str, log: Path) -> None:
    """`publish --only <which>`, following the store; after each complete catch-up (pages
    rendered, index committed) its watermark and time are appended to `log`, which the
    bench reads."""
    from chatchannels.publishers.metrics import PublisherMetrics
    from chatchannels.publishers.publishing import publish

    class Logged(PublisherMetrics):
        # catch_up reports a complete catch-up, then the watermark it reached.
        complete = False

        def caught_up_with(self, name: str, seconds: float | None) -> None:
            super().caught_up_with(name, seconds)
            self.complete = True

        def position(self, name: str, watermark: int, newest: int) -> None:
            super().position(name, watermark, newest)
            if self.complete:
                self.complete = False
                with log.open("a") as out:
                    out.write(json.dumps({"at": time.time(), "seq": watermark}) + "\n")

    die_with_parent()
    publish(dsn, site_dir, once=False, only=(which,), metrics=Logged())


def _wait(what: str, check: Callable[[], object], seen: Callable[[], object]) -> float:
    """Poll `check` until it is truthy; the wall time when it was; fail saying what was
    seen when the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if check():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench_import: {what} not seen in {DEADLINE_S:.0f} s: {seen()}")
        # A count in the store and lines in the followers' logs: nothing to wait on but them;
        # 0.1 s is the resolution of the times the bench reports.
        time.sleep(0.1)


def _publisher_at(log: Path, seq: int) -> float | None:
    """When a publisher's catch-up first reached `seq`, from its log."""
    if not log.exists():
        return None
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["seq"] >= seq:
            return entry["at"]
    return None


class _Store:
    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def one(self, query: str) -> int:
        return self.conn.execute(query).fetchone()[0]

    def consumed(self) -> int:
        return self.one("SELECT coalesce(sum(consumed), 0) FROM offsets")

    def messages(self) -> int:
        return self.one("SELECT count(*) FROM messages")

    def last_seq(self) -> int:
        return self.one("SELECT coalesce(max(change_seq), 0) FROM changes")

    def close(self) -> None:
        self.conn.close()


def _produce_ceiling(settings: Settings, values: list[bytes], key: bytes) -> float:
    """Records/s of a bare idempotent acks=all producer sending these values."""
    from kafka import KafkaAdminClient, KafkaProducer

    from chatchannels.stack.kafka import ensure_topic

    topic = f"bench.import.ceiling.{uuid.uuid4().hex[:8]}"
    ensure_topic(settings, topic, partitions=1)
    producer = KafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    try:
        started = time.perf_counter()
        for value in values:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=DEADLINE_S)
        return len(values) / (time.perf_counter() - started)
    finally:
        producer.close()
        admin = KafkaAdminClient(**client_options(settings))
        admin.delete_topics([topic])
        admin.close()


def _spooled_values(spool: Path, limit: int) -> list[bytes]:
    """Encoded events as the importer built them, for the ceiling: an import into a spool
    with no broker to deliver to keeps them all there."""
    import sqlite3

    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT data FROM events LIMIT ?", (limit,))]


def _dry_import(settings: Settings, path: Path, work: Path) -> tuple[str, Path]:
    """Spool the file's events with no broker to deliver to: (host, spool), for the ceiling."""
    from chatchannels.event_signing import IMPORTER
    from chatchannels.ingest.importers.detect import sniff
    from chatchannels.ingest.importers.job import Target, import_file
    from tests.support.signing import signer_as

    signer = signer_as(settings.secrets_root, IMPORTER)
    target = Target(work / "spool", work / "media", "127.0.0.1:9", "unused", signer, wait_s=1.0)
    done = import_file(sniff(path), target, session=uuid.uuid4().hex)
    return done.host, Path(done.spool)


def _cli_import(settings: Settings, path: Path, work: Path) -> tuple[dict, float, float]:
    """`chatchannels import --json` as a user runs it: (its report of the file, seconds,
    peak RSS in MB)."""
    env = dict(os.environ)
    env.update(
        CHATCHANNELS_TOPIC=settings.topic,
        CHATCHANNELS_KAFKA=settings.kafka_bootstrap,
        CHATCHANNELS_IMPORT_SPOOL_DIR=str(work / "spool"),
        CHATCHANNELS_MEDIA_DIR=str(work / "media"),
    )
    command = ["-m", "chatchannels.cli", "import", str(path), "--json", "--wait", str(DEADLINE_S)]
    work.mkdir(parents=True, exist_ok=True)
    output = work / f"import-{uuid.uuid4().hex[:8]}.json"
    started = time.perf_counter()
    with output.open("wb") as out:
        proc = children.start(command, env=env, stdout=out, stderr=subprocess.DEVNULL)
    # Its peak memory is read while it runs; past the deadline it is killed.
    # VmHWM has no event to wait for: it is sampled every 50 ms until the process exits.
    peak_mb = 0.0
    deadline = time.monotonic() + DEADLINE_S * 2
    while True:
        peak_mb = max(peak_mb, peak_rss_mb(proc.pid) or 0.0)
        try:
            proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError(
                    f"bench_import: {' '.join(command)} still running at the deadline"
                ) from None
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"bench_import: {' '.join(command)} exited {proc.returncode}")
    files = json.loads(output.read_text())["files"]
    return files[0], seconds, peak_mb


def run(settings: Settings, quick: bool = False, messages: int | None = None) -> list[Figure]:
    from kafka import KafkaAdminClient

    from chatchannels.processors.pg.migrate import migrate
    from chatchannels.publishers.publishing import index_dir
    from chatchannels.publishers.search_index import WhooshBackend
    from chatchannels.stack.kafka_principals import create_raw_topic
    from chatchannels.stack.postgres import database_dsn, ensure_database

    n = messages or int(os.environ.get("BENCH_IMPORT_MESSAGES") or (N_QUICK if quick else N_FULL))
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    topic = f"bench.import.{uuid.uuid4().hex[:8]}"
    topics: list[str] = []
    database = f"bench_import_{uuid.uuid4().hex[:8]}"
    dsn = database_dsn(settings, database)
    settings = settings.replace(topic=topic, dsn=dsn)
    site = work / "site"
    logs = {"site": work / "site.log", "search": work / "search.log"}
    spawn = multiprocessing.get_context("spawn")
    followers: list[multiprocessing.process.BaseProcess] = []
    store: _Store | None = None
    try:
        original, shifted = work / "main.db", work / "shifted.db"
        _generate(original, n)
        _shift(original, shifted, SHIFT_S)

        # The ceiling's events: the importer's own, spooled with no broker to deliver to.
        host, spool = _dry_import(settings, original, work / "dry")
        values = _spooled_values(spool, n)
        ceiling = _produce_ceiling(settings, values, host.encode())
        del values
        shutil.rmtree(work / "dry")

        # The import alone, into a topic nobody reads: its rate and its memory.
        alone = settings.replace(topic=f"{topic}.alone")
        create_raw_topic(alone, alone.topic, partitions=3)
        topics.append(alone.topic)
        first, import_s, import_rss_mb = _cli_import(alone, original, work / "alone")
        assert first["undelivered"] == 0 and not first["errors"], first
        events = first["spooled"]

        create_raw_topic(settings, topic, partitions=3)
        topics.append(topic)
        ensure_database(settings, database)
        migrate(dsn)
        store = _Store(dsn)
        followers.append(spawn.Process(target=_follow_processor, args=(settings, topic)))
        for which, log in logs.items():
            followers.append(spawn.Process(target=_follow_publisher, args=(dsn, site, which, log)))
        for child in followers:
            child.start()
        for which, log in logs.items():
            _wait(
                f"the {which} publisher following the empty store",
                lambda log=log: _caught_up_once(log),
                lambda: "no catch-up yet",
            )
        started = time.time()
        again, _, _ = _cli_import(settings, original, work / "followed")
        assert again["spooled"] == events and again["undelivered"] == 0, again
        caught_up_at = _wait(
            f"the processor consuming {events:,} events",
            lambda: store.consumed() >= events,
            lambda: f"{store.consumed():,} consumed",
        )
        final_seq = store.last_seq()
        stored = store.messages()
        published = {
            which: _wait(
                f"the {which} publisher reaching change {final_seq}",
                lambda log=log: _publisher_at(log, final_seq) is not None,
                lambda log=log: log.read_text()[-200:] if log.exists() else "no catch-up yet",
            )
            and _publisher_at(log, final_seq)
            for which, log in logs.items()
        }

        backend = WhooshBackend(index_dir(site))
        latencies = []
        try:
            for query, expected in NEEDLES.items():
                t0 = time.perf_counter()
                hits = backend.search(query, limit=50)
                latencies.append(time.perf_counter() - t0)
                assert hits.total == expected, (query, hits.total, expected)
        finally:
            backend.close()

        t0 = time.time()
        second, _, _ = _cli_import(settings, shifted, work)
        assert second["undelivered"] == 0 and not second["errors"], second
        total = events + second["spooled"]
        second_at = _wait(
            f"the processor consuming the shifted copy ({total:,} events in all)",
            lambda: store.consumed() >= total,
            lambda: f"{store.consumed():,} consumed",
        )
        added = store.messages() - stored

        figures = [
            Figure(f"generated main.db: {n:,} messages, {stored:,} in the store", stored, "msgs"),
            Figure("import into Kafka (spooled and acked)", events / import_s, "msgs/s", ceiling),
            Figure("store caught up, from the import's start", caught_up_at - started, "s"),
            Figure(
                "browsable (every page), from the import's start",
                published["site"] - started,
                "s",
                SKYPERIOUS_HTML_S[0],
            ),
            Figure(
                "searchable (every message), from the import's start",
                published["search"] - started,
                "s",
                TARGET_SEARCHABLE_S,
            ),
            Figure(
                "search latency, worst of the needles", max(latencies), "s", SKYPERIOUS_SEARCH_S[0]
            ),
            Figure(f"shifted copy (+{SHIFT_S} s): messages added (target 0)", added, "msgs"),
            Figure(f"shifted copy (+{SHIFT_S} s): import and store", second_at - t0, "s"),
            Figure("peak RSS of the importing process", import_rss_mb, "MB"),
        ]
        report(f"import of a {n:,}-message main.db", figures)
        return figures
    finally:
        for child in followers:
            child.terminate()
        for child in followers:
            child.join(30)
            if child.is_alive():
                child.kill()
                child.join()
        if store is not None:
            store.close()
        with psycopg.connect(database_dsn(settings, "postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        admin = KafkaAdminClient(**client_options(settings))
        try:
            if topics:
                admin.delete_topics(topics)
        finally:
            admin.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    children.sigterm_unwinds()
    bench_main(__doc__, run, f"{N_QUICK:,} messages", "messages")


if __name__ == "__main__":
    main()
