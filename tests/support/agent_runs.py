"""Helpers shared by the agent's integration tests (no tests here): read a topic back, poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from chatchannels.event_signing import AGENT_PREFIX
from chatchannels.kafka_auth import KafkaLogin, client_options
from chatchannels.rawevents import decode_raw_event
from chatchannels.settings import Settings
from chatchannels.stack.processes import die_with_parent


def agent_login(settings: Settings, host: str, folder: Path) -> KafkaLogin:
    """What `hosts add` gives a test's desktop on `settings.topic`: its own principal, with
    its password file in `folder`."""
    from chatchannels.stack.kafka_principals import add_host

    made = add_host(settings, host, folder / "kafka.password")
    return KafkaLogin(made.principal, made.password_file, settings.kafka_ca)


class TopicReader:
    """Reads every record of a topic from offset 0, validating each as a raw event."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(
            **client_options(settings), enable_auto_commit=False, consumer_timeout_ms=200
        )
        self.events: list[dict[str, Any]] = []
        self.keys: list[bytes] = []
        self.partitions: set[int] = set()
        self._assigned = False

    def _assign(self) -> None:
        parts = self.consumer.partitions_for_topic(self.topic)
        if not parts:
            return
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self._assigned = True

    def poll(self) -> list[dict[str, Any]]:
        if not self._assigned:
            self._assign()
            if not self._assigned:
                return self.events
        for batch in self.consumer.poll(timeout_ms=300, max_records=5000).values():
            for record in batch:
                self.events.append(decode_raw_event(record.value))
                self.keys.append(record.key)
                self.partitions.add(record.partition)
        return self.events

    def close(self) -> None:
        self.consumer.close()


def wait_for(what: str, check: Callable[[], Any], seen: Callable[[], Any], timeout: float) -> Any:
    """Poll `check` until truthy; on timeout fail naming `what` and what was last `seen`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; saw {seen()}")
        time.sleep(0.05)


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in events]


# --- the agent as a process (the emulator runs in a thread: emulator/background.py) -------


class AgentProcess:
    """`chatchannels agent run` as a real process with its own agent.toml (the spool in
    `root` unless `spool` says where), logging in to the Kafka of `settings` as its own
    `agent-<host>`."""

    def __init__(
        self, root, host: str, bus: str, settings: Settings, topic: str, spool=None, **keys: Any
    ) -> None:
        import json

        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "agent.toml"
        self.spool = spool or root / "spool.db"
        # Its own principal, unless the `kafka_user` key borrows another desktop's (an
        # impostor): the password file is that principal's, as `hosts add` gave it.
        login_host = keys["kafka_user"].removeprefix(AGENT_PREFIX) if "kafka_user" in keys else host
        login = agent_login(settings.replace(topic=topic), login_host, root)
        lines = [
            f"host_id = {json.dumps(host)}",
            f"spool = {json.dumps(str(self.spool))}",
            f"kafka = {json.dumps(settings.kafka_bootstrap)}",
            f"topic = {json.dumps(topic)}",
            f"dbus_address = {json.dumps(bus)}",
            f"kafka_password_file = {json.dumps(str(login.password_file))}",
            f"kafka_ca_file = {json.dumps(str(login.ca_file))}",
        ]
        lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        import os
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCHANNELS_")}
        self.starts += 1
        log = (self.root / f"agent-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatchannels.cli",
                "agent",
                "run",
                "--config",
                str(self.config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            # A test run that dies (its timeout, a kill) leaves no agent behind.
            preexec_fn=die_with_parent,
        )

    def kill9(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout)

    def status(self) -> dict[str, Any]:
        """The status file of the running process; {} until this process has written one."""
        import json

        try:
            doc = json.loads(self.spool.with_name(self.spool.name + ".status.json").read_text())
        except (OSError, ValueError):
            return {}
        return doc if self.proc is not None and doc.get("pid") == self.proc.pid else {}

    def log_tail(self, lines: int = 20) -> str:
        path = self.root / f"agent-{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Kill it if still running, first asking it to log where its tasks wait (SIGUSR1)."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            log = self.root / f"agent-{self.starts}.log"
            size = log.stat().st_size
            self.proc.send_signal(signal.SIGUSR1)
            wait_for("a task dump", lambda: log.stat().st_size > size, lambda: size, 5)
            self.proc.kill()
            self.proc.wait(30)


# --- comparing what reached Kafka with the ground truth ---------------------------------


def observed_messages(events: list[dict[str, Any]], host: str) -> dict[str, dict[str, str]]:
    """Per local message id of `host`, the latest value of each property any event carried."""
    from chatchannels.ingest.desktop_api.protocol import ApiParseError, ObjectProperty, parse_reply

    seen: dict[str, dict[str, str]] = {}
    for event in events:
        payload = event["payload"]
        if event["host"] != host or payload["object"] != "CHATMESSAGE":
            continue
        props = seen.setdefault(payload["id"], {})
        for line in payload["lines"]:
            try:
                reply = parse_reply(line)
            except ApiParseError:
                continue
            if isinstance(reply, ObjectProperty) and reply.obj == "CHATMESSAGE":
                props[reply.prop] = reply.value
    return seen


def missing_messages(
    scenario, events, host: str, chats: set[str], bodies: bool = True
) -> list[str]:
    """Truth messages `host` holds in `chats` that no event shows (with their final body).

    Messages are matched by chat, author and the host's TIMESTAMP; where one author posted
    several times in one second, as many distinct local ids must have been seen.
    """
    from collections import Counter, defaultdict

    from chatchannels.emulator.truth import ground_truth

    clock = scenario.host_clock(host)
    seen: dict[tuple, list[str | None]] = defaultdict(list)
    for props in observed_messages(events, host).values():
        key = (props.get("CHATNAME"), props.get("FROM_HANDLE", "").lower(), props.get("TIMESTAMP"))
        seen[key].append(props.get("BODY"))
    expected: Counter = Counter()
    missing = []
    for m in ground_truth(scenario):
        if host not in m.hosts or m.chat not in chats:
            continue
        key = (m.chat, m.author.lower(), str(clock(m.posted_at)))
        expected[key] += 1
        if bodies and m.type in ("", "SAID", "EMOTED") and m.final_body not in seen[key]:
            missing.append(f"{m.msg} {key} final body {m.final_body!r}; saw {seen[key]}")
    for key, count in expected.items():
        if len(seen[key]) < count:
            missing.append(f"{key}: {count} expected, {len(seen[key])} seen")
    return missing


def wait_all_in_kafka(
    scenario,
    reader: TopicReader,
    agent: AgentProcess,
    host: str,
    chats: set[str],
    timeout: float,
    bodies: bool = True,
) -> None:
    """Wait until every message `host` holds in `chats` has reached Kafka (with its final
    body unless `bodies` is False); on timeout, name the first ones missing."""
    wait_for(
        "every message of the allowed chats in Kafka",
        lambda: not missing_messages(scenario, reader.poll(), host, chats, bodies=bodies),
        lambda: (
            missing_messages(scenario, reader.events, host, chats, bodies=bodies)[:5],
            agent.log_tail(),
        ),
        timeout,
    )
