"""The capture loop in-process against the emulator on a real bus, while Skype quits and
comes back within milliseconds, again and again, in the middle of backfills and live traffic.

The agent's other tests go through Kafka; this one keeps the spool side to a list so that
many restarts fit in a few seconds, and checks the capture's own promises: every message of
the allowed chats is read in full, and no chat's mark claims a message that was not.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.generate import write_scenario
from chatchannels.emulator.scenario import load_scenario
from chatchannels.ingest.agent.allowlist import AllowList
from chatchannels.ingest.agent.capture import Capture, Captured, wall_clock
from chatchannels.ingest.agent.reads import build_event
from chatchannels.ingest.desktop_api.client import Backoff, SkypeClient
from tests.integration.test_agent_support import missing_messages

pytestmark = pytest.mark.integration
HOST = "alice-pc"


@pytest.mark.parametrize("seed", [3, 114])
def test_quick_restarts_during_backfill_and_live_capture_lose_nothing(tmp_path, dbus_bus, seed):
    path = tmp_path / "scenario.jsonl"
    with path.open("w") as out:
        write_scenario(out, 1200, seed)
    scenario = load_scenario(path)
    chats = [c.name for c in scenario.chats if "alice" in c.members][:2]
    emu = BackgroundEmulator(scenario, {HOST: dbus_bus.address})
    try:
        emu.step(300)
        capture = asyncio.run(_capture_while_restarting(emu, dbus_bus.address, scenario, chats))
        world = emu.emulator.world.hosts[HOST]
        listed = {chat: list(world.chats[chat].messages) for chat in chats}
    finally:
        emu.close()
    for chat, ids in listed.items():
        mark = capture.state.marks[chat]
        assert mark == max(ids)
        assert not [i for i in ids if i <= mark and i not in capture.state.captured]


async def _capture_while_restarting(emu, address: str, scenario, chats: list[str]) -> Capture:
    events: list[dict] = []

    async def sink(batch: list[Captured], marks: dict[str, int]) -> None:
        await asyncio.sleep(0.002)  # a spool write takes a moment; reads pile up meanwhile
        for item in batch:
            seq = len(events) + 1
            events.append(build_event(item.read, host=HOST, session="s", seq=seq, clock=item.clock))

    client = SkypeClient(
        "ChatArchiveTest", bus_address=address, backoff=Backoff(initial=0.01, maximum=0.2)
    )
    capture = Capture(
        client, AllowList.build(chats, []), sink, wall_clock(0), {}, rescan_interval_s=3600
    )
    loop = asyncio.get_running_loop()
    capture.start()
    try:
        await client.connect(wait=True, timeout=30)
        remaining = emu.emulator.total - emu.emulator.applied
        while remaining > 0:
            await loop.run_in_executor(None, emu.step, 150)
            remaining -= 150
            if emu.status(HOST)["running"]:
                await loop.run_in_executor(None, emu.quit, HOST)
            await loop.run_in_executor(None, emu.restart, HOST)
        # Every read the restarts put off is done again without help: no rescan is due.
        state = capture.state
        deadline = time.monotonic() + 60
        while True:
            missing = missing_messages(scenario, events, HOST, set(chats), bodies=False)
            busy = state.missed or state.reading or state.backfilling or not client.attached
            if not missing and not busy:
                break
            assert time.monotonic() < deadline, f"never settled: {missing[:3]}, {state}"
            await asyncio.sleep(0.3)
        assert capture.failed is None
    finally:
        await capture.stop()
        await client.close()
    return capture
