"""Shared fixtures. Integration tests use the real services, never stand-ins.

One real stack (Kafka + PostgreSQL under <repo>/.stack, or $CHATCHANNELS_STACK_DIR) serves
the whole test run; each test gets its own topic and database on it, so several test runs can
share one broker. If the stack cannot start, the tests that need it fail with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatchannels.settings import Settings
from chatchannels.stack.dbus import SessionBus, session_bus
from tests.support.stack import private_stack_settings, shared_stack_settings

# How long the shared stack may take to answer again after a test: a test's own freeze of
# the broker (the demo's, 5 s plus its guard's grace) is over well within it.
STACK_RECOVERY_S = 20.0
# Set once this session brought the shared stack up (or found it up): from then on it must
# keep answering.
_stack_settings: Settings | None = None


@pytest.fixture
def dbus_bus(tmp_path) -> Iterator[SessionBus]:
    """A fresh private `dbus-daemon --session` for one test."""
    with session_bus(tmp_path / "dbus") as bus:
        yield bus


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The shared real stack; started if needed, and stopped at the end only if we started it."""
    from chatchannels.stack.manager import stack_down, stack_up

    global _stack_settings
    settings = shared_stack_settings()
    report = stack_up(settings)
    _stack_settings = settings
    yield settings
    _stack_settings = None
    if report.started:
        stack_down(settings)


def _stack_problem(settings: Settings) -> str | None:
    from chatchannels.stack.kafka import kafka_answer_problem
    from chatchannels.stack.postgres import postgres_answer_problem

    return kafka_answer_problem(settings) or postgres_answer_problem(settings)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """After each test on the shared stack, once its fixtures are gone: does the stack still
    answer? If not, the session stops here, naming the test, instead of failing every later
    test in cascade far from the cause (a frozen broker once cost 24 of them)."""
    yield
    if _stack_settings is None or "stack" not in item.fixturenames:
        return
    from chatchannels.stack.processes import StackError, wait_for

    problem = _stack_problem(_stack_settings)
    if problem is None:
        return
    try:
        wait_for(
            "the shared stack to answer again",
            lambda: _stack_problem(_stack_settings) is None,
            STACK_RECOVERY_S,
            0.5,
        )
    except StackError:
        pytest.exit(
            f"the shared stack stopped answering after {item.nodeid} and did not recover "
            f"within {STACK_RECOVERY_S:g} s: {_stack_problem(_stack_settings) or problem}. "
            "That test (or another run sharing the stack at the same time) left it so; "
            "the session stops here rather than fail every later test.",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )


@pytest.fixture
def kafka_topic(stack: Settings) -> Iterator[str]:
    """A fresh topic with the raw topic's configs (3 partitions) and its ACLs (the processor
    reads it, the importer writes it), both deleted afterwards."""
    from chatchannels.stack.kafka_principals import create_raw_topic, drop_topics

    name = f"test.{uuid.uuid4().hex[:12]}"
    create_raw_topic(stack, name, partitions=3)
    yield name
    drop_topics(stack, [name])


@pytest.fixture
def pg_dsn(stack: Settings) -> Iterator[str]:
    """A fresh PostgreSQL database on the shared server, dropped afterwards."""
    from chatchannels.stack.postgres import database_dsn, drop_database, ensure_database

    name = f"test_{uuid.uuid4().hex[:12]}"
    ensure_database(stack, name)
    yield database_dsn(stack, name)
    drop_database(stack, name)


@dataclass
class PrivateKafka:
    """A Kafka node of a test's own: it may stop and start it (never the shared one)."""

    settings: Settings

    def start(self) -> None:
        from chatchannels.stack import kafka, kafka_principals

        kafka.start_kafka(self.settings)
        kafka.wait_kafka_ready(self.settings)
        kafka_principals.ensure_server_principals(self.settings)

    def stop(self) -> None:
        from chatchannels.stack import kafka

        kafka.stop_kafka(self.settings)

    def create_topic(self, name: str, partitions: int = 1) -> str:
        from chatchannels.stack.kafka_principals import create_raw_topic

        create_raw_topic(self.settings, name, partitions)
        return name


@pytest.fixture
def private_stack_dir(stack: Settings) -> Iterator[Path]:
    """A folder for a second stack. Under the shared stack folder rather than pytest's tmp_path,
    because PostgreSQL runs as the `postgres` user, who cannot enter pytest's 0700 folders."""
    import shutil

    root = stack.stack_dir / "tmp" / uuid.uuid4().hex[:12]
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_kafka(stack: Settings, private_stack_dir: Path) -> Iterator[PrivateKafka]:
    node = PrivateKafka(private_stack_settings(stack, private_stack_dir))
    node.start()
    yield node
    node.stop()
