"""The pipeline's processes on one machine, as the demo and the end-to-end benchmark start them.

Each part runs as its own `chatchannels` process, as in production, with its output in a log
file and the settings passed through `CHATCHANNELS_*` variables; each dies with the process
that started it, so a killed run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from chatchannels.event_signing import AGENT_PREFIX
from chatchannels.settings import Settings, settings_env
from chatchannels.signing_secrets import provision_password
from chatchannels.stack.processes import die_with_parent


class PipelineError(RuntimeError):
    """A part of the pipeline stopped or could not start; the message says which and why."""


def pipeline_env(settings: Settings) -> dict[str, str]:
    """The environment of a child: these settings, and none the caller's shell may hold."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCHANNELS_")}
    env.update(settings_env(settings))
    env["CHATCHANNELS_SITE_DIR"] = str(settings.site_dir)
    return env


class Child:
    """One `chatchannels` command running as a child process, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chatchannels.cli", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                # Ctrl-C in the terminal reaches the process that started it alone, which
                # stops the parts in its own order (the demo lets them deliver first).
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise PipelineError(
                f"{self.name} exited with {self.proc.returncode}; end of {self.log}:\n"
                + "\n".join(tail)
            )

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def write_agent_config(
    root: Path,
    host: str,
    dbus_address: str,
    chats: Sequence[str],
    clock_offset_s: float = 0.0,
    *,
    secrets_root: Path,
) -> Path:
    """agent.toml for an emulated desktop, its spool and password file next to it (the
    password derived from the master key in `secrets_root`, as the server's administrator
    would give it); Kafka and the topic come from the environment (pipeline_env)."""
    root.mkdir(parents=True)
    config = root / "agent.toml"
    password = provision_password(secrets_root, f"{AGENT_PREFIX}{host}", root / "kafka.password")
    config.write_text(
        "\n".join(
            [
                f"host_id = {json.dumps(host)}",
                f"spool = {json.dumps(str(root / 'spool.db'))}",
                f"dbus_address = {json.dumps(dbus_address)}",
                f"kafka_password_file = {json.dumps(str(password))}",
                f"chats = {json.dumps(list(chats))}",
                # The emulated desktop's clock is wrong by this much; so is its agent's.
                f"clock_offset_s = {clock_offset_s}",
            ]
        )
        + "\n"
    )
    return config
