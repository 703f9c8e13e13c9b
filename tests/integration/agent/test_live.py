"""The agent against the emulator on a real dbus-daemon and the real Kafka: live flows,
allow-list, Skype quitting and coming back. Each test checks Kafka against ground truth."""

from __future__ import annotations

import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.scenario import bundled_scenario, load_scenario
from chatchannels.emulator.truth import ground_truth
from tests.support.agent_runs import (
    AgentProcess,
    TopicReader,
    missing_messages,
    wait_for,
)

pytestmark = pytest.mark.integration

DIALOG = "#alice/$bob;a7ab206ec78060f1"
GROUP = "#cecil/$bob;4d8cc9965791c6b9"
UNLISTED = "#bob/$72cb4c9d0871e6dc"


def _triggers(events, host):
    return [
        e["payload"]["trigger"] for e in events if e["host"] == host and e["payload"]["trigger"]
    ]


def test_live_flows_allow_list_and_restart(tmp_path, stack, kafka_topic, dbus_bus):
    from chatchannels.stack.dbus import session_bus

    scenario = load_scenario(bundled_scenario("small.json"))
    with session_bus(tmp_path / "dbus-alice") as alice_bus:
        emu = BackgroundEmulator(
            scenario, {"bob-laptop": dbus_bus.address, "alice-pc": alice_bus.address}
        )
        bob = AgentProcess(
            tmp_path / "bob",
            "bob-laptop",
            dbus_bus.address,
            stack,
            kafka_topic,
            chats=[DIALOG],
            chat_patterns=["^#cecil/"],
            clock_offset_s=scenario.host("bob-laptop").skew_s,
        )
        alice = AgentProcess(
            tmp_path / "alice",
            "alice-pc",
            alice_bus.address,
            stack,
            kafka_topic,
            chats=[DIALOG],
            reattach_max_backoff_s=1.0,
        )
        reader = TopicReader(stack, kafka_topic)
        try:
            bob.start()
            alice.start()
            for agent in (bob, alice):
                wait_for(
                    f"{agent.root.name} to attach",
                    lambda a=agent: a.status().get("attach_state") == "attached",
                    lambda a=agent: (a.status(), a.log_tail()),
                    60,
                )
            remaining = emu.step(1)
            while remaining:
                remaining = emu.step(1)
            everything = {DIALOG, GROUP}
            wait_for(
                "every message bob-laptop holds in the allowed chats",
                lambda: not missing_messages(scenario, reader.poll(), "bob-laptop", everything),
                lambda: (
                    missing_messages(scenario, reader.events, "bob-laptop", everything),
                    bob.log_tail(),
                ),
                90,
            )
            wait_for(
                "every message alice-pc holds in the dialog, the quit gap included",
                lambda: not missing_messages(scenario, reader.poll(), "alice-pc", {DIALOG}),
                lambda: (
                    missing_messages(scenario, reader.events, "alice-pc", {DIALOG}),
                    alice.log_tail(),
                ),
                90,
            )
            assert bob.terminate() == 0
            assert alice.terminate() == 0
            events = reader.poll()
        finally:
            bob.stop()
            alice.stop()
            emu.close()
            reader.close()

    # The allow-list: nothing of the unlisted chat, nor of alice's other chats, ever left.
    unlisted_bodies = {m.body for m in ground_truth(scenario) if m.chat == UNLISTED}
    for event in events:
        text = "\n".join([*event["payload"]["lines"], event["payload"]["trigger"] or ""])
        assert UNLISTED not in text, event
        assert not any(body and body in text for body in unlisted_bodies), event
    alice_chats = {
        line.split(" ", 3)[3]
        for e in events
        if e["host"] == "alice-pc"
        for line in e["payload"]["lines"]
        if " CHATNAME " in line
    }
    assert alice_chats == {DIALOG}

    # Each live flow of spec 6.4 reached Kafka as the trigger of an event.
    triggers = _triggers(events, "bob-laptop")
    for flow in (
        " STATUS RECEIVED",
        " STATUS SENT",
        " STATUS READ",
        " EDITED_TIMESTAMP ",
        f"CHAT {GROUP} TOPIC Release planning",
        f"CHAT {GROUP} MEMBERS ",
        " ACTIVITY_TIMESTAMP ",
    ):
        assert any(flow in t for t in triggers), f"no event triggered by {flow!r}"
    # A deletion is an edit to an empty body.
    assert any(t.endswith(" BODY ") for t in triggers)
    # Alice's Skype quit and came back: a re-attach backfill and a second session event.
    alice_events = [e for e in events if e["host"] == "alice-pc"]
    assert any(e["payload"]["reason"] == "reattach" for e in alice_events)
    # Per host: one session, seqs 1..n without gaps (repeats only from a resend).
    for host in ("alice-pc", "bob-laptop"):
        mine = [e for e in events if e["host"] == host]
        assert len({e["session"] for e in mine}) == 1
        assert sorted({e["seq"] for e in mine}) == list(range(1, len({e["seq"] for e in mine}) + 1))
