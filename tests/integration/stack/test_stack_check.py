"""The session-level check of tests/conftest.py: a test after which the shared stack stops
answering stops the session, named; and the probes it uses tell answering from not."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from chatchannels.stack.kafka import kafka_answer_problem
from chatchannels.stack.postgres import postgres_answer_problem
from tests.support.paths import REPO

pytestmark = pytest.mark.integration


def test_the_probes_see_the_shared_stack_answer(stack):
    assert kafka_answer_problem(stack) is None
    assert postgres_answer_problem(stack) is None


def test_the_kafka_probe_gives_up_on_a_broker_that_accepts_but_never_answers(stack):
    # What a frozen broker looks like from outside: the kernel accepts, nobody reads.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mute = stack.replace(
            kafka_port=silent.getsockname()[1],
            stack_dir=stack.stack_dir / "x",
            kafka_ca_file=str(stack.kafka_ca),
        )
        started = time.monotonic()
        problem = kafka_answer_problem(mute, timeout=0.5)
        assert problem is not None and "timed out" in problem
        assert time.monotonic() - started < 5


def test_a_test_that_leaves_the_stack_unanswering_stops_the_session_named(stack, tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            from tests import conftest

            def test_harmless(stack):
                pass

            def test_culprit(stack):
                # As if it had frozen the broker and never thawed it.
                conftest.STACK_RECOVERY_S = 1.0
                conftest._stack_problem = lambda settings: "Kafka: frozen (injected)"

            def test_never_reached(stack):
                pass
            """
        )
    )
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = inner.stdout + inner.stderr
    assert inner.returncode == pytest.ExitCode.TESTS_FAILED, out
    # The node id is relative to the inner session's rootdir, which depends on what config
    # files the temporary folder's parents hold: only its end is certain.
    assert re.search(r"stopped answering after \S*test_inner\.py::test_culprit and", out), out
    assert "Kafka: frozen (injected)" in out
    assert "2 passed" in out
