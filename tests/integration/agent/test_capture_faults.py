"""The capture loop in-process against the emulator on a real bus, under Skype's faults:
quitting and coming back within milliseconds, again and again, in the middle of backfills and
live traffic; and message reads that time out.

The agent's other tests go through Kafka; these keep the spool side to a list so that many
restarts fit in a few seconds, and check the capture's own promises: every message of the
allowed chats is read in full, and no chat's mark claims a message that was not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.generate import write_scenario
from chatchannels.emulator.scenario import load_scenario
from chatchannels.ingest.agent.allowlist import AllowList
from chatchannels.ingest.agent.capture import Capture, Captured, wall_clock
from chatchannels.ingest.agent.reads import build_event
from chatchannels.ingest.desktop_api.client import Backoff, SkypeClient
from tests.support.agent_runs import missing_messages

pytestmark = pytest.mark.integration
HOST = "alice-pc"


class Run:
    """A capture of `HOST`'s allowed chats whose spool is a list of events."""

    def __init__(self, tmp_path, messages: int, seed: int, dbus_address: str) -> None:
        path = tmp_path / "scenario.jsonl"
        with path.open("w") as out:
            write_scenario(out, messages, seed)
        self.scenario = load_scenario(path)
        self.chats = [c.name for c in self.scenario.chats if "alice" in c.members][:2]
        self.address = dbus_address
        self.emu = BackgroundEmulator(self.scenario, {HOST: dbus_address})
        self.events: list[dict] = []

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.emu.close()

    @asynccontextmanager
    async def capturing(
        self, command_timeout: float = 10.0
    ) -> AsyncIterator[tuple[Capture, SkypeClient]]:
        """A started, attached capture; stopped after, and it must not have failed."""
        capture, client = self._capture(command_timeout)
        capture.start()
        try:
            await client.connect(wait=True, timeout=30)
            yield capture, client
            assert capture.failed is None
        finally:
            await capture.stop()
            await client.close()

    def _capture(self, command_timeout: float) -> tuple[Capture, SkypeClient]:
        async def sink(batch: list[Captured], marks: dict[str, int]) -> None:
            await asyncio.sleep(0.002)  # a spool write takes a moment; reads pile up meanwhile
            for item in batch:
                seq = len(self.events) + 1
                event = build_event(item.read, host=HOST, session="s", seq=seq, clock=item.clock)
                self.events.append(event)

        client = SkypeClient(
            "ChatArchiveTest",
            bus_address=self.address,
            command_timeout=command_timeout,
            backoff=Backoff(initial=0.01, maximum=0.2),
        )
        allow = AllowList.build(self.chats, [])
        # No periodic rescan: what is put off must come back by the capture's own means.
        capture = Capture(client, allow, sink, wall_clock(0), {}, rescan_interval_s=3600)
        return capture, client

    def missing(self) -> list[str]:
        return missing_messages(self.scenario, self.events, HOST, set(self.chats), bodies=False)

    async def settled(
        self, capture: Capture, client: SkypeClient, done: Callable[[], bool], timeout=60.0
    ) -> None:
        """Wait until no read is in flight and `done()`; fail naming the state if never."""
        state = capture.state
        deadline = time.monotonic() + timeout
        while True:
            busy = state.reading or state.backfilling or not client.attached
            if not busy and done():
                return
            assert time.monotonic() < deadline, f"never settled: {self.missing()[:3]}, {state}"
            await asyncio.sleep(0.3)

    def assert_marks_claim_only_captured(self, capture: Capture, at_the_end: bool) -> None:
        """`at_the_end`: a backfill ran after the last message, so the marks reached it (only
        backfills move marks; a message read live is under a mark from the next one on)."""
        world = self.emu.emulator.world.hosts[HOST]
        for chat in self.chats:
            ids = list(world.chats[chat].messages)
            mark = capture.state.marks[chat]
            assert mark == max(ids) if at_the_end else mark >= min(ids)
            assert not [i for i in ids if i <= mark and i not in capture.state.captured]


@pytest.mark.parametrize("seed", [3, 114])
def test_quick_restarts_during_backfill_and_live_capture_lose_nothing(tmp_path, dbus_bus, seed):
    async def scenario(run: Run) -> Capture:
        emu = run.emu
        loop = asyncio.get_running_loop()
        async with run.capturing() as (capture, client):
            remaining = emu.emulator.total - emu.emulator.applied
            while remaining > 0:
                await loop.run_in_executor(None, emu.step, 150)
                remaining -= 150
                if emu.status(HOST)["running"]:
                    await loop.run_in_executor(None, emu.quit, HOST)
                await loop.run_in_executor(None, emu.restart, HOST)
            # Every read the restarts put off is done again without help.
            state = capture.state
            await run.settled(capture, client, lambda: not state.missed and not run.missing())
        return capture

    with Run(tmp_path, 1200, seed, dbus_bus.address) as run:
        run.emu.step(300)
        capture = asyncio.run(scenario(run))
        run.assert_marks_claim_only_captured(capture, at_the_end=True)


def test_message_reads_that_time_out_are_done_again(tmp_path, dbus_bus):
    put_off: set[int] = set()

    async def scenario(run: Run) -> Capture:
        emu = run.emu
        loop = asyncio.get_running_loop()
        async with run.capturing(command_timeout=0.5) as (capture, client):
            state = capture.state
            await run.settled(capture, client, lambda: True)
            emu.act("fault", host=HOST, fault="slow_message_gets", on=True)
            await loop.run_in_executor(None, emu.step, 60)
            await run.settled(capture, client, lambda: bool(state.missed))
            put_off.update(state.missed)
            emu.act("fault", host=HOST, fault="slow_message_gets", on=False)
            # Put-off reads are done again at the next rescan (called now, not in 5 minutes).
            await capture.rescan()
            await loop.run_in_executor(None, emu.step, emu.emulator.total)
            await run.settled(capture, client, lambda: not state.missed and not run.missing())
        return capture

    # Seed 7: Alice's Skype quits and comes back early on, and runs from action 100 to the end.
    with Run(tmp_path, 400, 7, dbus_bus.address) as run:
        run.emu.step(100)
        capture = asyncio.run(scenario(run))
        world = run.emu.emulator.world.hosts[HOST]
        allowed = {i for chat in run.chats for i in world.chats[chat].messages}
        # Reads of other chats' messages time out too (their CHATNAME decides); not those.
        assert put_off & allowed, "no read of an allowed chat's message timed out"
        assert put_off & allowed <= capture.state.captured
        run.assert_marks_claim_only_captured(capture, at_the_end=False)
