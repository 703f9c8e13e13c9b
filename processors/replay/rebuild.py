"""Replay: rebuild the canonical store from the raw log, check it, and swap it in.

design.md, "Replay": the log is the archive, and everything after it must come out the same
when rebuilt. `replay` runs a fresh Processor (the same code as `chatchannels process`) from
offset 0 into a new schema `replay_<stamp>`, up to a known position:

- the live store's stored offsets (its `offsets` rows for the live consumer), so that the
  rebuilt store can be compared with the live one at the same log position;
- or, when the live store has not consumed the topic, the topic's end offsets at the start.

`verify` compares digests (archive.py: messages, revisions, tombstones, provenance, in
canonical order; no offsets, change numbers or wall-clock fields). The live store keeps
moving, so its digest is taken in one REPEATABLE READ snapshot, together with the offsets
of that snapshot; the replay first catches up to those offsets (the same schema, resumed
from its own stored offsets), then both are digested. On a mismatch the differences are
named (diff.py) and the replay schema is kept for inspection.

`swap` (only after `verify` passed) builds the site from the replay schema into a new folder
(site.py, with the SiteBuilder the caller hands in), then renames, in one transaction, the
live schema to `previous_<stamp>` (kept for rollback unless `drop_previous`) and the replay
schema to the live name, then swaps the site folder. The replay stores its offsets under the
live consumer's name, so a processor started on the swapped store resumes where the replay
stopped.

Every function is safe to re-run: a replay never writes to the live schema except by the
swap's renames, and a failed or interrupted replay drops its own schema.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chatchannels.kafka_auth import PROCESSOR
from chatchannels.pg_roles import store_roles
from chatchannels.processors.consumer import ProcessOptions, Processor, ProcessSummary
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER, read_offsets, stored_offsets
from chatchannels.processors.replay.archive import (
    ArchivedMessage,
    archive_digest,
    archived_messages,
    read_archive,
)
from chatchannels.processors.replay.diff import diff_archives
from chatchannels.processors.replay.site import (
    ManifestCheck,
    SiteBuilder,
    SiteSwap,
    built_site_dir,
    check_site_dir,
    rebuild_site,
    remove_previous_site,
    schema_dsn,
)
from chatchannels.settings import Settings
from chatchannels.stack.kafka import end_offsets

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# (stage, done, total): stages "replay" (records), "verify" (messages), "site".
Progress = Callable[[str, int, int | None], None]


class ReplayError(RuntimeError):
    """The replay could not run or was refused; the message says why and what to do."""


class ReplayMismatch(ReplayError):
    """--verify found the rebuilt store different from the live one; `result` has both
    digests and the first differences."""

    def __init__(self, result: ReplayResult) -> None:
        check = result.verify
        assert check is not None
        lines = "\n".join(f"  {d}" for d in check.differences)
        super().__init__(
            f"replay differs from the live store ({check.live_schema}) at the same offsets:"
            f" {check.live_messages} live messages, {check.replay_messages} rebuilt;"
            f" first differences:\n{lines}\n"
            f"The rebuilt store is kept in schema {result.schema} for inspection"
            f" (drop it with: DROP SCHEMA {result.schema} CASCADE)."
        )
        self.result = result


REPLAY_BATCH = 20_000


@dataclass(frozen=True)
class ReplayOptions:
    topic: str
    live_schema: str = "public"
    # The live consumer: whose offsets are the target, and the name the replay's are kept under.
    group: str = DEFAULT_CONSUMER
    verify: bool = False
    swap: bool = False
    drop_previous: bool = False
    # The site to rebuild (with the `site` builder `replay` is given) and swap with the
    # schema; None leaves the site alone.
    site_dir: Path | None = None
    # Keep the replay schema after a run that does not swap it in (it is dropped otherwise).
    keep: bool = False
    # A batch re-clusters only the time segments it touches (group_index.py), so larger
    # batches gain little and hold more in memory (bench_replay measures it).
    batch_records: int = REPLAY_BATCH
    # Replaying a copy of the raw topic (topic_copy.py).
    create_time_is_append_time: bool = False
    # The replay schema's name; default replay_<stamp>.
    schema: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    live_schema: str
    live_digest: str
    live_messages: int
    replay_digest: str
    replay_messages: int
    differences: tuple[str, ...]
    # The live site's month manifests against the rebuilt store's; None when there is no
    # site to compare (--no-site, no site folder, or no site builder). Reported, not a
    # failure: a live site follows its store with a delay, so a publisher behind differs.
    manifests: ManifestCheck | None = None
    site_dir: Path | None = None

    @property
    def equal(self) -> bool:
        return self.live_digest == self.replay_digest

    def manifests_json(self) -> dict[str, Any] | None:
        if self.manifests is None:
            return None
        return {
            "site_dir": str(self.site_dir),
            "months": self.manifests.months,
            "differing": [{"chat": c, "month": m} for c, m in self.manifests.differing],
        }


@dataclass
class ReplayResult:
    topic: str
    schema: str
    offsets: dict[int, int]
    records: int = 0
    batches: int = 0
    dead_letters: int = 0
    changes: int = 0
    digest: str = ""
    messages: int = 0
    verify: VerifyResult | None = None
    swap: SiteSwap | None = None
    previous_schema: str | None = None
    kept: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Stable keys for `replay --json`."""
        verify = None
        if self.verify is not None:
            verify = {**asdict(self.verify), "equal": self.verify.equal}
            verify["differences"] = list(self.verify.differences)
            verify["manifests"] = self.verify.manifests_json()
            del verify["site_dir"]
        return {
            "topic": self.topic,
            "schema": self.schema,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
            "records": self.records,
            "batches": self.batches,
            "dead_letters": self.dead_letters,
            "changes": self.changes,
            "digest": self.digest,
            "messages": self.messages,
            "verify": verify,
            "swapped": self.previous_schema is not None,
            "previous_schema": self.previous_schema,
            "site": None if self.swap is None else self.swap.as_json(),
            "kept": self.kept,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def replay_stamp() -> str:
    """UTC time to the microsecond: schema and folder names that sort by age and never clash."""
    now = time.time()
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime(now)) + f"_{int(now % 1 * 1e6):06d}"


