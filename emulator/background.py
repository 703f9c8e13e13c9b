"""The emulator on an asyncio loop of its own thread, driven by synchronous code.

For programs that are not asyncio themselves (the demo's orchestration, tests): each call
runs on the emulator's loop and waits for its result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from chatchannels.emulator.runner import Emulator
from chatchannels.emulator.scenario import Scenario

T = TypeVar("T")


class BackgroundEmulator:
    def __init__(
        self, scenario: Scenario, buses: Mapping[str, str], speed: float | None = None
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="emulator", daemon=True)
        self._thread.start()
        self.emulator: Emulator = self.call(lambda: self._start(scenario, buses, speed))

    @staticmethod
    async def _start(scenario: Scenario, buses: Mapping[str, str], speed: float | None):
        emulator = Emulator(scenario, buses, speed)
        await emulator.start()
        return emulator

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"the emulator's loop did not finish {make!r} within {timeout:g} s "
                f"(its thread {'is alive' if self._thread.is_alive() else 'has ended'})"
            ) from None

    def step(self, count: int = 1) -> int:
        return self.call(lambda: self.emulator.step(count))

    def act(self, op: str, **fields: Any) -> str:
        return self.call(lambda: self.emulator.act(op, **fields))

    def stop_playing(self) -> int:
        return self.call(self.emulator.stop_playing)

    def quit(self, host: str) -> None:
        self.call(lambda: self.emulator.quit(host))

    def restart(self, host: str) -> None:
        self.call(lambda: self.emulator.restart(host))

    @property
    def finished(self) -> bool:
        return self.emulator.finished.is_set()

    def status(self, host: str) -> dict:
        async def read() -> dict:
            return self.emulator.status(host)

        return self.call(read)

    def close(self) -> None:
        try:
            self.call(self.emulator.stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
