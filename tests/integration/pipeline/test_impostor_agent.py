"""A real agent writing another desktop's events, through the real pipeline: bob-laptop's
desktop, with bob-laptop's own credentials (principal `agent-bob-laptop` and its password
file), runs the agent with `host_id = "alice-pc"` against alice's Skype (the emulator on a
real dbus-daemon). Everything it delivers reaches Kafka and is refused by the processor as
a dead letter of kind "signature"; nothing reaches the store. The same capture by alice's
own agent, with alice's credentials, is processed."""

from __future__ import annotations

import psycopg
import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.scenario import bundled_scenario, load_scenario
from chatchannels.processors.pg.migrate import migrate
from chatchannels.stack.kafka_principals import create_raw_topic, drop_topics
from tests.support.agent_runs import AgentProcess, TopicReader, missing_messages, wait_for
from tests.support.processor_harness import process_once, stored_messages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DIALOG = "#alice/$bob;a7ab206ec78060f1"
HOST = "alice-pc"


def capture(tmp_path, name: str, stack, topic: str, bus: str, scenario, **keys) -> int:
    """Run an agent for alice-pc's Skype until every message of the dialog is in Kafka;
    returns how many records the topic holds then."""
    agent = AgentProcess(
        tmp_path / name,
        HOST,
        bus,
        stack,
        topic,
        chats=[DIALOG],
        clock_offset_s=scenario.host(HOST).skew_s,
        **keys,
    )
    reader = TopicReader(stack, topic)
    try:
        agent.start()
        wait_for(
            f"{name}'s agent to deliver every message of the dialog",
            lambda: not missing_messages(scenario, reader.poll(), HOST, {DIALOG}),
            lambda: (missing_messages(scenario, reader.events, HOST, {DIALOG}), agent.log_tail()),
            90,
        )
        assert agent.terminate() == 0, agent.log_tail()
        return len(reader.poll())
    finally:
        agent.stop()
        reader.close()


def test_an_agent_with_another_desktops_credentials_is_refused(
    tmp_path, stack, kafka_topic, pg_dsn, dbus_bus
):
    migrate(pg_dsn)
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    scenario = load_scenario(bundled_scenario("small.json"))
    emu = BackgroundEmulator(scenario, {HOST: dbus_bus.address})
    try:
        while emu.step(1):
            pass
        forged = capture(
            tmp_path, "impostor", stack, kafka_topic, dbus_bus.address, scenario,
            kafka_user="agent-bob-laptop",
        )  # fmt: skip
        summary = process_once(settings, kafka_topic)
        assert forged > 0 and (summary.records, summary.dead_letters) == (forged, forged)
        assert stored_messages(pg_dsn) == []
        with psycopg.connect(pg_dsn) as conn:
            kinds = conn.execute("SELECT kind, count(*) FROM dead_letters GROUP BY kind").fetchall()
            reason = conn.execute("SELECT reason FROM dead_letters LIMIT 1").fetchone()[0]
            assert conn.execute("SELECT count(*) FROM seq_runs").fetchone()[0] == 0
        assert kinds == [("signature", forged)]
        assert "signed by 'agent-bob-laptop', which may not write events of host 'alice-pc'" in (
            reason
        )

        # Alice's own agent, on a topic of its own so that its capture is waited for.
        honest_topic = f"{kafka_topic}.alice"
        create_raw_topic(stack, honest_topic, partitions=1)
        try:
            total = capture(tmp_path, "alice", stack, honest_topic, dbus_bus.address, scenario)
            summary = process_once(settings, honest_topic)
        finally:
            drop_topics(stack, [honest_topic])
        assert (summary.records, summary.dead_letters) == (total, 0)
        assert {m.chat for m in stored_messages(pg_dsn)} == {DIALOG}
    finally:
        emu.close()