def _no_progress(stage: str, done: int, total: int | None) -> None:
    pass


def replay(
    settings: Settings,
    options: ReplayOptions,
    *,
    progress: Progress = _no_progress,
    stop: threading.Event | None = None,
    site: SiteBuilder | None = None,
) -> ReplayResult:
    """Rebuild the store from the topic into a new schema; check and swap as asked, the
    site (`options.site_dir`) rebuilt with `site`.

    Raises ReplayMismatch when `verify` finds a difference (nothing is swapped, the replay
    schema is kept), ReplayError when refused or interrupted (the replay schema is dropped).
    """
    if options.swap and not options.verify:
        raise ReplayError("--swap needs --verify: a rebuilt store is swapped in only once checked")
    stop = stop or threading.Event()
    dsn = settings.postgres_dsn
    stamp = replay_stamp()
    schema = options.schema or f"replay_{stamp}"
    for name in (schema, options.live_schema):
        if not SCHEMA_NAME.fullmatch(name):
            raise ReplayError(f"schema name {name!r}: use lower-case letters, digits and _")
    live = read_offsets(dsn, options.live_schema, options.group, options.topic)
    if options.verify and live is None:
        raise ReplayError(
            f"nothing to verify against: schema {options.live_schema!r} holds no offsets of"
            f" consumer {options.group!r} on {options.topic!r}. To build a store from nothing,"
            " run `chatchannels db migrate` and `chatchannels process`."
        )
    if options.swap and options.site_dir is not None:
        if site is None:
            raise ReplayError("a site to swap (site_dir) needs a site builder")
        problem = check_site_dir(options.site_dir)
        if problem:
            raise ReplayError(problem)
    if schema_exists(dsn, schema):
        raise ReplayError(f"schema {schema!r} exists already; a replay builds a new schema")
    result = ReplayResult(topic=options.topic, schema=schema, offsets=dict(live or {}))
    try:
        migrate(dsn, schema, roles=store_roles(settings))
        started = time.perf_counter()
        _run_replay(settings, options, schema, live, result, progress, stop)
        result.seconds["replay"] = time.perf_counter() - started
        started = time.perf_counter()
        if options.verify:
            result.verify = _verify(settings, options, schema, result, progress, stop, site)
        else:
            result.digest, result.messages = _digest(read_archive(dsn, schema), progress, None)
        result.seconds["verify" if options.verify else "digest"] = time.perf_counter() - started
        if stop.is_set():
            raise ReplayError("replay interrupted before the swap; nothing was swapped")
    except BaseException:
        drop_schema(dsn, schema)
        raise
    if result.verify is not None and not result.verify.equal:
        result.kept = True
        raise ReplayMismatch(result)
    if options.swap:
        _swap(settings, options, schema, stamp, result, progress, site)
    elif options.keep:
        result.kept = True
    else:
        drop_schema(dsn, schema)
    return result


