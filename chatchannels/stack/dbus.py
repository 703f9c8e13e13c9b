"""Private D-Bus session buses: one real `dbus-daemon` per emulated Skype desktop."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from chatchannels.stack.processes import die_with_parent, exited_within

# dbus-daemon prints its address and stops on SIGTERM in milliseconds; longer is a fault.
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


class DBusError(RuntimeError):
    pass


@dataclass(frozen=True)
class SessionBus:
    address: str
    pid: int

    def env(self) -> dict[str, str]:
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}


def start_session_bus(log_dir: Path | None = None) -> SessionBus:
    """Start `dbus-daemon --session` in its own process group; it prints its address."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        raise DBusError(
            "dbus-daemon is not installed; run `make setup` (Debian package dbus-daemon)"
        )
    stderr = subprocess.DEVNULL
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        stderr = (log_dir / "dbus-daemon.log").open("ab")
    proc = subprocess.Popen(
        [daemon, "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], _START_TIMEOUT_S)
    line = proc.stdout.readline().decode().strip() if ready else ""
    proc.stdout.close()
    if not line:
        proc.kill()
        raise DBusError(
            f"dbus-daemon printed no address within {_START_TIMEOUT_S:g} s "
            f"(exit status {proc.wait()})"
        )
    return SessionBus(address=line, pid=proc.pid)


def stop_session_bus(bus: SessionBus) -> None:
    try:
        os.killpg(bus.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not exited_within(bus.pid, _STOP_TIMEOUT_S):
        # A daemon that ignores SIGTERM this long is stuck; it must not outlive us.
        with suppress(ProcessLookupError):
            os.killpg(bus.pid, signal.SIGKILL)
    with suppress(ChildProcessError):
        os.waitpid(bus.pid, 0)


@contextmanager
def session_bus(log_dir: Path | None = None) -> Iterator[SessionBus]:
    bus = start_session_bus(log_dir)
    try:
        yield bus
    finally:
        stop_session_bus(bus)
