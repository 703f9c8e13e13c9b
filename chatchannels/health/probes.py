"""What `status` reads: each probe returns facts (verdicts.py), never raises for a part that
is down, and waits at most `timeout` seconds on any one service, so a frozen broker or a
hung server makes `status` say so instead of hanging with it."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from chatchannels.health.verdicts import (
    ProcessorFacts,
    PublisherFacts,
    PublishingFacts,
    ServeFacts,
    Service,
    Status,
    Thresholds,
    judge,
)
from chatchannels.kafka_auth import PROCESSOR
from chatchannels.processors.completeness import Completeness
from chatchannels.settings import Settings

TIMEOUT_S = 3.0


def pipeline_status(
    settings: Settings,
    *,
    schema: str = "public",
    consumer: str,
    now_utc: float | None = None,
    timeout: float = TIMEOUT_S,
) -> Status:
    """The facts of every part and the verdict on them."""
    now = time.time() if now_utc is None else now_utc
    limits = Thresholds(settings.silent_after_s, settings.stalled_after_s)
    kafka = kafka_service(settings, timeout)
    postgres = postgres_service(settings, timeout)
    store = _StoreFacts()
    if postgres.problem is None:
        store = read_store(settings, schema, consumer, now, limits, timeout)
    # The lag needs both sides: unknown (and said why) when either is unreadable.
    lag, lag_problem = None, None
    if kafka.problem is None and store.offsets is not None:
        lag, lag_problem = read_lag(settings, store.offsets)
    processor = ProcessorFacts(
        consumer, settings.topic, lag, store.last_batch_utc, store.dead_letters, lag_problem
    )
    return judge(
        Status(
            checked_utc=now,
            thresholds=limits,
            services=(kafka, postgres),
            completeness=store.completeness,
            store_problem=store.problem,
            processor=processor,
            publishing=publishing_facts(settings.site_dir, store.newest_change_seq),
            serve=serve_facts(settings.serve_url or None, timeout),
        )
    )


def kafka_service(settings: Settings, timeout: float) -> Service:
    """The first bootstrap server (the stack's broker unless `kafka` names a cluster)."""
    from chatchannels.stack.kafka import broker_version, kafka_answer_problem

    address = settings.kafka_bootstrap
    host, _, port = address.split(",")[0].strip().rpartition(":")
    probe = settings.replace(kafka_host=host, kafka_port=int(port)) if settings.kafka else settings
    problem = kafka_answer_problem(probe, timeout)
    if problem is not None:
        return Service("Kafka", address, problem)
    try:
        # The API version kafka-python infers from the requests the broker serves.
        version = "API " + ".".join(map(str, broker_version(probe, PROCESSOR)))
    except Exception as exc:  # reported, not raised: status describes a sick cluster
        return Service("Kafka", address, f"{type(exc).__name__}: {exc}")
    return Service("Kafka", address, None, version)


def postgres_service(settings: Settings, timeout: float) -> Service:
    address = _without_password(settings.reader_postgres_dsn)
    try:
        with _connect(settings.reader_postgres_dsn, timeout) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error as exc:
        return Service("PostgreSQL", address, _first_line(exc))
    return Service("PostgreSQL", address, None, str(version))


@dataclass
class _StoreFacts:
    problem: str | None = None
    completeness: Completeness | None = None
    offsets: dict[int, int] | None = None
    last_batch_utc: float | None = None
    dead_letters: dict[str, int] = field(default_factory=dict)
    newest_change_seq: int | None = None


def read_store(
    settings: Settings,
    schema: str,
    consumer: str,
    now: float,
    limits: Thresholds,
    timeout: float,
) -> _StoreFacts:
    facts = _StoreFacts()
    try:
        with _connect(settings.reader_postgres_dsn, timeout) as conn:
            conn.autocommit = True
            migrated = conn.execute(
                "SELECT to_regclass(format('%%I.seq_runs', %s::text))", (schema,)
            ).fetchone()[0]
            if migrated is None:
                facts.problem = (
                    f"the store (schema {schema}) is not migrated to this version:"
                    " run `chatchannels db migrate`"
                )
                return facts
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            with conn.transaction():
                # One snapshot: the lag, the runs and the changes agree with each other.
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                _read_snapshot(conn, facts, settings.topic, consumer, now, limits)
    except psycopg.Error as exc:
        facts.problem = f"cannot read the store: {_first_line(exc)}"
    return facts


def _read_snapshot(
    conn: psycopg.Connection,
    facts: _StoreFacts,
    topic: str,
    consumer: str,
    now: float,
    limits: Thresholds,
) -> None:
    from chatchannels.processors.completeness import assess
    from chatchannels.processors.pg.completeness import read_runs

    # The runs only: which hosts captured which chats is `completeness`'s report, a scan of
    # every observation, too slow for a status that monitoring polls.
    facts.completeness = assess(read_runs(conn), [], now, limits.silent_after_s)
    rows = conn.execute(
        "SELECT partition, next_offset, extract(epoch FROM advanced_utc)::float8"
        " FROM offsets WHERE consumer = %s AND topic = %s",
        (consumer, topic),
    ).fetchall()
    facts.offsets = {p: n for p, n, _ in rows}
    facts.last_batch_utc = max((t for _, _, t in rows if t is not None), default=None)
    facts.dead_letters = dict(
        conn.execute(
            "SELECT kind, count(*) FROM dead_letters WHERE redriven_utc IS NULL GROUP BY kind"
        ).fetchall()
    )
    facts.newest_change_seq = conn.execute(
        "SELECT coalesce(max(change_seq), 0) FROM changes"
    ).fetchone()[0]


def read_lag(
    settings: Settings, stored: dict[int, int]
) -> tuple[dict[int, int] | None, str | None]:
    from kafka.errors import KafkaError

    from chatchannels.stack.kafka import end_offsets

    try:
        end = end_offsets(settings, settings.topic, PROCESSOR)
    except KafkaError as exc:
        return None, f"cannot read the end offsets of {settings.topic}: {exc}"
    if not end:
        return None, f"topic {settings.topic} does not exist"
    return {p: max(0, o - stored.get(p, 0)) for p, o in sorted(end.items())}, None


def publishing_facts(site_dir: Path, newest_change_seq: int | None) -> PublishingFacts:
    from chatchannels.publishers.publishing import index_dir
    from chatchannels.publishers.search_index import STATE_FILE as INDEX_STATE
    from chatchannels.publishers.site import STATE_FILE as SITE_STATE

    index = index_dir(site_dir)
    return PublishingFacts(
        str(site_dir),
        newest_change_seq,
        (
            _watermark_file("site", site_dir / SITE_STATE),
            _watermark_file("search", index / INDEX_STATE),
        ),
        _newest_page(site_dir),
        _size(index) if index.is_dir() else None,
    )


def _watermark_file(name: str, path: Path) -> PublisherFacts:
    import json

    try:
        text, moved = path.read_text(), path.stat().st_mtime
    except FileNotFoundError:
        return PublisherFacts(name, None, None)
    except OSError as exc:
        return PublisherFacts(name, None, None, f"cannot read {path}: {exc}")
    try:
        return PublisherFacts(name, int(json.loads(text)["change_seq"]), moved)
    except (ValueError, KeyError, TypeError) as exc:
        return PublisherFacts(name, None, moved, f"{path} holds no change_seq ({exc})")


def _newest_page(site_dir: Path) -> float | None:
    """The latest modification time of a published file (the publishers' own dot-files and
    folders excluded: they move with every batch, pages only when their bytes change)."""
    newest = None
    for folder, dirs, files in os.walk(site_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                try:
                    at = os.stat(os.path.join(folder, name)).st_mtime
                except OSError:
                    continue
                newest = at if newest is None else max(newest, at)
    return newest


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def serve_facts(url: str | None, timeout: float) -> ServeFacts:
    if url is None:
        return ServeFacts(None)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            reply.read(1)
    except urllib.error.HTTPError as exc:
        return ServeFacts(url, f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        return ServeFacts(url, str(getattr(exc, "reason", exc)))
    return ServeFacts(url)


def _connect(dsn: str, timeout: float) -> psycopg.Connection:
    """Connecting within `timeout`; a query may take ten times as long (a large store's
    scan), not forever (a server that accepts connections but is stuck)."""
    return psycopg.connect(
        dsn,
        connect_timeout=max(1, round(timeout)),
        options=f"-c statement_timeout={int(timeout * 10_000)}",
    )


def _without_password(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unreadable DSN)"
    parts.pop("password", None)
    return make_conninfo(**parts)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
