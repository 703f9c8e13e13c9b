"""The ingest agent's backfill: N messages of one emulated desktop into Kafka.

One chat on one emulated host holds N messages (bodies from the emulator's realistic mix).
`chatchannels agent run` starts against it with an empty spool and backfills the chat, every
event spooled (SQLite, synchronous=FULL) and acknowledged by Kafka (acks=all). Figures:

- messages/s from agent start until Kafka acknowledged the last message, against the
  pipelined D-Bus ceiling: bench_desktop_api's pipelined GET rate from the emulator (same
  run), divided by the GETs the agent sends per message;
- the agent's peak RSS (VmHWM), against the 80 MB target.

    python -m bench.bench_agent                  # 100,000 messages (about 3 minutes on 2 cores)
    python -m bench.bench_agent --quick          # 10,000
    python -m bench.bench_agent --messages N     # any other size
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import bench_desktop_api
from bench.report import Figure, bench_main, report
from chatchannels.emulator.bodies import SAMPLES
from chatchannels.emulator.scenario import FORMAT
from chatchannels.ingest.agent.reads import MESSAGE_PROPERTIES
from chatchannels.settings import Settings
from chatchannels.stack.dbus import session_bus

# 100,000 messages: about 3 minutes on 2 cores (the agent runs near the D-Bus ceiling).
N_FULL, N_QUICK = 100_000, 10_000
HOST = "alice-pc"
CHAT = "#alice/$bob;0123456789abcdef"
RSS_TARGET_MB = 80.0
REPO = Path(__file__).resolve().parents[1]


def write_scenario(path: Path, messages: int, seed: int = 1) -> None:
    """One host (alice's), one dialog with bob, `messages` posts from both, as JSON Lines."""
    rng = random.Random(seed)
    header = {
        "format": FORMAT,
        "title": f"bench_agent: {messages} messages in one chat",
        "start": 1357987875,
        "users": [{"handle": "alice", "fullname": "Alice"}, {"handle": "bob", "fullname": "Bob"}],
        "hosts": [{"id": HOST, "user": "alice", "skew_s": 3}],
        "chats": [{"name": CHAT, "members": ["alice", "bob"], "adder": "alice"}],
    }
    with path.open("w") as out:
        out.write(json.dumps(header) + "\n")
        for n in range(messages):
            action = {
                "at": n * 2.0,
                "op": "post",
                "chat": CHAT,
                "author": rng.choice(("alice", "bob")),
                "body": rng.choice(SAMPLES),
                "msg": f"m{n}",
            }
            out.write(json.dumps(action) + "\n")


def _emulator(scenario: Path, address: str) -> subprocess.Popen:
    emulator = subprocess.Popen(
        [
            *(sys.executable, "-m", "chatchannels.cli", "emulate"),
            *("--scenario", str(scenario), "--bus", f"{HOST}={address}", "--step"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert emulator.stdout is not None
    ready = emulator.stdout.readline()
    if '"ready"' not in ready:
        emulator.kill()
        raise RuntimeError(f"emulator did not start (exit {emulator.wait()}): {ready!r}")
    return emulator


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def backfill(settings: Settings, messages: int, work: Path) -> tuple[float, float, float, float]:
    """(messages/s until Kafka acked all, messages/s until all spooled, peak RSS MB,
    pipelined GET round trips/s against this very emulator, measured before the agent ran)."""
    from chatchannels.stack.kafka import ensure_topic

    scenario = work / "scenario.jsonl"
    write_scenario(scenario, messages)
    topic = f"bench.agent.{uuid.uuid4().hex[:8]}"
    ensure_topic(settings, topic, partitions=1)
    with session_bus(work / "dbus") as bus:
        emulator = _emulator(scenario, bus.address)
        agent = None
        try:
            asyncio_run_to_end(bus.address)
            own_get_rate = asyncio.run(_own_get_rate(bus.address))
            config = work / "agent.toml"
            spool = work / "spool.db"
            config.write_text(
                f"host_id = {json.dumps(HOST)}\nspool = {json.dumps(str(spool))}\n"
                f"kafka = {json.dumps(settings.kafka_bootstrap)}\ntopic = {json.dumps(topic)}\n"
                f"dbus_address = {json.dumps(bus.address)}\nchats = [{json.dumps(CHAT)}]\n"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCHANNELS_")}
            log = (work / "agent.log").open("wb")
            started = time.monotonic()
            agent = subprocess.Popen(
                [sys.executable, "-m", "chatchannels.cli", "agent", "run", "--config", str(config)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            # Session + chat + one event per message; the status file counts Kafka acks.
            expected = messages + 2
            status_file = spool.with_name(spool.name + ".status.json")
            spooled_at = None
            deadline = started + 900
            while True:
                status = _status(status_file)
                if status.get("pid") == agent.pid:
                    if spooled_at is None and status.get("captured", 0) >= expected:
                        spooled_at = time.monotonic()
                    if status.get("acked", 0) >= expected:
                        break
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"agent did not finish: {status}; see {work / 'agent.log'}")
                time.sleep(0.2)
            done = time.monotonic()
            rss = _peak_rss_mb(agent.pid)
            agent.terminate()
            agent.wait(60)
        finally:
            if agent is not None and agent.poll() is None:
                agent.kill()
            emulator.terminate()
            emulator.wait(30)
    spooled_at = spooled_at or done
    return messages / (done - started), messages / (spooled_at - started), rss, own_get_rate


def asyncio_run_to_end(address: str) -> None:
    asyncio.run(bench_desktop_api._run_emulator_timeline(address))


async def _own_get_rate(address: str) -> float:
    """Pipelined `GET CHATMESSAGE n BODY` round trips/s on the bench's own emulator, measured
    the way bench_desktop_api does (its `_rate`, IN_FLIGHT workers), best of its rounds."""
    from chatchannels.ingest.desktop_api.client import SkypeClient

    client = SkypeClient("BenchAgentCeiling", bus_address=address)
    await client.connect(wait=True, timeout=30)
    try:
        reply = await client.invoke(f"GET CHAT {CHAT} CHATMESSAGES")
        ids = reply.rsplit(" CHATMESSAGES ", 1)[1].split(", ")

        async def get(n: int) -> object:
            return await client.invoke(f"GET CHATMESSAGE {ids[n % len(ids)]} BODY")

        rates = [
            await bench_desktop_api._rate(get, bench_desktop_api.IN_FLIGHT)
            for _ in range(bench_desktop_api.ROUNDS)
        ]
        return max(rates)
    finally:
        await client.close()


def pipelined_ceiling() -> float | None:
    """bench_desktop_api's pipelined GET rate from the emulator, round trips/s (same run);
    None when that benchmark could not run (its figure is then not used)."""
    try:
        figures = bench_desktop_api.run()
    except Exception as exc:  # the agent's own measurement still gives a ceiling
        print(
            f"bench_desktop_api failed ({exc!r}); using this bench's own GET rate", file=sys.stderr
        )
        return None
    for figure in figures:
        if "from emulator" in figure.name and "pipelined" in figure.name:
            return figure.value
    return None


def run(settings: Settings, quick: bool = False, messages: int | None = None) -> list[Figure]:
    messages = messages or (N_QUICK if quick else N_FULL)
    gets_per_message = len(MESSAGE_PROPERTIES)
    imported_rate = pipelined_ceiling()
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        acked_rate, spooled_rate, rss, own_rate = backfill(settings, messages, Path(tmp))
    # The higher of the two GET rates is the stricter ceiling.
    ceiling = max(own_rate, imported_rate or 0.0) / gets_per_message
    figures = [
        Figure("pipelined GETs, this bench's emulator (64 in flight)", own_rate, "round trips/s"),
        Figure(
            f"agent backfill {messages:,} messages, Kafka-acked (ceiling: pipelined D-Bus "
            f"GETs / {gets_per_message})",
            acked_rate,
            "messages/s",
            ceiling,
        ),
        Figure("agent backfill, spooled to disk", spooled_rate, "messages/s", ceiling),
        Figure("agent peak RSS (ceiling: target)", rss, "MB", RSS_TARGET_MB),
    ]
    report(f"ingest agent backfill of {messages:,} messages", figures)
    return figures


def main() -> None:
    bench_main(__doc__, run, f"{N_QUICK:,} messages", "messages")


if __name__ == "__main__":
    main()
