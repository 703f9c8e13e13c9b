"""The shared stack's settings, and a second, private stack beside it for tests that must
stop or freeze it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from chatchannels.settings import Settings, load_settings
from tests.support.paths import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_stack_settings() -> Settings:
    """The shared stack's settings: <repo>/.stack, or $CHATCHANNELS_STACK_DIR."""
    env = dict(os.environ)
    env.setdefault("CHATCHANNELS_STACK_DIR", str(REPO / ".stack"))
    return load_settings(environ=env)


def private_stack_settings(shared: Settings, root: Path) -> Settings:
    """Settings for a second stack in `root` on free ports, reusing the shared stack's jars."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "kafka").mkdir(exist_ok=True)
    libs = root / "kafka" / "libs"
    if not libs.exists():
        libs.symlink_to(shared.stack_dir / "kafka" / "libs")
    return shared.replace(
        stack_dir=root,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        pg_port=free_port(),
        kafka_heap="384m",
    )
