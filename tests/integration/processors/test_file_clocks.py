"""Imported main.db files through Kafka and the store: shifted copies merge, repeats stay.

Issue 16's "Repeats and skews" with real skype-maindb events: a generated main.db with the
same text posted twice by one author within 5 s, and copies of it whose clocks were off by
+47 s and +181 s (gen_maindb.py shift). Each file is a host; the first imported sets the time.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatchannels.ingest.importers.events import FileInfo, file_sha256, maindb_event
from chatchannels.ingest.importers.maindb import MainDb
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.store import Store
from chatchannels.rawevents import EventClock
from tests.support.paths import DATA
from tests.support.processor_harness import (
    STABLE_TABLES,
    dump_tables,
    engine_over,
    process_once,
    produce,
    read_records,
    stored_messages,
)

pytestmark = pytest.mark.integration

GEN = DATA / "skype" / "gen_maindb.py"
FILES = (("file-true", 0), ("file-plus47", 47), ("file-plus181", 181))
REPEATS = 12
LATE = 60


def plant_repeats(path: Path, n: int, seed: int) -> None:
    """`n` messages posted again by their author 1-5 s later: new id, remote id and guid."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(Messages)")]
    rows = db.execute("SELECT * FROM Messages WHERE type = 61 ORDER BY id").fetchall()
    top = db.execute("SELECT max(id), max(remote_id) FROM Messages").fetchone()
    for k, row in enumerate(rng.sample(rows, n), 1):
        again = dict(zip(cols, row, strict=True))
        again.update(
            id=top[0] + k,
            remote_id=top[1] + k,
            pk_id=top[1] + k,
            guid=uuid.uuid4().bytes * 2,
            timestamp=again["timestamp"] + rng.randint(1, 5),
        )
        names = ", ".join(again)
        db.execute(
            f"INSERT INTO Messages ({names}) VALUES ({', '.join('?' * len(again))})",
            list(again.values()),
        )
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("maindb")
    true = folder / "file-true.db"
    subprocess.run(
        [sys.executable, GEN, "make", true, "--messages", "400", "--chats", "6", "--seed", "5"],
        check=True,
        capture_output=True,
    )
    plant_repeats(true, REPEATS, seed=5)
    out = {"file-true": true}
    for host, seconds in FILES[1:]:
        out[host] = folder / f"{host}.db"
        subprocess.run(
            [sys.executable, GEN, "shift", true, out[host], str(seconds)],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="module")
def late_files(files, tmp_path_factory) -> dict[str, Path]:
    """The shifted copies without the history's first `LATE` rows (machines that joined
    the chats later): the later files' first events have no earlier copy to pair with."""
    folder = tmp_path_factory.mktemp("late")
    out = {"file-true": files["file-true"]}
    for host, _ in FILES[1:]:
        out[host] = folder / f"{host}.db"
        shutil.copyfile(files[host], out[host])
        db = sqlite3.connect(out[host])
        db.execute(
            "DELETE FROM Messages WHERE id IN (SELECT id FROM Messages ORDER BY id LIMIT ?)",
            (LATE,),
        )
        db.commit()
        db.close()
    return out


def import_events(path: Path, host: str, first_seq: int = 1) -> list[dict[str, Any]]:
    """The file's rows as `chatchannels import --host HOST` spools them: one session."""
    session = uuid.uuid4().hex
    with MainDb(path) as db:
        info = FileInfo(file_sha256(path), path.name, db.account, db.client)
        return [
            maindb_event(
                item,
                file=info,
                host=host,
                session=session,
                seq=seq,
                clock=EventClock(utc=1_700_000_000.0 + seq / 100, tz_offset_s=0),
            )
            for seq, item in enumerate(db.rows(), first_seq)
        ]


