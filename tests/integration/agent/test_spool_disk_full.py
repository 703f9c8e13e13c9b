"""The agent's spool on a file system that fills up while Kafka is away: capture stops and
the status says why, what is spooled stays intact, and once there is room again capture
goes on and every message reaches Kafka, the seqs without a gap."""

from __future__ import annotations

import sqlite3
import time

import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.generate import write_scenario
from chatchannels.emulator.scenario import load_scenario
from chatchannels.ingest.agent.spool import read_summary
from tests.support.agent_runs import (
    AgentProcess,
    TopicReader,
    wait_all_in_kafka,
    wait_for,
)
from tests.support.faults import fill, tmpfs

pytestmark = pytest.mark.integration
HOST = "alice-pc"


def integrity(spool) -> str:
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def test_spool_disk_full_capture_pauses_and_resumes_losing_nothing(
    tmp_path, private_kafka, dbus_bus
) -> None:
    topic = private_kafka.create_topic("agent.spool.full")
    kafka = private_kafka.settings
    path = tmp_path / "scenario.jsonl"
    with path.open("w") as out:
        write_scenario(out, 1200, 3)
    scenario = load_scenario(path)
    chats = [c.name for c in scenario.chats if "alice" in c.members][:2]
    with tmpfs(tmp_path / "spoolfs", "8m") as volume:
        emu = BackgroundEmulator(scenario, {HOST: dbus_bus.address})
        agent = AgentProcess(
            tmp_path / "agent",
            HOST,
            dbus_bus.address,
            kafka,
            topic,
            spool=volume / "spool.db",
            chats=chats,
        )
        reader = TopicReader(kafka, topic)
        try:
            emu.step(300)
            agent.start()
            wait_for(
                "first events in Kafka",
                lambda: len(reader.poll()) > 50,
                lambda: (agent.status(), agent.log_tail()),
                60,
            )
            # Kafka away, so that the spool holds what capture writes; then no room left.
            private_kafka.stop()
            emu.step(20)
            wait_for(
                "events waiting in the spool",
                lambda: read_summary(agent.spool).depth > 0,
                lambda: (read_summary(agent.spool), agent.log_tail()),
                30,
            )
            filler = fill(volume)
            spooled = read_summary(agent.spool)

            def paused() -> bool:
                emu.step(5)  # small steps: see test_agent_crash (dbus-fast and EAGAIN)
                return bool(agent.status().get("capture_paused"))

            wait_for("capture to pause", paused, lambda: (agent.status(), agent.log_tail()), 60)
            assert "no space left on the device of the spool" in agent.status()["capture_paused"]
            assert "waiting for space for the spool: no space left" in agent.log_tail(200)

            # Stopped, not failing: nothing more is written, and what is there is whole. The
            # agent rewrites its status every second; two rewrites after now show its loop
            # ran meanwhile, paused.
            def looped_since(moment: float) -> None:
                wait_for(
                    "two status rewrites by the paused agent",
                    lambda: agent.status().get("updated_at", 0) > moment + 1,
                    lambda: (agent.status(), agent.log_tail()),
                    20,
                )

            looped_since(time.time())
            assert agent.proc.poll() is None, agent.log_tail()
            held = read_summary(agent.spool)
            assert held.next_seq >= spooled.next_seq and held.depth >= spooled.depth
            emu.step(10)
            looped_since(time.time())
            assert read_summary(agent.spool).next_seq == held.next_seq
            assert integrity(agent.spool) == "ok"

            filler.unlink()
            wait_for(
                "capture to go on",
                lambda: (
                    agent.status().get("capture_paused") == ""
                    and read_summary(agent.spool).next_seq > held.next_seq
                ),
                lambda: (agent.status(), agent.log_tail()),
                60,
            )
            private_kafka.start()
            emu.step(emu.emulator.total)
            wait_all_in_kafka(scenario, reader, agent, HOST, set(chats), 180, bodies=False)
            assert agent.terminate() == 0
            events = reader.poll()
        finally:
            agent.stop()
            emu.close()
            reader.close()
    seqs = sorted({e["seq"] for e in events})
    assert seqs == list(range(1, len(seqs) + 1))
