"""Processor instances in one consumer group, as production scales out: each its own OS
process (bench/processor_instance.py), Kafka splitting the topic's partitions between them,
all writing one store.

`run_group` runs them over a topic into a fresh schema until the store has consumed up to
the topic's end offsets, and measures what `bench_processor._process` measures of one
in-process run (wall time; CPU time of the processes, their decode workers, their PostgreSQL
backends), plus what the backends were doing, sampled from pg_stat_activity and pg_locks:
that is where instances wait for each other (the group advisory locks, the change-stream
lock), which no CPU figure shows.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from kafka import KafkaAdminClient
from psycopg import sql

from bench import children
from bench.cpu import busy_cores, cpu_seconds, descendants
from chatchannels.kafka_auth import client_options
from chatchannels.processors.pg.locks import changes_lock, files_lock
from chatchannels.processors.pg.offsets import stored_offsets
from chatchannels.settings import Settings
from chatchannels.stack.kafka import end_offsets

DRIVER = Path(__file__).with_name("processor_instance.py")
READY_S = 60.0
SAMPLE_S = 0.05
# Slower than this and the run is broken, not slow: the README's slowest figure is ~2,000/s.
SLOWEST_EVENTS_PER_S = 200

# Advisory lock keys but the store's two fixed ones are groups' (processors/pg/locks.py).
_GROUP_WAIT = "waiting for group locks"
_OUTSIDE_WAIT = "waiting for an advisory lock held outside this run"
_CHANGES_WAIT = "waiting for the change-stream lock"


def _lock_waits(schema: str) -> dict[int, str]:
    return {
        changes_lock(schema): _CHANGES_WAIT,
        files_lock(schema): "waiting for the imported files' lock",
    }


@dataclass
class GroupRun:
    instances: int
    seconds: float
    events: int
    # CPU seconds during the run per part, summed over the instances.
    cpu: dict[str, float]
    # Share of the backends' sampled states (pg_stat_activity, pg_locks) per state.
    backends: dict[str, float]
    # The stores' counts (store.Store.counts) and phase timings, summed over the instances.
    counts: Counter[str] = field(default_factory=Counter)
    timings: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    records: list[int] = field(default_factory=list)
    # Busy cores of the whole machine during the run (other engineers' work included).
    busy_cores: float = 0.0


def run_group(
    settings: Settings,
    topic: str,
    instances: int,
    batch: int,
    pythonpath: Path | None = None,
) -> GroupRun:
    """`instances` processors of this tree, or of the import tree `pythonpath`
    (bench/baseline.py), over `topic` (which keeps CreateTime) into a fresh schema."""
    end = end_offsets(settings, topic)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    group = f"chatchannels-bench-instances-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    args = [
        *("-P", str(DRIVER), "--topic", topic, "--group", group, "--schema", schema),
        *("--kafka", settings.kafka_bootstrap, "--dsn", settings.postgres_dsn),
        *("--batch", str(batch)),
    ]
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryFile("w+") as errors:
        try:
            ready = []
            for i in range(instances):
                # The first migrates the schema with its own tree's migrations.
                proc = children.start(
                    [*args, *(["--migrate"] if i == 0 else [])],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                )
                procs.append(proc)
                ready.append(_ready(proc, errors))
            for r in ready:
                # Not the installed tree's processor, found by its editable finder.
                if pythonpath is not None and not Path(r["processor"]).is_relative_to(pythonpath):
                    raise RuntimeError(f"{r['processor']} is not from {pythonpath}")
            run = _measure(settings, procs, ready, schema, group, topic, end, errors)
            for proc in procs:
                children.stop(proc)
                out = [json.loads(line) for line in proc.stdout]
                if not out:
                    raise RuntimeError(f"an instance said nothing at its end: {_tail(errors)}")
                done = out[-1]
                run.records.append(done["records"])
                run.batches += done["batches"]
                run.counts.update(done["counts"])
                run.timings.update(done["timings"])
            return run
        finally:
            for proc in procs:
                children.stop(proc)
            with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


def _ready(proc: subprocess.Popen, errors) -> dict:
    readable, _, _ = select.select([proc.stdout], [], [], READY_S)
    line = proc.stdout.readline() if readable else ""
    if not line:
        raise RuntimeError(
            f"a processor instance was not connected within {READY_S:g} s"
            f" (exit status {proc.poll()}): {_tail(errors)}"
        )
    return json.loads(line)


def _tail(errors) -> str:
    errors.seek(0)
    return errors.read()[-2000:]


def _measure(
    settings: Settings,
    procs: list[subprocess.Popen],
    ready: list[dict],
    schema: str,
    group: str,
    topic: str,
    end: dict[int, int],
    errors,
) -> GroupRun:
    """From `go` (once every instance holds its partitions, paused: processor_instance.py)
    until the stored offsets reach `end`, sampling the backends meanwhile."""
    backends = [r["backend"] for r in ready]
    pids = [p.pid for p in procs]
    older = set(descendants(os.getpid()))
    deadline_s = max(120.0, sum(end.values()) / SLOWEST_EVENTS_PER_S)
    # Both locks are named even when never waited for: a zero is a finding.
    states = Counter({_GROUP_WAIT: 0, _CHANGES_WAIT: 0})
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        _wait_assigned(settings, group, procs, errors)
        if any(stored_offsets(conn, group, topic).values()):
            raise RuntimeError(f"consumer {group} applied batches before go: the gate leaked")
        before = {pid: cpu_seconds(pid) for pid in [*pids, *backends]}
        workers_before = {
            pid: cpu_seconds(pid) for pid in set(descendants(os.getpid())) - older - set(pids)
        }
        machine = busy_cores()
        start = time.perf_counter()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        while True:
            stored = stored_offsets(conn, group, topic)
            if all(stored.get(p, 0) >= o for p, o in end.items()):
                break
            _check_alive(procs, errors)
            if time.perf_counter() - start > deadline_s:
                raise RuntimeError(
                    f"consumer {group}'s stored offsets in schema {schema} did not reach the"
                    f" end offsets of {topic} {end} within {deadline_s:g} s: they are {stored}"
                )
            states.update(_backend_states(conn, backends, _lock_waits(schema)))
            time.sleep(SAMPLE_S)
        seconds = time.perf_counter() - start
    # The decode workers (and forkservers) live until close: read while they run.
    workers = set(descendants(os.getpid())) - older - set(pids)
    busy, total = busy_cores()
    cores = os.cpu_count() or 1
    cpu = {
        "processes (all threads)": sum(cpu_seconds(pid) - before[pid] for pid in pids),
        "decode workers (and forkservers)": sum(
            cpu_seconds(pid) - workers_before.get(pid, 0.0) for pid in workers
        ),
        "PostgreSQL backends": sum(cpu_seconds(pid) - before[pid] for pid in backends),
    }
    sampled = sum(states.values()) or 1
    return GroupRun(
        instances=len(procs),
        seconds=seconds,
        events=sum(end.values()),
        cpu=cpu,
        backends={state: n / sampled for state, n in states.items()},
        busy_cores=cores * (busy - machine[0]) / max(total - machine[1], 1),
    )


def _check_alive(procs: list[subprocess.Popen], errors) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"a processor instance exited ({proc.returncode}): {_tail(errors)}")


def _wait_assigned(settings: Settings, group: str, procs: list[subprocess.Popen], errors) -> None:
    """Until consumer group `group` is stable with every instance holding partitions."""
    admin = KafkaAdminClient(**client_options(settings))
    try:
        deadline = time.monotonic() + READY_S
        while True:
            found = admin.describe_groups([group])[group]
            members = found["members"]
            if (
                found["group_state"] == "Stable"
                and len(members) == len(procs)
                and all(_assigned(m) for m in members)
            ):
                return
            _check_alive(procs, errors)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"consumer group {group} was not stable with {len(procs)} members holding"
                    f" partitions within {READY_S:g} s: {found}"
                )
            time.sleep(SAMPLE_S)
    finally:
        admin.close()


def _assigned(member: dict) -> bool:
    assigned = member["member_assignment"]["assigned_partitions"]
    return any(a["partitions"] for a in assigned)


def _backend_states(
    conn: psycopg.Connection, backends: list[int], lock_waits: dict[int, str]
) -> list[str]:
    """What each backend is doing now: waiting for which lock, for its client, or working."""
    rows = conn.execute(
        "SELECT a.state, a.wait_event_type, a.wait_event,"
        " (l.classid::bigint << 32) | l.objid::bigint, pg_blocking_pids(a.pid) <@ %s::int[]"
        " FROM pg_stat_activity a LEFT JOIN pg_locks l"
        " ON l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory'"
        " WHERE a.pid = ANY(%s)",
        (backends, backends),
    ).fetchall()
    out = []
    for state, wait_type, wait_event, key, by_this_run in rows:
        if key is not None and not by_this_run:
            # A lock of this run's keys held by a process outside it (the keys are per
            # schema: someone else working in this store).
            out.append(_OUTSIDE_WAIT)
        elif key is not None:
            signed = key - (1 << 64) if key >= 1 << 63 else key
            out.append(lock_waits.get(signed, _GROUP_WAIT))
        elif state == "idle in transaction":
            out.append("in a batch, waiting for its processor")
        elif state == "idle":
            out.append("between batches")
        elif wait_type is None:
            out.append("working")
        else:
            out.append(f"waiting: {wait_type} {wait_event}")
    return out
