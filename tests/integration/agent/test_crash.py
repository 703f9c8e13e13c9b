"""Losing nothing: the agent killed with SIGKILL mid-backfill and mid-live-capture, and Kafka
stopped for 30 s during capture. Each test checks Kafka against the scenario's ground truth."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.generate import write_scenario
from chatchannels.emulator.scenario import load_scenario
from chatchannels.ingest.agent.spool import SpoolError, read_summary
from tests.support.agent_runs import (
    AgentProcess,
    TopicReader,
    wait_all_in_kafka,
    wait_for,
)

pytestmark = pytest.mark.integration
HOST = "alice-pc"


def _scenario(tmp_path, messages: int, seed: int):
    path = tmp_path / "scenario.jsonl"
    with path.open("w") as out:
        write_scenario(out, messages, seed)
    return load_scenario(path)


def _alice_chats(scenario) -> list[str]:
    # Two of alice's chats; the others (and every chat she is not in) stay unlisted.
    return [c.name for c in scenario.chats if "alice" in c.members][:2]


def _next_seq(agent: AgentProcess) -> int:
    try:
        return read_summary(agent.spool).next_seq
    except SpoolError:
        return 1


def _assert_only_identical_repeats(events) -> None:
    """Per host: seqs 1..n with no gap across restarts; a repeated seq is the same record;
    a message read twice by backfills shows the same lines (an identical re-read)."""
    by_seq: dict[tuple[str, int], dict] = {}
    for event in events:
        key = (event["host"], event["seq"])
        assert by_seq.setdefault(key, event) == event, f"seq {key} carries two different events"
    seqs = sorted(s for h, s in by_seq if h == HOST)
    assert seqs == list(range(1, len(seqs) + 1))
    reads = defaultdict(set)
    for event in by_seq.values():
        payload = event["payload"]
        if payload["object"] == "CHATMESSAGE" and payload["reason"] == "backfill":
            reads[payload["id"]].add(tuple(payload["lines"]))
    changed = {k: v for k, v in reads.items() if len(v) > 1}
    assert not changed, f"re-reads differ: {list(changed.items())[:2]}"


def test_sigkill_mid_backfill_several_times(tmp_path, stack, kafka_topic, dbus_bus):
    scenario = _scenario(tmp_path, 8000, seed=11)
    chats = _alice_chats(scenario)
    emu = BackgroundEmulator(scenario, {HOST: dbus_bus.address})
    agent = AgentProcess(
        tmp_path / "agent", HOST, dbus_bus.address, stack, kafka_topic, chats=chats
    )
    reader = TopicReader(stack, kafka_topic)
    try:
        emu.step(emu.emulator.total)
        for round_ in range(3):
            before = _next_seq(agent)
            agent.start()
            wait_for(
                f"backfill progress in round {round_}",
                lambda b=before: _next_seq(agent) >= b + 300,
                lambda: (_next_seq(agent), agent.log_tail()),
                60,
            )
            agent.kill9()
        agent.start()
        wait_all_in_kafka(scenario, reader, agent, HOST, set(chats), 120)
        assert agent.terminate() == 0
        events = reader.poll()
    finally:
        agent.stop()
        emu.close()
        reader.close()
    assert len({e["session"] for e in events}) == 4
    _assert_only_identical_repeats(events)


def test_sigkill_mid_live_capture_several_times(tmp_path, stack, kafka_topic, dbus_bus):
    scenario = _scenario(tmp_path, 800, seed=5)
    chats = _alice_chats(scenario)
    emu = BackgroundEmulator(scenario, {HOST: dbus_bus.address})
    agent = AgentProcess(
        tmp_path / "agent",
        HOST,
        dbus_bus.address,
        stack,
        kafka_topic,
        chats=chats,
        reattach_max_backoff_s=1.0,
    )
    reader = TopicReader(stack, kafka_topic)
    try:
        agent.start()
        for _ in range(4):
            # Running (attached, or waiting while the scenario has alice's Skype quit).
            wait_for("the agent to run", agent.status, agent.log_tail, 60)
            emu.step(120)  # live: notifications pour in while the agent reads
            agent.kill9()
            emu.step(40)  # posted while the agent is dead: the restart backfill must find them
            agent.start()
        emu.step(emu.emulator.total)
        # Edits made while the agent was dead are not re-read (only new messages are), so
        # this checks every message is there, not each final body.
        wait_all_in_kafka(scenario, reader, agent, HOST, set(chats), 120, bodies=False)
        assert agent.terminate() == 0
        events = reader.poll()
    finally:
        agent.stop()
        emu.close()
        reader.close()
    seqs = sorted({e["seq"] for e in events})
    assert seqs == list(range(1, len(seqs) + 1))


def test_kafka_down_30s_during_capture_loses_nothing(tmp_path, private_kafka, dbus_bus):
    topic = private_kafka.create_topic("agent.kafka.down")
    kafka = private_kafka.settings
    scenario = _scenario(tmp_path, 1200, seed=3)
    chats = _alice_chats(scenario)
    emu = BackgroundEmulator(scenario, {HOST: dbus_bus.address})
    agent = AgentProcess(
        tmp_path / "agent", HOST, dbus_bus.address, kafka, topic, chats=chats, max_in_flight=500
    )
    reader = TopicReader(kafka, topic)
    try:
        emu.step(300)  # history to backfill
        agent.start()
        wait_for(
            "first events in Kafka",
            lambda: len(reader.poll()) > 50,
            lambda: (agent.status(), agent.log_tail()),
            60,
        )
        private_kafka.stop()
        down_since = time.monotonic()
        # Capture goes on for 30 s without Kafka: the timeline keeps playing meanwhile.
        while time.monotonic() - down_since < 30:
            # Small steps: the emulator's dbus-fast connection dies when a burst finds its
            # socket buffer full (EAGAIN treated as fatal in dbus-fast 5.2).
            emu.step(5)
            wait_for(
                "a status update",
                lambda: agent.status().get("updated_at", 0) > time.time() - 5,
                agent.status,
                10,
            )
        status = agent.status()
        assert status["kafka_connected"] is False or status["in_flight"] <= 500
        private_kafka.start()
        emu.step(emu.emulator.total)
        # Presence, not each final body: the generated timeline also takes alice offline,
        # and edits made meanwhile never reach her host (a Skype fact, not a Kafka one).
        wait_all_in_kafka(scenario, reader, agent, HOST, set(chats), 180, bodies=False)
        assert agent.terminate() == 0
        events = reader.poll()
    finally:
        agent.stop()
        emu.close()
        reader.close()
    # In order per host: first appearances of seqs rise monotonically.
    first_seen = list(dict.fromkeys(e["seq"] for e in events))
    assert first_seen == sorted(first_seen)
    assert first_seen == list(range(1, len(first_seen) + 1))
