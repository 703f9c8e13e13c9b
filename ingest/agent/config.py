"""The agent's own settings (agent.toml), on top of the project Settings.

deploy/agent.example.toml documents every key. Kafka address and topic default to the
project Settings, so `chatchannels --config site.toml agent run --config agent.toml` works with
the stack as well as with a production cluster.
"""

from __future__ import annotations

import re
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from chatchannels.ingest.agent.allowlist import AllowList, AllowListError
from chatchannels.kafka_auth import KafkaLogin
from chatchannels.settings import Settings

_HOST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")


class AgentConfigError(ValueError):
    """A key of agent.toml is missing or wrong; the message names the file and the key."""


@dataclass(frozen=True)
class AgentConfig:
    host_id: str
    spool: Path
    kafka: str
    topic: str
    # Kafka credentials (SASL SCRAM over TLS): the principal (empty: `agent-<host_id>`), its
    # password file (owner-only, chatchannels/secret_files.py) and the CA that signed the
    # broker's certificate. One password per desktop: it also keys the events' signatures.
    kafka_user: str = ""
    kafka_password_file: str = ""
    kafka_ca_file: str = ""
    chats: tuple[str, ...] = ()
    chat_patterns: tuple[str, ...] = ()
    all_chats: bool = False
    # For emulated desktops only: seconds added to this machine's clock so that the agent's
    # clock reading is the emulated host's (skewed) clock, as a real desktop's would be.
    clock_offset_s: float = 0.0
    # How many message ids below a chat's high-water mark a restart reads again.
    overlap: int = 20
    app_name: str = "chatchannels"
    # D-Bus session bus address; "" means the desktop session's own bus.
    dbus_address: str = ""
    # Messages read concurrently (each is one pipelined burst of GETs).
    read_window: int = 32
    # Commands sent to Skype and not yet answered, across all reads.
    max_commands: int = 200
    # Events handed to the Kafka producer and not yet acknowledged (bounds memory).
    max_in_flight: int = 2000
    reattach_max_backoff_s: float = 30.0
    # Every so often each allowed chat is re-listed, to find messages no notification
    # announced (Skype sends none for history synced while offline, spec 6.4).
    rescan_interval_s: float = 300.0
    command_timeout_s: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def principal(self) -> str:
        return self.kafka_user or f"agent-{self.host_id}"

    def kafka_login(self) -> KafkaLogin:
        """The agent's Kafka login; refuses a config without a password file."""
        if not self.kafka_password_file:
            raise AgentConfigError(
                f"kafka_password_file is not set for {self.principal}; on the server run"
                f" `chatchannels hosts add {self.host_id}` and copy the file it writes"
            )
        return KafkaLogin(
            self.principal,
            Path(self.kafka_password_file).expanduser(),
            Path(self.kafka_ca_file).expanduser(),
        )

    @property
    def status_file(self) -> Path:
        return self.spool.with_name(self.spool.name + ".status.json")

    def allow_list(self) -> AllowList:
        return AllowList.build(self.chats, self.chat_patterns, self.all_chats)


def default_host_id() -> str:
    name = re.sub(r"[^A-Za-z0-9._:@-]", "-", socket.gethostname()) or "localhost"
    return name[:200]


def default_spool() -> Path:
    return Path("~/.local/state/chatchannels/agent-spool.db").expanduser()


def load_agent_config(
    path: Path | None, settings: Settings, all_chats: bool = False
) -> AgentConfig:
    """Read agent.toml (optional) and fill gaps from Settings; checks the allow-list."""
    table: dict[str, Any] = {}
    where = str(path) if path else "defaults"
    if path is not None:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AgentConfigError(f"cannot read agent config {path}: {exc}") from exc
    values: dict[str, Any] = {
        "host_id": default_host_id(),
        "spool": default_spool(),
        "kafka": settings.kafka_bootstrap,
        "topic": settings.topic,
        "kafka_ca_file": str(settings.kafka_ca),
    }
    known = {f.name: f for f in fields(AgentConfig) if f.name != "extra"}
    extra = {}
    for key, raw in table.items():
        if key not in known:
            extra[key] = raw
            continue
        values[key] = _coerce(key, raw, values.get(key, known[key].default), where)
    if all_chats:
        values["all_chats"] = True
    config = AgentConfig(**values, extra=extra)
    if not _HOST_ID.match(config.host_id):
        raise AgentConfigError(
            f"{where}: host_id {config.host_id!r} must be 1-200 of A-Z a-z 0-9 . _ : @ -"
        )
    if config.overlap < 0 or min(config.read_window, config.max_in_flight, config.max_commands) < 1:
        raise AgentConfigError(
            f"{where}: overlap must be >= 0; read_window, max_commands, max_in_flight >= 1"
        )
    try:
        config.allow_list()
    except AllowListError as exc:
        raise AgentConfigError(f"{where}: {exc}") from exc
    return config


def _coerce(key: str, raw: Any, like: Any, where: str) -> Any:
    try:
        if isinstance(like, bool):
            if not isinstance(raw, bool):
                raise TypeError
            return raw
        if isinstance(like, tuple):
            if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
                raise TypeError
            return tuple(raw)
        if isinstance(like, Path):
            return Path(str(raw)).expanduser()
        if isinstance(like, int | float) and isinstance(raw, bool):
            raise TypeError
        return type(like)(raw)
    except (TypeError, ValueError):
        kind = "list of strings" if isinstance(like, tuple) else type(like).__name__
        raise AgentConfigError(f"{where}: {key} = {raw!r} is not a {kind}") from None