def _run_replay(
    settings: Settings,
    options: ReplayOptions,
    schema: str,
    stop_at: Mapping[int, int] | None,
    result: ReplayResult,
    progress: Progress,
    stop: threading.Event,
) -> None:
    """Consume into `schema` up to `stop_at` (or the end offsets now), resuming from the
    replay's own stored offsets; adds the work done to `result`."""
    total = None if stop_at is None else sum(stop_at.values())
    done_before = result.records
    if stop_at is not None:
        ends = end_offsets(settings, options.topic, PROCESSOR)
        past = {p: o for p, o in stop_at.items() if o > ends.get(p, 0)}
        if past:
            # The consumer would wait for these records forever.
            raise ReplayError(
                f"the live store's offsets {past} are past the end of {options.topic!r}"
                f" ({ends}): is it the topic the live store consumed?"
            )

    def on_batch(summary: ProcessSummary) -> None:
        progress("replay", done_before + summary.records, total)

    process = ProcessOptions(
        topic=options.topic,
        group=options.group,
        schema=schema,
        once=True,
        batch_records=options.batch_records,
        stop_at=None if stop_at is None else dict(stop_at),
        create_time_is_append_time=options.create_time_is_append_time,
        synchronous_commit=False,
    )
    processor = Processor(settings.replace(topic=options.topic), process, stop, on_batch)
    try:
        summary = processor.run()
        reached = processor.store.stored_offsets(options.topic)
    finally:
        processor.close()
    if stop.is_set():
        raise ReplayError(f"replay interrupted after {done_before + summary.records} records")
    result.records += summary.records
    result.batches += summary.batches
    result.dead_letters += summary.dead_letters
    result.changes += summary.changes
    result.offsets = dict(sorted(reached.items()))
    progress("replay", result.records, result.records)


def _verify(
    settings: Settings,
    options: ReplayOptions,
    schema: str,
    result: ReplayResult,
    progress: Progress,
    stop: threading.Event,
    site: SiteBuilder | None = None,
) -> VerifyResult:
    dsn = settings.postgres_dsn
    with live_snapshot(dsn, options.live_schema, options.group, options.topic) as (conn, at):
        behind = {p: o for p, o in at.items() if o < result.offsets.get(p, 0)}
        if behind:
            raise ReplayError(
                f"the live store's offsets went back ({behind}, the replay is at"
                f" {result.offsets}): was it reset meanwhile? Nothing was swapped."
            )
        if {p: o for p, o in at.items() if o} != {p: o for p, o in result.offsets.items() if o}:
            # The live store moved on while the replay ran: catch up to this snapshot.
            _run_replay(settings, options, schema, at, result, progress, stop)
        live_digest, live_count = _digest(archived_messages(conn), progress, None)
        result.digest, result.messages = _digest(read_archive(dsn, schema), progress, live_count)
        differences: list[str] = []
        if live_digest != result.digest:
            found = diff_archives(archived_messages(conn), read_archive(dsn, schema))
            differences = [str(d) for d in found]
    manifests = None
    site_dir = options.site_dir
    checks = site.check_manifests if site is not None else None
    if checks is not None and site_dir is not None and site_dir.is_dir():
        manifests = checks(schema_dsn(dsn, schema), site_dir)
    return VerifyResult(
        options.live_schema,
        live_digest,
        live_count,
        result.digest,
        result.messages,
        tuple(differences),
        manifests,
        site_dir if manifests is not None else None,
    )


def _digest(
    messages: Iterable[ArchivedMessage], progress: Progress, total: int | None
) -> tuple[str, int]:
    def counted() -> Iterator[ArchivedMessage]:
        for n, message in enumerate(messages, 1):
            if n % 10_000 == 0:
                progress("verify", n, total)
            yield message

    return archive_digest(counted())


