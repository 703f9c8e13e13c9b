"""Sends into a full socket buffer: dbus-fast's asyncio bus drops the connection on EAGAIN;
the project's PatientMessageBus waits until the socket is writable again.

The buffer fills for real: the test's own dbus-daemon is stopped (SIGSTOP), so it reads
nothing while the bus writes several megabytes of signals to it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from chatchannels.ingest.desktop_api.dbus_transport import PatientMessageBus
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

# 2,000 signals of 4 KB: 8 MB, far beyond a Unix socket's buffer (about 200 KB by default).
SIGNALS, SIZE = 2_000, 4096


def _signal(n: int) -> Message:
    return Message.new_signal("/test/Flood", "test.Flood", "Chunk", "s", [f"{n:06d}" * (SIZE // 6)])


async def _flood_while_daemon_stopped(bus: MessageBus, daemon_pid: int) -> list:
    """Send every signal while the daemon is stopped, then resume it; the sends' outcomes
    (None, or the exception a send raised or its future got)."""
    loop = asyncio.get_running_loop()
    sent = []
    os.kill(daemon_pid, signal.SIGSTOP)
    try:
        for n in range(SIGNALS):
            try:
                sent.append(bus.send(_signal(n)))
            except OSError as exc:
                # A finalized bus closed its socket: the next send cannot even wait on it.
                failed = loop.create_future()
                failed.set_exception(exc)
                sent.append(failed)
        # A few loop turns with the daemon still stopped: the writer meets a full buffer.
        for _ in range(10):
            await asyncio.sleep(0)
    finally:
        os.kill(daemon_pid, signal.SIGCONT)
    return await asyncio.wait_for(asyncio.gather(*sent, return_exceptions=True), 30)


async def _stock_flood(address: str, daemon_pid: int) -> str:
    bus = await MessageBus(bus_address=address).connect()
    outcomes = await _flood_while_daemon_stopped(bus, daemon_pid)
    failed = sum(isinstance(o, OSError) for o in outcomes)
    return f"connected={bus.connected} failed={failed}"


def test_dbus_fast_alone_drops_the_connection_on_a_full_buffer(dbus_bus):
    """The library bug PatientMessageBus works around. When this test fails, dbus-fast
    handles EAGAIN itself and PatientMessageBus can go. In a child process: dbus-fast's
    failure path leaves CPython's recursion counter off, and the next import that parses
    source (pytest's own, at session end) dies with "AST constructor recursion depth
    mismatch"."""
    child = subprocess.run(
        [sys.executable, "-m", __name__, dbus_bus.address, str(dbus_bus.pid)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.stdout.startswith("connected=False failed="), child.stdout + child.stderr


def test_patient_bus_waits_for_a_full_buffer_and_loses_nothing(dbus_bus):
    async def scenario():
        bus = await PatientMessageBus(bus_address=dbus_bus.address).connect()
        outcomes = await _flood_while_daemon_stopped(bus, dbus_bus.pid)
        assert outcomes == [None] * SIGNALS
        assert bus.connected
        # The connection still carries calls, in order after the backlog.
        reply = await asyncio.wait_for(
            bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus.Peer",
                    member="Ping",
                )
            ),
            10,
        )
        assert reply.error_name is None
        bus.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 60))


if __name__ == "__main__":
    print(asyncio.run(asyncio.wait_for(_stock_flood(sys.argv[1], int(sys.argv[2])), 60)))