def true_times(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {str(i): ts for i, ts in db.execute("SELECT id, timestamp FROM Messages")}
    finally:
        db.close()


@pytest.fixture
def db(pg_dsn):
    migrate(pg_dsn)
    return pg_dsn


@pytest.fixture
def settings(stack, kafka_topic, db):
    return stack.replace(topic=kafka_topic, dsn=db)


def check_archive(settings, files: dict[str, Path]) -> None:
    """Every row once with the true file's time, a copy from each file that holds the row
    in it, as the Engine has it; the files' offsets recorded."""
    truth = true_times(files["file-true"])
    held = {host: true_times(path).keys() for host, path in files.items()}
    messages = stored_messages(settings.postgres_dsn)
    assert len(messages) == len(truth)
    for m in messages:
        hosts = {o.host: o for o in m.observations}
        local_id = hosts["file-true"].local_id
        assert sorted(hosts) == sorted(h for h, _ in FILES if local_id in held[h]), m
        assert len(m.observations) == len(hosts), m
        assert m.utc == truth[hosts["file-true"].local_id]
        assert {o.local_id for o in m.observations} == {hosts["file-true"].local_id}
    engine = engine_over(read_records(settings, settings.topic), settings.match_tolerance_s)
    assert messages == engine.canonical_messages()
    with psycopg.connect(settings.postgres_dsn) as conn:
        clocks = dict(conn.execute("SELECT host, skew_s FROM proc_host_clocks"))
        history = conn.execute(
            "SELECT host, offset_s, samples FROM host_clocks ORDER BY host, seq"
        ).fetchall()
    assert clocks == {h: float(s) for h, s in FILES}
    assert {c.host: c.skew_s for c in engine.clocks.values()} == clocks
    last = {h: (offset, samples) for h, offset, samples in history}
    assert last["file-true"] == (0, 0)
    assert last["file-plus47"][0] == 47 and last["file-plus181"][0] == 181
    stats = Store.connect(settings.postgres_dsn, consumer="x")
    try:
        hosts = stats.read_stats(settings.topic)["hosts"]
    finally:
        stats.close()
    assert {h: v["offset_s"] for h, v in hosts.items()} == clocks


def test_files_imported_one_after_another_merge_every_copy_and_keep_repeats(
    settings, files
) -> None:
    for host, _ in FILES:
        produce(settings, settings.topic, import_events(files[host], host))
    summary = process_once(settings, settings.topic, batch_records=250)
    assert summary.dead_letters == 0 and summary.batches >= 4
    check_archive(settings, files)
    # No later file's message needed re-correcting: its first batch found the earlier
    # file's copies stored, so its offset was right from its first message.
    with psycopg.connect(settings.postgres_dsn) as conn:
        changed = conn.execute(
            "SELECT host, count(*) FROM host_clocks GROUP BY host ORDER BY host"
        ).fetchall()
    assert changed == [("file-plus181", 1), ("file-plus47", 1), ("file-true", 1)]

    # The +47 s file imported again (a new session, its spool's later seqs): nothing new.
    before = dump_tables(settings.postgres_dsn, ("messages", "revisions", "observations"))
    n = len(import_events(files["file-plus47"], "file-plus47"))
    produce(settings, settings.topic, import_events(files["file-plus47"], "file-plus47", n + 1))
    again = process_once(settings, settings.topic, batch_records=250)
    assert again.records == n and again.changes == 0 and again.dead_letters == 0
    after = dump_tables(settings.postgres_dsn, ("messages", "revisions", "observations"))
    assert after == before


def produce_interleaved(settings, files: dict[str, Path]) -> None:
    """The files' events interleaved (each file's in its order, the first events in the
    files' order, so the ranking is the same), the later files' first events before the
    earliest file's copies of them."""
    streams = {host: import_events(files[host], host) for host, _ in FILES}
    # Apart in broker time (milliseconds): a tie would rank the files by host id.
    for host, _ in FILES:
        produce(settings, settings.topic, streams[host][:1])
        time.sleep(0.01)
    head = [e for host, _ in FILES[1:] for e in streams[host][1:LATE]]
    produce(settings, settings.topic, head)
    positions = {"file-true": 1, **{host: LATE for host, _ in FILES[1:]}}
    order = [h for h, s in streams.items() for _ in s[positions[h] :]]
    random.Random(3).shuffle(order)
    events = []
    for host in order:
        events.append(streams[host][positions[host]])
        positions[host] += 1
    produce(settings, settings.topic, events)


def test_interleaved_files_in_small_batches_reach_the_same_archive(settings, late_files) -> None:
    """The later files' offsets are estimated from no copies, then few, and their messages
    re-corrected as copies come."""
    produce_interleaved(settings, late_files)
    process_once(settings, settings.topic, batch_records=40)
    check_archive(settings, late_files)
    with psycopg.connect(settings.postgres_dsn) as conn:
        (moves,) = conn.execute(
            "SELECT count(*) FROM host_clocks WHERE host <> 'file-true'"
        ).fetchone()
    assert moves > 2, "no later file's offset moved: the refresh path went untested"


FILE_TABLES = {
    "proc_shared_ids": 'xid, host, "timestamp"',
    "proc_file_hosts": "host, first_broker_utc, offset_s, samples",
    "proc_file_pairs": "host_a, host_b, diff_s, copies",
}


def file_tables(dsn: str, schema: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET search_path TO {schema}")
        return {
            t: sorted(conn.execute(f"SELECT {cols} FROM {t}").fetchall())
            for t, cols in FILE_TABLES.items()
        }


def test_small_batches_end_where_one_batch_ends(settings, late_files) -> None:
    """All but the history of the estimates (host_clocks: when an offset moved depends on
    what each batch held) is a function of the events, however they are batched."""
    produce_interleaved(settings, late_files)
    process_once(settings, settings.topic)
    migrate(settings.postgres_dsn, "small")
    process_once(settings, settings.topic, batch_records=7, schema="small")
    dsn = settings.postgres_dsn
    stable = [t for t in STABLE_TABLES if t != "host_clocks"]
    assert dump_tables(dsn, stable, schema="small") == dump_tables(dsn, stable)
    assert file_tables(dsn, "small") == file_tables(dsn, "public")
