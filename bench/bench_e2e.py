"""End to end: a message posted on a Skype desktop until it is on its page, in its feed and
a search hit (issue 7: p95 below 2 s).

The real parts, each its own process as in production: an emulated Skype desktop on a real
`dbus-daemon`, `chatchannels agent run`, `process`, `publish` and `serve`, on the stack's
Kafka and PostgreSQL, in a topic, database and site folder of the bench's own. Once the
pipeline is warm, N messages are posted into the archived chat a few per second, as a person
types, each at a known wall time; a poller looks every 25 ms for each message's text in the
chat's month page and its Atom feed (the files `serve` sends) and asks the server's
/search.json for it. Figures: p50, p95 and max of post -> visible for each of the three, then
where the time goes, from the same messages: post -> Kafka append time (the agent),
append -> the store's commit NOTIFY (the processor), commit -> visible (the publisher), and
the load the run ran under (CPU seconds per process, the machine's busy cores). The stack is
shared: when something else stops the Kafka broker meanwhile (`chatchannels demo` freezes it
for 5 s), the messages on their way then are counted, and each p95 is also given without them.

    python -m bench.bench_e2e            # 200 messages, about 2 minutes
    python -m bench.bench_e2e --quick    # 40 messages
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from bench.cpu import busy_cores, cpu_seconds
from bench.report import Figure, bench_main, report
from chatchannels.demo.pipeline import Child, PipelineError, pipeline_env, write_agent_config
from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.scenario import FORMAT, scenario_from_dict
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.replay.topic_copy import read_topic
from chatchannels.publishers import paths
from chatchannels.publishers.access.readers_store import add_reader
from chatchannels.settings import Settings
from chatchannels.stack import kafka, kafka_principals, postgres
from chatchannels.stack.dbus import start_session_bus, stop_session_bus
from chatchannels.stack.processes import port_open
from chatchannels.store_contract import NOTIFY_CHANNEL

N_FULL, N_QUICK = 200, 40
WARM_UP = 5
TARGET_P95_S = 2.0
POLL_S = 0.025
# Each search costs the server a few ms of CPU: asked half as often as the files are read.
SEARCH_POLL_S = 0.05
# Seconds between two posts: a lively conversation, about three messages a second.
GAP_S = (0.2, 0.5)
# How long a message may take before the run counts as broken rather than slow.
GIVE_UP_S = 120.0
HOST = "alice-pc"
CHAT = "#alice/$bob;0e2e0be4c0000001"
KINDS = ("page", "feed", "search")
# The reader the probe searches as (an administrator, named by the trusted proxy header).
BENCH_READER = "bench-probe"
TOKEN = re.compile(r"\bq[0-9a-f]{8}n\d{4}\b")


def scenario(start: int):
    """Alice's desktop in a dialog with Bob (whose desktop is not emulated); no timeline:
    every message is posted on demand."""
    doc = {
        "format": FORMAT,
        "title": "bench_e2e: messages posted live",
        "start": start,
        "users": [
            {"handle": "alice", "fullname": "Alice Archer"},
            {"handle": "bob", "fullname": "Bob Baker", "tz_offset_s": 0},
        ],
        "hosts": [{"id": HOST, "user": "alice", "skew_s": 0}],
        "chats": [{"name": CHAT, "members": ["alice", "bob"], "adder": "alice", "created": -3600}],
        "timeline": [],
    }
    return scenario_from_dict(doc, "bench_e2e scenario")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stopped(pid: int | None) -> bool:
    """Whether the process is stopped (SIGSTOP), as `chatchannels demo` does to Kafka."""
    if pid is None:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


class Probe:
    """Polls the chat's pages, its feed and /search.json for every posted message's token,
    noting the wall time each one was first seen in each; and notes when the Kafka broker
    was stopped, since the stack is shared and a demo run freezes it for seconds."""

    def __init__(self, site: Path, url: str, kafka_pid: int | None) -> None:
        self.url = url
        self.kafka_pid = kafka_pid
        self.frozen: list[tuple[float, float]] = []
        self._frozen_since: float | None = None
        self._searched = 0.0
        self.chat_dir = site / paths.chat_dir(CHAT)
        self.feed = site / paths.chat_feed_path(CHAT)
        self.posted: dict[str, float] = {}
        self.seen: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self.crashed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._frozen_since is not None:
            self.frozen.append((self._frozen_since, time.time()))

    def post(self, token: str, at: float) -> None:
        with self._lock:
            self.posted[token] = at

    def all_seen(self, tokens: list[str]) -> bool:
        if self.crashed is not None:
            raise PipelineError(f"the probe failed: {self.crashed!r}")
        return all(t in self.seen[kind] for kind in KINDS for t in tokens)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                self._look()
                self._stop.wait(max(0.0, POLL_S - (time.monotonic() - began)))
        except BaseException as exc:  # all_seen() reports it to the bench's thread
            self.crashed = exc

    def _look(self) -> None:
        now = time.time()
        if stopped(self.kafka_pid):
            self._frozen_since = self._frozen_since or now
        elif self._frozen_since is not None:
            self.frozen.append((self._frozen_since, now))
            self._frozen_since = None
        with self._lock:
            posted = list(self.posted)
        pending = {kind: [t for t in posted if t not in self.seen[kind]] for kind in KINDS}
        if pending["page"]:
            # Every month page: a run that crosses midnight at the end of a month has two.
            text = "".join(_read(p) for p in self.chat_dir.glob("????-??.html"))
            self._found("page", pending["page"], text)
        if pending["feed"]:
            self._found("feed", pending["feed"], _read(self.feed))
        if pending["search"] and time.monotonic() - self._searched >= SEARCH_POLL_S:
            self._searched = time.monotonic()
            self._found("search", pending["search"], self._search(pending["search"]))

    def _found(self, kind: str, tokens: list[str], text: str) -> None:
        now = time.time()
        for token in tokens:
            if token in text:
                self.seen[kind][token] = now

    def _search(self, tokens: list[str]) -> str:
        """The text of the hits' snippets for a query that matches any of `tokens`."""
        query = urlencode({"q": " OR ".join(tokens), "limit": 200})
        # Searched as a reader: an administrator the trusted local proxy names (README,
        # "Readers: signing in"), so each search pays for finding out who reads.
        request = urllib.request.Request(
            f"{self.url}search.json?{query}", headers={"Remote-User": BENCH_READER}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                hits = json.load(reply)["hits"]
        except (urllib.error.URLError, OSError):
            # 503 until the first publish created the index; the server is up before that.
            return ""
        return " ".join(piece["text"] for hit in hits for piece in hit["snippet"])


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


class Notifications:
    """Listens on the store's change channel: when each commit became visible to readers."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.heard: list[tuple[int, float]] = []  # (last change_seq of the commit, wall time)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for notice in self.conn.notifies(timeout=0.2):
                self.heard.append((int(notice.payload), time.time()))

    def first_covering(self, seq: int) -> float | None:
        """The wall time of the first commit that included change `seq`."""
        for last, at in self.heard:
            if last >= seq:
                return at
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.conn.close()


class EndToEnd:
    def __init__(self, settings: Settings, work: Path) -> None:
        run = uuid.uuid4().hex[:8]
        self.database = f"bench_e2e_{run}"
        self.topic = f"bench.e2e.{run}.raw.v1"
        self.group = f"chatchannels-bench-e2e-{run}"
        self.token_prefix = f"q{run}n"
        self.base = settings
        self.settings = settings.replace(
            topic=self.topic,
            dsn=postgres.database_dsn(settings, self.database),
            site_dir=work / "site",
        )
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.children: dict[str, Child] = {}
        self.bus = None
        self.emulator: BackgroundEmulator | None = None
        self.notifications: Notifications | None = None
        self.probe: Probe | None = None
        self.rng = random.Random(7)

    def start(self) -> None:
        kafka_principals.create_raw_topic(self.base, self.topic, self.base.partitions)
        postgres.ensure_database(self.base, self.database)
        migrate(self.settings.postgres_dsn)
        with psycopg.connect(self.settings.postgres_dsn, autocommit=True) as conn:
            add_reader(conn, BENCH_READER, None, admin=True)
        self.notifications = Notifications(self.settings.postgres_dsn)
        self.bus = start_session_bus(self.logs / "dbus")
        self.emulator = BackgroundEmulator(
            scenario(int(time.time())), {HOST: self.bus.address}, speed=1.0
        )
        config = write_agent_config(
            self.settings, self.work / "agent", HOST, self.bus.address, [CHAT]
        )
        port = free_port()
        env = {**pipeline_env(self.settings), "CHATCHANNELS_TRUSTED_PROXIES": "127.0.0.1"}
        for name, args in [
            ("agent", ["agent", "run", "--config", str(config)]),
            # A group of its own: members of the default group, whatever their topics, stop
            # for every rebalance when another processor on the stack starts or stops.
            ("processor", ["process", "--topic", self.topic, "--group", self.group]),
            ("publisher", ["publish", "--quiet"]),
            ("server", ["serve", "--port", str(port)]),
        ]:
            self.children[name] = Child(name, args, env, self.logs)
        self._wait("the server to listen", lambda: port_open("127.0.0.1", port), 60)
        url = f"http://127.0.0.1:{port}/"
        self.probe = Probe(self.settings.site_dir, url, kafka.kafka_pid(self.base))
        self.probe.start()

    def _check(self) -> None:
        for child in self.children.values():
            child.check()

    def _wait(
        self,
        what: str,
        condition: Callable[[], bool],
        timeout: float,
        missing: Callable[[], str] = lambda: "",
    ) -> None:
        """Until `condition()`; a process that exits meanwhile ends the wait at once."""
        deadline = time.monotonic() + timeout
        while not condition():
            self._check()
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"timed out after {timeout:.0f} s waiting for {what}{missing()}"
                )
            time.sleep(0.1)

    def post(self, n: int) -> str:
        """Post message `n` (Alice and Bob take turns) and note when; returns its token."""
        assert self.emulator is not None and self.probe is not None
        token = f"{self.token_prefix}{n:04d}"
        author = ("alice", "bob")[n % 2]
        at = time.time()
        self.emulator.act("post", chat=CHAT, author=author, body=f"e2e probe {token} posted live")
        self.probe.post(token, at)
        return token

    def converse(self, count: int, first: int) -> list[str]:
        tokens = []
        for n in range(first, first + count):
            tokens.append(self.post(n))
            self._check()
            time.sleep(self.rng.uniform(*GAP_S))
        return tokens

    def wait_seen(self, tokens: list[str]) -> None:
        assert self.probe is not None
        probe = self.probe
        what = f"{len(tokens)} messages on the page, in the feed and in search"

        def missing() -> str:
            return "".join(
                f"; not in {kind}: {', '.join(t for t in tokens if t not in probe.seen[kind])}"
                for kind in KINDS
                if not all(t in probe.seen[kind] for t in tokens)
            )

        self._wait(what, lambda: probe.all_seen(tokens), GIVE_UP_S, missing)

    def stages(self, tokens: list[str]) -> dict[str, dict[str, float]]:
        """Per message, the seconds each part took: agent, processor, publisher."""
        assert self.probe is not None and self.notifications is not None
        appended: dict[str, float] = {}
        # A message is in several events (its first read, later status changes): the first
        # one Kafka appended is when it was captured.
        for record in read_topic(self.settings, self.topic):
            for token in TOKEN.findall(record.value.decode("utf-8", "replace")):
                appended.setdefault(token, record.timestamp_ms / 1000)
        first_change = {}
        with psycopg.connect(self.settings.postgres_dsn) as conn:
            for body, seq in conn.execute(
                "SELECT m.body, min(c.change_seq) FROM messages m"
                " JOIN changes c ON c.kind = 'message' AND c.key = m.id"
                " WHERE m.chat = %s GROUP BY m.id, m.body",
                (CHAT,),
            ):
                for token in TOKEN.findall(body):
                    first_change[token] = seq
        out: dict[str, dict[str, float]] = {"agent": {}, "processor": {}}
        out.update({f"publisher {kind}": {} for kind in KINDS})
        for token in tokens:
            committed = self.notifications.first_covering(first_change[token])
            if committed is None:
                raise PipelineError(f"no NOTIFY heard for {token}'s change {first_change[token]}")
            out["agent"][token] = appended[token] - self.probe.posted[token]
            out["processor"][token] = committed - appended[token]
            for kind in KINDS:
                out[f"publisher {kind}"][token] = self.probe.seen[kind][token] - committed
        return out

    def cpu(self) -> dict[str, float]:
        times = {name: cpu_seconds(c.proc.pid) for name, c in self.children.items()}
        times["bench (emulator, probe)"] = time.process_time()
        return times

    def close(self) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(postgres.drop_database, self.base, self.database)
            stack.callback(kafka_principals.drop_topics, self.base, [self.topic])
            if self.bus is not None:
                stack.callback(stop_session_bus, self.bus)
            if self.emulator is not None:
                stack.callback(self.emulator.close)
            if self.notifications is not None:
                stack.callback(self.notifications.close)
            for child in self.children.values():
                stack.callback(child.stop)
            if self.probe is not None:
                stack.callback(self.probe.stop)


def measure(settings: Settings, messages: int, work: Path) -> list[Figure]:
    e2e = EndToEnd(settings, work)
    try:
        e2e.start()
        # Warm: the consumer group joined, the chat and its pages exist, the server's
        # searcher is open; only then does a message's latency mean what a reader sees.
        e2e.wait_seen(e2e.converse(WARM_UP, first=0))
        load = os.getloadavg()[0]
        cpu0, machine0, wall0 = e2e.cpu(), busy_cores(), time.monotonic()
        tokens = e2e.converse(messages, first=WARM_UP)
        e2e.wait_seen(tokens)
        cpu1, machine1, wall = e2e.cpu(), busy_cores(), time.monotonic() - wall0
        stages = e2e.stages(tokens)
    finally:
        e2e.close()
    probe = e2e.probe
    assert probe is not None
    # Messages on their way while something else had the shared broker stopped measure
    # that freeze, not the pipeline; they are counted in, and the p95 without them is shown.
    clean = [
        t
        for t in tokens
        if not any(
            a < max(probe.seen[k][t] for k in KINDS) and b > probe.posted[t]
            for a, b in probe.frozen
        )
    ]
    figures = [
        Figure("messages posted live, measured after warm-up", messages, "messages"),
        Figure("Kafka stopped by another process meanwhile", len(probe.frozen), "times"),
        Figure("messages in flight while Kafka was stopped", messages - len(clean), "messages"),
    ]
    disturbed = len(clean) < len(tokens)

    def spread(label: str, seconds: dict[str, float], whole: bool) -> list[Figure]:
        """p50 and p95 (and max, for the whole journey) of one span over the messages."""
        target = f" (target < {TARGET_P95_S:g} s)" if whole else ""
        values = list(seconds.values())
        out = [
            Figure(f"{label}, p50", statistics.median(values), "s"),
            Figure(f"{label}, p95{target}", percentile(values, 0.95), "s"),
        ]
        if whole:
            out.append(Figure(f"{label}, max", max(values), "s"))
        if clean and disturbed:
            undisturbed = [seconds[t] for t in clean]
            out.append(
                Figure(f"{label}, p95, Kafka not stopped", percentile(undisturbed, 0.95), "s")
            )
        return out

    where = {"page": "month page", "feed": "chat's Atom feed", "search": "/search.json hit"}
    for kind in KINDS:
        journey = {t: probe.seen[kind][t] - probe.posted[t] for t in tokens}
        figures += spread(f"post -> {where[kind]}", journey, whole=True)
    parts = {
        "agent": "agent: post -> Kafka append",
        "processor": "processor: Kafka append -> store commit (NOTIFY)",
        "publisher page": "publisher: commit -> month page",
        "publisher feed": "publisher: commit -> feed",
        "publisher search": "publisher + server: commit -> search hit",
    }
    for key, label in parts.items():
        figures += spread(label, stages[key], whole=False)
    busy = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1]) * (os.cpu_count() or 1)
    figures += [
        Figure("measured phase, wall time", wall, "s"),
        Figure("load average (1 min) before the measured phase", load, "processes"),
        Figure("machine busy during the phase (all processes)", busy, "cores"),
    ]
    figures += [
        Figure(f"CPU time during the phase: {name}", cpu1[name] - cpu0[name], "s") for name in cpu1
    ]
    return figures


def run(settings: Settings, quick: bool = False, messages: int | None = None) -> list[Figure]:
    messages = messages or (N_QUICK if quick else N_FULL)
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    try:
        figures = measure(settings, messages, work)
    except BaseException:
        print(f"bench_e2e failed; the processes' logs are in {work / 'logs'}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    report(f"end to end, {messages} messages posted live on one desktop", figures)
    return figures


def main() -> None:
    bench_main(__doc__, run, f"{N_QUICK} messages", "messages")


if __name__ == "__main__":
    main()