def _swap(
    settings: Settings,
    options: ReplayOptions,
    schema: str,
    stamp: str,
    result: ReplayResult,
    progress: Progress,
    site: SiteBuilder | None,
) -> None:
    dsn = settings.postgres_dsn
    site_swap = None
    previous = f"previous_{stamp}"
    try:
        if options.site_dir is not None:
            assert site is not None  # checked by `replay` before anything was built
            started = time.perf_counter()
            progress("site", 0, None)
            site_swap = rebuild_site(dsn, schema, options.site_dir, stamp, site)
            progress("site", 1, 1)
            result.seconds["site"] = time.perf_counter() - started
        started = time.perf_counter()
        swap_schemas(dsn, options.live_schema, schema, previous)
    except BaseException:
        # Nothing is swapped yet: leave no half-built site or schema behind.
        drop_schema(dsn, schema)
        if options.site_dir is not None:
            shutil.rmtree(built_site_dir(options.site_dir, stamp), ignore_errors=True)
        raise
    result.previous_schema = previous
    if site_swap is not None:
        try:
            site_swap.commit()
        except OSError as exc:
            raise ReplayError(
                f"the rebuilt store is live (the previous one is schema {previous}), but the"
                f" site could not be swapped ({exc}); the rebuilt site is {site_swap.built}"
            ) from exc
        result.swap = site_swap
    result.seconds["swap"] = time.perf_counter() - started
    if options.drop_previous:
        drop_schema(dsn, previous)
        if site_swap is not None and site is not None:
            remove_previous_site(site_swap, site)


# -- PostgreSQL -------------------------------------------------------------------------------


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def schema_exists(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


@contextmanager
def live_snapshot(
    dsn: str, schema: str, consumer: str, topic: str
) -> Iterator[tuple[psycopg.Connection, dict[int, int]]]:
    """A read-only REPEATABLE READ transaction on `schema` and the consumer's offsets in it:
    whatever is read on the connection is the store at exactly those offsets."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(_ident(schema)))
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn, dict(sorted(stored_offsets(conn, consumer, topic).items()))


def swap_schemas(dsn: str, live: str, replay: str, previous: str) -> None:
    """In one transaction: `live` becomes `previous`, `replay` becomes `live`, and `replay`
    gets the schema privileges `live` had (table privileges are the migrations' business).

    The exclusive lock on the live offsets waits for a processor's batch in flight to commit
    (every batch claims its offsets first), so the renames never land inside one. Processors
    and publishers are still stopped around a swap (deploy/operations.md): their connections
    name the schema, and a publisher's watermark counts the old store's changes.
    """
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '60s'")
        conn.execute(sql.SQL("LOCK TABLE {}.offsets IN ACCESS EXCLUSIVE MODE").format(_ident(live)))
        _carry_readers(conn, live, replay)
        # (role or NULL for PUBLIC, privilege), the owner's own rights aside.
        grants = conn.execute(
            "SELECT r.rolname, a.privilege_type FROM pg_namespace n"
            " CROSS JOIN aclexplode(n.nspacl) AS a LEFT JOIN pg_roles r ON r.oid = a.grantee"
            " WHERE n.nspname = %s AND a.grantee <> n.nspowner",
            (live,),
        ).fetchall()
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(_ident(live), _ident(previous)))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(_ident(replay), _ident(live)))
        for role, privilege in grants:
            grantee = sql.SQL("PUBLIC") if role is None else _ident(role)
            conn.execute(
                sql.SQL("GRANT {} ON SCHEMA {} TO {}").format(
                    sql.SQL(privilege), _ident(live), grantee
                )
            )


# Who reads the site (migration 0009, publishers/access/) is not in the log: the rebuilt store
# takes the live store's, in foreign-key order, or a swap would sign everyone out for good.
READER_TABLES = ("readers", "reader_tokens", "reader_handles")


def _carry_readers(conn: psycopg.Connection, live: str, replay: str) -> None:
    """Copy the reader tables from `live` into `replay`, writes to them held off meanwhile
    (`chatchannels users` runs while a replay builds)."""
    tables = [sql.SQL("{}.{}").format(_ident(live), _ident(t)) for t in READER_TABLES]
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.SQL(", ").join(tables)))
    for table, source in zip(READER_TABLES, tables, strict=True):
        target = sql.SQL("{}.{}").format(_ident(replay), _ident(table))
        # Token ids are an identity column: kept as they are, the sequence moved past them.
        conn.execute(
            sql.SQL("INSERT INTO {} OVERRIDING SYSTEM VALUE SELECT * FROM {}").format(
                target, source
            )
        )
    tokens = sql.SQL("{}.reader_tokens").format(_ident(replay))
    conn.execute(
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'),"
            " (SELECT coalesce(max(id), 0) + 1 FROM {}), false)"
        ).format(tokens),
        (tokens.as_string(conn),),
    )


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_ident(schema)))
