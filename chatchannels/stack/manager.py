"""`stack up|down|status`: the real Kafka and PostgreSQL a developer, CI and the demo run on.

Every operation is idempotent and serialised by a lock file, so two test runs or a test run
and a demo that start at once do not race to format storage or run initdb.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from chatchannels.settings import Settings, settings_env
from chatchannels.stack import kafka, kafka_principals, postgres
from chatchannels.stack.processes import StackError, port_open


@contextmanager
def stack_lock(settings: Settings) -> Iterator[None]:
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    with (settings.stack_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    seconds: float = 0.0


def stack_up(settings: Settings, timeout: float = 120) -> UpReport:
    """Start whatever is not running, wait until both answer, create topic and database."""
    t0 = time.monotonic()
    report = UpReport()
    with stack_lock(settings):
        kafka.fetch_kafka(settings)
        for name, pid_of, start in (
            ("kafka", kafka.kafka_pid, kafka.start_kafka),
            ("postgres", postgres.postgres_pid, postgres.start_postgres),
        ):
            if pid_of(settings):
                report.already_running.append(name)
            else:
                start(settings)
                report.started.append(name)
        if "postgres" in report.already_running:
            # Started by an older stack, or its passwords changed since (start_postgres sets
            # them when it starts the server).
            postgres.set_passwords(settings)
        postgres.wait_postgres_ready(settings, timeout)
        kafka.wait_kafka_ready(settings, timeout)
        if kafka.ensure_topic(settings, settings.topic, settings.partitions):
            report.created.append(f"topic {settings.topic}")
        kafka_principals.ensure_server_principals(settings)
        if postgres.ensure_database(settings):
            report.created.append(f"database {settings.pg_database}")
    report.seconds = time.monotonic() - t0
    return report


def stack_down(settings: Settings) -> list[str]:
    """Stop both cleanly (Kafka's controlled shutdown, PostgreSQL's fast shutdown)."""
    stopped = []
    with stack_lock(settings):
        if kafka.stop_kafka(settings):
            stopped.append("kafka")
        if postgres.stop_postgres(settings):
            stopped.append("postgres")
    return stopped


def stack_status(settings: Settings) -> dict[str, Any]:
    """Versions, addresses and health; never raises for a service that is down."""
    kpid = kafka.kafka_pid(settings)
    ppid = postgres.postgres_pid(settings)
    status: dict[str, Any] = {
        "stack_dir": str(settings.stack_dir),
        "env": settings_env(settings),
        "kafka": {
            "address": settings.kafka_bootstrap,
            "pid": kpid,
            "jars": f"kafka_2.13-{settings.kafka_version}",
            "fetched": kafka.kafka_jar(settings).exists(),
            "healthy": False,
        },
        "postgres": {
            "address": f"{settings.pg_host}:{settings.pg_port}",
            "pid": ppid,
            "healthy": False,
        },
    }
    if kpid and port_open(settings.kafka_host, settings.kafka_port):
        try:
            status["kafka"]["broker_api_version"] = ".".join(
                map(str, kafka.broker_version(settings))
            )
            status["kafka"]["healthy"] = True
        except Exception as exc:  # reported, not raised: status must describe a sick stack
            status["kafka"]["error"] = str(exc)
    if ppid:
        try:
            status["postgres"]["server_version"] = postgres.server_version(settings)
            status["postgres"]["healthy"] = True
        except Exception as exc:
            status["postgres"]["error"] = str(exc)
    status["healthy"] = status["kafka"]["healthy"] and status["postgres"]["healthy"]
    return status


def report_dict(report: UpReport) -> dict[str, Any]:
    return asdict(report)


__all__ = ["StackError", "UpReport", "report_dict", "stack_down", "stack_status", "stack_up"]
