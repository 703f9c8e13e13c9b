"""`chatchannels demo`: the whole pipeline on one machine, scored against ground truth.

Three emulated Skype desktops (each on its own real `dbus-daemon`) play the demo scenario;
a real agent process per desktop captures into Kafka; the processor and the publisher run as
they would in production, and the site is served on 127.0.0.1. Mid-way the Kafka broker is
frozen for a few seconds (SIGSTOP), as a network outage would, and one Skype quits and comes
back. With `once` at the end of the scenario, otherwise at Ctrl-C (the scenario stops
where it is), the demo waits until everything played is captured, processed and
published, then compares the archive with the ground truth of what was played.

The demo works in its own topic, database and folder (`<stack>/demo/`), which every run
resets: it never touches the archive in `chatchannels.raw.v1`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from chatchannels.demo.pipeline import Child, PipelineError, pipeline_env, write_agent_config
from chatchannels.demo.scenario import ARCHIVED_CHATS, HOSTS, demo_scenario
from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.scenario import scenario_from_dict
from chatchannels.emulator.scoring import Score, score_archive
from chatchannels.emulator.truth import ground_truth
from chatchannels.ingest.agent.config import load_agent_config
from chatchannels.ingest.agent.status import read_status
from chatchannels.pg_roles import store_roles
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.store import Store
from chatchannels.processors.replay.archive import read_archive
from chatchannels.publishers.access.passwords import hash_password
from chatchannels.publishers.access.readers_store import add_reader
from chatchannels.secret_files import write_secret
from chatchannels.settings import Settings
from chatchannels.stack import kafka, kafka_principals, postgres
from chatchannels.stack.dbus import SessionBus, start_session_bus, stop_session_bus
from chatchannels.stack.freeze import frozen
from chatchannels.stack.manager import stack_up
from chatchannels.stack.processes import StackError, wait_for

DEMO_DATABASE = "chatchannels_demo"
DEMO_TOPIC_PREFIX = "chatchannels.demo."
# Who reads the demo's archive in a browser (an administrator), and where its password is.
DEMO_READER = "demo"
DEMO_PASSWORD_FILE = "reader.password"
# A consumer group of its own: a processor on another topic in the same group (a test, a
# benchmark, the real archive's) would make the two rebalance each other and stall.
DEMO_GROUP = "chatchannels-demo"


class DemoError(PipelineError):
    """The demo could not run, or its result differs from the ground truth."""


@dataclass(frozen=True)
class DemoOptions:
    once: bool = False
    speed: float = 4.0
    messages: int = 240
    port: int = 8080
    kafka_pause_s: float = 5.0
    # Seconds of real time between the agents starting and the first scenario action.
    lead_in_s: float = 4.0
    timeout_s: float = 300.0


@dataclass
class DemoResult:
    score: Score
    stats: dict[str, Any]
    events: int
    site: Path
    skews: dict[str, float]
    url: str | None = None
    notes: list[str] = field(default_factory=list)


class Demo:
    def __init__(self, settings: Settings, options: DemoOptions, say: Callable[[str], None]):
        self.options = options
        self.say = say
        self.work = settings.stack_dir / "demo"
        self.topic = f"{DEMO_TOPIC_PREFIX}{int(time.time())}.raw.v1"
        self.settings = settings.replace(
            topic=self.topic,
            dsn=postgres.database_dsn(settings, DEMO_DATABASE),
            site_dir=self.work / "site",
        )
        self.logs = self.work / "logs"
        self.children: list[Child] = []
        self.agents: dict[str, Path] = {}
        self.buses: list[SessionBus] = []
        self.emulator: BackgroundEmulator | None = None

    # -- set-up ------------------------------------------------------------------------

    def _reset(self) -> None:
        """Fresh demo topic, database and folder; the real archive is never touched."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.logs.mkdir(parents=True)
        report = stack_up(self.settings)
        self.say(
            f"stack: kafka {self.settings.kafka_bootstrap}, postgres :{self.settings.pg_port}"
            f" ({'started' if report.started else 'already running'})"
        )
        old = [t for t in kafka.list_topics(self.settings) if t.startswith(DEMO_TOPIC_PREFIX)]
        kafka_principals.drop_topics(self.settings, old)
        kafka_principals.create_raw_topic(self.settings, self.topic, self.settings.partitions)
        postgres.drop_database(self.settings, DEMO_DATABASE)
        postgres.ensure_database(self.settings, DEMO_DATABASE)
        migrate(self.settings.postgres_dsn, roles=store_roles(self.settings))
        self._add_reader()

    def _add_reader(self) -> None:
        """The archive is private by default: the demo's reader, an administrator, with a
        random password in an owner-only file (never printed)."""
        password = secrets.token_urlsafe(12)
        write_secret(self.work / DEMO_PASSWORD_FILE, password)
        with psycopg.connect(self.settings.postgres_dsn, autocommit=True) as conn:
            add_reader(conn, DEMO_READER, hash_password(password), admin=True)

    def _start(self, name: str, *args: str) -> Child:
        child = Child(name, list(args), pipeline_env(self.settings), self.logs)
        self.children.append(child)
        return child

    def _start_agent(self, host: str, skew: float, bus: SessionBus) -> None:
        root = self.work / "agents" / host
        config = write_agent_config(self.settings, root, host, bus.address, ARCHIVED_CHATS, skew)
        self.agents[host] = config
        self._start(f"agent-{host}", "agent", "run", "--config", str(config))

    # -- the run -----------------------------------------------------------------------

    def run(self) -> DemoResult:
        o = self.options
        self._reset()
        doc = demo_scenario(
            start=int(time.time()),
            messages=o.messages,
            tail=0 if o.once else 50_000,
            lead_in=o.lead_in_s * o.speed,
        )
        (self.work / "scenario.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1))
        scenario = scenario_from_dict(doc, "demo scenario")
        scripted_end = max(
            a["at"] for a in doc["timeline"] if not a.get("msg", "").startswith("live-")
        )

        self._start("processor", "process", "--topic", self.topic, "--group", DEMO_GROUP)
        self._start("publisher", "publish", "--quiet")
        url = None
        if not o.once:
            self._start("server", "serve", "--port", str(o.port))
            url = f"http://127.0.0.1:{o.port}/"
        buses = {}
        for host, _, _, skew, _ in HOSTS:
            bus = start_session_bus(self.logs / f"dbus-{host}")
            self.buses.append(bus)
            buses[host] = bus.address
            self._start_agent(host, skew, bus)
        self.emulator = BackgroundEmulator(scenario, buses, speed=o.speed)
        self.say(
            f"playing {len(doc['timeline'])} actions on {len(HOSTS)} desktops "
            f"(skews {', '.join(f'{s:+g} s' for *_, s, _ in HOSTS)}) at {o.speed:g}x"
        )
        if o.once:
            self._play(scripted_end / o.speed)
            wait_for("the emulator to finish", lambda: self.emulator.finished, o.timeout_s)
        else:
            played = self._live(url, scripted_end / o.speed)
            # Scored against what was played: the timeline's first `played` actions.
            scenario = scenario_from_dict({**doc, "timeline": doc["timeline"][:played]}, "played")
        self._wait_captured()
        self._wait_processed()
        self._publish_rest()
        return self._result(scenario, url)

    def _play(self, scripted_s: float) -> None:
        """Wait for the scripted part, freezing Kafka for a while at 60 % of it."""
        assert self.emulator is not None
        started = time.monotonic()
        paused = False
        deadline = started + scripted_s + self.options.timeout_s
        while time.monotonic() - started < scripted_s:
            for child in self.children:
                child.check()
            if not paused and time.monotonic() - started > 0.6 * scripted_s:
                self._pause_kafka()
                paused = True
            if time.monotonic() > deadline:
                raise DemoError("the scenario did not finish in time")
            time.sleep(0.25)

    def _pause_kafka(self) -> None:
        pid = kafka.kafka_pid(self.settings)
        if pid is None:
            raise DemoError("Kafka is not running")
        # Said once frozen, inside the freeze: a Ctrl-C the line prompts lands where the
        # broker is thawed on the way out (and by the guard if this process dies).
        with frozen(pid, self.options.kafka_pause_s):
            self.say(f"freezing Kafka for {self.options.kafka_pause_s:g} s (SIGSTOP)")
            time.sleep(self.options.kafka_pause_s)
        self.say("Kafka resumed (SIGCONT); the agents' spools drain")

    def _wait_captured(self) -> None:
        """Every agent attached, its spool empty, and nothing new captured for a while."""
        last: dict[str, Any] = {}
        quiet_since = time.monotonic()

        def settled() -> bool:
            nonlocal last, quiet_since
            for child in self.children:
                child.check()
            now = {}
            for host, config in self.agents.items():
                status = read_status(load_agent_config(config, self.settings))
                now[host] = (
                    status["spool_depth"],
                    status["captured_this_session"],
                    status["attach_state"],
                )
            if now != last or any(depth for depth, _, _ in now.values()):
                last, quiet_since = now, time.monotonic()
                return False
            return time.monotonic() - quiet_since > 3.0

        try:
            wait_for("the agents to deliver everything", settled, self.options.timeout_s, 0.5)
        except StackError as exc:
            raise DemoError(f"{exc}; agents: {last}") from exc

    def _wait_processed(self) -> None:
        def caught_up() -> bool:
            for child in self.children:
                child.check()
            ends = kafka.end_offsets(self.settings, self.topic)
            stored = self._stats()["next_offsets"]
            return all(stored.get(p, 0) >= end for p, end in ends.items())

        wait_for("the processor to catch up", caught_up, self.options.timeout_s, 0.5)

    def _publish_rest(self) -> None:
        """Stop the live publisher and catch the site up with the store's last change."""
        publisher = next(c for c in self.children if c.name == "publisher")
        # Its writes are atomic (temp + rename), so even a publisher that SIGTERM kills
        # leaves a consistent site; anything else is a crash worth reporting.
        if publisher.stop() not in (0, -signal.SIGTERM):
            publisher.check()
        try:
            final = subprocess.run(
                [sys.executable, "-m", "chatchannels.cli", "publish", "--once", "--quiet"],
                env=pipeline_env(self.settings),
                capture_output=True,
                text=True,
                timeout=self.options.timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(
                f"publish --once did not finish within {self.options.timeout_s:g} s; "
                f"it said:\n{exc.stdout or ''}{exc.stderr or ''}"
            ) from exc
        if final.returncode != 0:
            raise DemoError(f"publish --once failed:\n{final.stdout}{final.stderr}")

    # -- the result --------------------------------------------------------------------

    def _result(self, scenario, url: str | None) -> DemoResult:
        truth = [m for m in ground_truth(scenario) if m.chat in ARCHIVED_CHATS]
        score = score_archive(truth, read_archive(self.settings.postgres_dsn), self.agents)
        stats = self._stats()
        events = sum(kafka.end_offsets(self.settings, self.topic).values())
        skews = {h: s for h, _, _, s, _ in HOSTS}
        return DemoResult(score, stats, events, self.settings.site_dir, skews, url)

    def _live(self, url: str | None, scripted_s: float) -> int:
        """Play the scripted part, then serve and report, until Ctrl-C; then stop the
        desktops' timeline and bring back any desktop it left offline or quit, whose Skype
        would sync its history when back (the ground truth counts on it). Returns how many
        of the timeline's actions were played."""
        assert self.emulator is not None
        with contextlib.suppress(KeyboardInterrupt):
            self._play(scripted_s)
            self.say(
                f"serving the archive at {url}  (Ctrl-C to stop); sign in as {DEMO_READER},"
                f" password in {self.work / DEMO_PASSWORD_FILE}"
            )
            while True:
                for child in self.children:
                    child.check()
                stats = self._stats()
                self.say(
                    f"{stats['events_consumed']} events, {stats['messages']} messages, "
                    f"{stats['merged_across_hosts']} merged across hosts, "
                    f"{stats['dead_letters']} dead letters"
                )
                time.sleep(10)
        played = self.emulator.stop_playing()
        for host, *_ in HOSTS:
            status = self.emulator.status(host)
            if not status["running"]:
                self.emulator.restart(host)
            if not status["online"]:
                self.emulator.act("online", host=host)
        self.say(
            f"stopping after {played} actions: waiting until the agents have delivered them,"
            " the processor has applied them and the site is published"
        )
        return played

    def _stats(self) -> dict[str, Any]:
        store = Store.connect(self.settings.postgres_dsn, consumer=DEMO_GROUP)
        with contextlib.closing(store):
            return store.read_stats(self.topic)

    def close(self) -> None:
        # Everything is stopped even when stopping one part fails.
        with contextlib.ExitStack() as stack:
            for bus in self.buses:
                stack.callback(stop_session_bus, bus)
            if self.emulator is not None:
                stack.callback(self.emulator.close)
            for child in self.children:
                stack.callback(child.stop)


def run_demo(settings: Settings, options: DemoOptions, say: Callable[[str], None]) -> DemoResult:
    demo = Demo(settings, options, say)
    try:
        return demo.run()
    finally:
        demo.close()
