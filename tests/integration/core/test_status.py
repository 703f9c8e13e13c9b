"""`chatchannels status` on a pipeline of its own: healthy, red with the reason while its
Kafka broker is frozen (SIGSTOP, on a private broker: never the shared one), healthy again
once it thaws."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from chatchannels.health.cli import status
from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers.publishing import publish
from chatchannels.publishers.serve import make_server
from chatchannels.settings import Settings
from chatchannels.stack.freeze import frozen
from chatchannels.stack.kafka import kafka_pid
from chatchannels.stack.processes import process_state, wait_for
from tests.support.open_site import OPEN_SITE
from tests.support.processor_events import Host
from tests.support.processor_harness import host_events, now_base, process_once, produce
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

# Longer than the test needs the broker stopped: the guard thaws it then at the latest.
FREEZE_S = 60.0


@pytest.fixture
def pipeline(private_kafka, pg_dsn, tmp_path) -> Iterator[Settings]:
    """A few events of two hosts in a topic on the private broker, processed into a fresh
    database, published, and the site served."""
    topic = private_kafka.create_topic("status.raw", partitions=3)
    migrate(pg_dsn)
    port = free_port()
    settings = private_kafka.settings.replace(
        topic=topic,
        dsn=pg_dsn,
        site_dir=tmp_path / "site",
        serve_url=f"http://127.0.0.1:{port}/",
    )
    base = now_base(6)
    alice, bob = Host("alice-pc"), Host("bob-pc", skew=47)
    for i in range(5):
        for host in (alice, bob):
            host.read(f"{i}", posted=base + i, body=f"hello {i}", at=base + i + 0.1)
    produce(settings, topic, host_events([alice, bob]))
    assert process_once(settings, topic).records == 10
    publish(pg_dsn, settings.site_dir, once=True)
    server = make_server(settings.site_dir, port=port, access=OPEN_SITE)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield settings
    finally:
        server.shutdown()
        server.server_close()
        serving.join(10)


def run_status(settings: Settings) -> tuple[int, dict]:
    result = CliRunner().invoke(status, ["--json"], obj=settings, catch_exceptions=False)
    return result.exit_code, json.loads(result.output)


def test_status_is_red_while_kafka_is_frozen_and_says_why(pipeline) -> None:
    code, found = run_status(pipeline)
    assert (code, found["reasons"]) == (0, []), found
    assert found["processor"]["lag_total"] == 0
    assert {h["host"] for h in found["hosts"]} == {"alice-pc", "bob-pc"}
    assert found["publishers"]["site"]["behind"] == 0
    assert found["serve"]["problem"] is None
    assert found["services"]["Kafka"]["version"]

    pid = kafka_pid(pipeline)
    assert pid is not None
    with frozen(pid, FREEZE_S):
        wait_for("the private broker stopped", lambda: process_state(pid) == "T", 10, 0.05)
        code, found = run_status(pipeline)
    assert code == 1
    assert found["healthy"] is False
    (reason,) = found["reasons"]
    assert reason.startswith(f"Kafka at {pipeline.kafka_bootstrap} does not answer")
    assert "SIGSTOP" in reason
    assert found["processor"]["lag"] is None

    # Thawed: green again, once the broker answers (within a deadline, not at once).
    wait_for("status to be healthy after the thaw", lambda: run_status(pipeline)[0] == 0, 60, 1)


def test_text_output_lists_the_reasons(pipeline) -> None:
    broken = pipeline.replace(serve_url=f"http://127.0.0.1:{free_port()}/")
    result = CliRunner().invoke(status, [], obj=broken, catch_exceptions=False)
    assert result.exit_code == 1
    assert "UNHEALTHY: 1 reason(s)" in result.output
    assert f"serve at {broken.serve_url} does not answer" in result.output
    assert "not reported in events" in result.output


def test_a_store_that_does_not_answer_is_a_reason_not_a_traceback(stack) -> None:
    away = stack.replace(dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    code, found = run_status(away)
    assert code == 1
    assert any(r.startswith("PostgreSQL at ") and "does not answer" in r for r in found["reasons"])
    assert found["hosts"] == [] and found["processor"]["lag"] is None
