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
from chatchannels.emulator.service import ControlService, EmulatorBusError, SkypeService
from chatchannels.emulator.world import Notice, World

logger = logging.getLogger(__name__)

# How long a Skype whose connection was lost stays away before it is back, as a restart
# takes a moment; the first retry if the bus is unreachable then, doubling up to the cap.
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 5.0


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
        self._recoveries: dict[str, asyncio.Task] = {}
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
        for task in self._recoveries.values():
            task.cancel()
        await asyncio.gather(*self._recoveries.values(), return_exceptions=True)
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

    def connection_lost(self, host_id: str, reason: str) -> None:
        """The host's Skype lost its D-Bus connection: its clients' attach state went with it
        (as when Skype quits), and unless the scenario has it quit, it comes back."""
        logger.warning(
            "%s: Skype's D-Bus connection was lost (%s); it comes back as a restart would",
            host_id,
            reason,
        )
        self.world.hosts[host_id].connections.clear()
        if host_id not in self._recoveries or self._recoveries[host_id].done():
            self._recoveries[host_id] = asyncio.create_task(self._recover(host_id))

    async def _recover(self, host_id: str) -> None:
        delay = RESTART_DELAY_S
        while True:
            await asyncio.sleep(delay)
            async with self._lock:
                service = self.skype[host_id]
                if service.running or not self.world.hosts[host_id].running:
                    # Back already, or the scenario quit it since: its restart brings it back.
                    return
                try:
                    await service.start()
                except EmulatorBusError as exc:
                    logger.warning("%s: Skype cannot get back on its bus yet: %s", host_id, exc)
                    delay = min(2 * delay, RESTART_DELAY_MAX_S)
                    continue
            logger.info("%s: Skype is back on its bus after the lost connection", host_id)
            return

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
        service = self.skype.get(host_id)
        return {
            "host": host_id,
            "user": host.me,
            # Running as far as clients can tell: the scenario has it running and, for a host
            # on a bus, its connection is up.
            "running": host.running and (service is None or service.running),
            # Why a running Skype is off its bus until it is back, else None.
            "connection_lost": service.lost if service is not None and host.running else None,
            "connections_lost": service.losses if service is not None else 0,
            "online": host.online,
            "faults": sorted(host.faults),
            "attached": sorted(name for name, _ in host.attached()),
            "applied": self.applied,
            "remaining": self.total - self.applied,
            "true_time": self.world.now,
            "host_clock": host.clock(self.world.now),
            "skew_s": host.skew_s,
            "mode": "step" if self.speed is None else f"speed {self.speed:g}",
        }
