"""Run a scenario on real buses: the emulator's Python API (asyncio).

    async with Emulator(scenario, {"alice-pc": bus.address}) as emu:   # step mode
        await emu.step(3)
        await emu.quit("alice-pc"); await emu.restart("alice-pc")

Step mode (speed None): true time is the scenario's (`start` + the last applied action's
`at`), so ground truth is exact. With a speed factor the timeline plays by itself: offset 0
maps to the moment `start()` ran and true time advances `speed` times faster than the
event loop's clock. Hosts without a bus address are emulated (they post, hold history) but
have no D-Bus presence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType

from chatchannels.emulator.scenario import Action, Scenario, ScenarioError
from chatchannels.emulator.service import ControlService, SkypeService
from chatchannels.emulator.world import Notice, World

logger = logging.getLogger(__name__)


class Emulator:
    def __init__(
        self, scenario: Scenario, buses: Mapping[str, str], speed: float | None = None
    ) -> None:
        unknown = set(buses) - {h.id for h in scenario.hosts}
        if unknown:
            raise ScenarioError(
                f"--bus names hosts the scenario lacks: {', '.join(sorted(unknown))}"
            )
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.scenario = scenario
        self.speed = speed
        self.world = World(scenario)
        self.skype = {h: SkypeService(self, h, addr) for h, addr in buses.items()}
        self.control = {h: ControlService(self, h, addr) for h, addr in buses.items()}
        self._actions = scenario.actions()
        self._pending: Action | None = None
        self.applied = 0
        self._live_actions = 0
        self.total = scenario.count_actions()
        self._lock = asyncio.Lock()
        self._t0 = 0.0
        self._player: asyncio.Task | None = None
        self.finished = asyncio.Event()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        for service in [*self.skype.values(), *self.control.values()]:
            await service.start()
        self._t0 = asyncio.get_running_loop().time()
        if self.total == 0:
            self.finished.set()
        if self.speed is not None:
            self._player = asyncio.create_task(self._play())

    async def stop_playing(self) -> int:
        """Play no further timeline actions; the desktops stay up, so whatever the applied
        ones notified can still be read. Returns how many were applied: the timeline's first
        so many, each either wholly applied or not at all."""
        if self._player is not None:
            # Under the lock the player is between actions, never inside one.
            async with self._lock:
                self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)
            self._player = None
        return self.applied

    async def stop(self) -> None:
        await self.stop_playing()
        for service in [*self.skype.values(), *self.control.values()]:
            await service.stop()

    # --- the clock ----------------------------------------------------------------------

    def sync_clock(self) -> None:
        """Bring the world's true time up to now (speed mode); step mode keeps its time."""
        if self.speed is not None:
            elapsed = asyncio.get_running_loop().time() - self._t0
            self.world.now = max(self.world.now, self.scenario.start + elapsed * self.speed)

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.speed is not None
        while (action := self._peek()) is not None:
            delay = self._t0 + action.at / self.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.step(1)

    # --- driving ------------------------------------------------------------------------

    def _peek(self) -> Action | None:
        if self._pending is None:
            self._pending = next(self._actions, None)
        return self._pending

    async def step(self, count: int = 1) -> int:
        """Apply the next `count` timeline actions; returns how many remain."""
        async with self._lock:
            for _ in range(count):
                action = self._peek()
                if action is None:
                    break
                self._pending = None
                await self._apply(action)
                self.applied += 1
            if self._peek() is None:
                self.finished.set()
            return self.total - self.applied

    async def run_to_end(self) -> int:
        before = self.applied
        await self.step(self.total)
        return self.applied - before

    async def act(self, op: str, **fields: object) -> str:
        """Apply an action that is not in the timeline, at the current true time.

        e.g. `await emu.act("post", chat=name, author="bob", body="hi")`; returns the
        scenario message id (`live<n>` unless `msg` was given)."""
        self.sync_clock()
        self._live_actions += 1
        fields.setdefault("msg", f"live{self._live_actions}")
        at = self.world.now - self.scenario.start
        action = Action(index=-self._live_actions, at=at, op=op, **fields)  # type: ignore[arg-type]
        async with self._lock:
            await self._apply(action)
        return action.message_id

    async def _apply(self, action: Action) -> None:
        # Timeline actions happen at their scheduled true time in both modes, so the
        # timestamps hosts report match ground truth exactly.
        self.deliver(self.world.apply(action))
        await self._reconcile()

    async def quit(self, host_id: str) -> None:
        await self.act("quit", host=host_id)

    async def restart(self, host_id: str) -> None:
        await self.act("restart", host=host_id)

    def set_online(self, host_id: str, online: bool) -> None:
        self.deliver(self.world.set_online(host_id, online))

    async def _reconcile(self) -> None:
        """Make each host's D-Bus presence match whether its Skype is running."""
        for host_id, service in self.skype.items():
            running = self.world.hosts[host_id].running
            if running and not service.running:
                await service.start()
            elif not running and service.running:
                await service.stop()

    # --- output -------------------------------------------------------------------------

    def deliver(self, notices: Iterable[Notice]) -> None:
        for notice in notices:
            service = self.skype.get(notice.host)
            if service is not None:
                service.notify(notice.connection, notice.text)

    def forget_connection(self, host_id: str, connection: str) -> None:
        self.world.hosts[host_id].connections.pop(connection, None)

    def status(self, host_id: str) -> dict:
        host = self.world.hosts[host_id]
        return {
            "host": host_id,
            "user": host.me,
            "running": host.running,
            "online": host.online,
            "faults": sorted(host.faults),
            "attached": sorted(name for name, _ in host.attached()),
            "applied": self.applied,
            "remaining": self.total - self.applied,
            "true_time": self.world.now,
            "host_clock": host.host.clock(self.world.now),
            "mode": "step" if self.speed is None else f"speed {self.speed:g}",
        }
