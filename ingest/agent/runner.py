"""`agent run`: wire the client, the capture loop, the spool and delivery together.

Threads: the event loop (D-Bus, capture), one spool-writer thread (every append is a durable
SQLite commit, kept off the loop), and the delivery thread. A status file next to the spool
is rewritten every second for `agent status`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import io
import json
import logging
import os
import signal
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatchannels.event_signing import Signer
from chatchannels.ingest.agent.capture import Capture, Captured, wall_clock
from chatchannels.ingest.agent.config import AgentConfig
from chatchannels.ingest.agent.delivery import Delivery
from chatchannels.ingest.agent.reads import build_event
from chatchannels.ingest.agent.spool import (
    Spool,
    SpoolError,
    SpoolFull,
    SpoolSummary,
    read_summary,
)
from chatchannels.ingest.agent.status import agent_metrics
from chatchannels.ingest.desktop_api.client import AttachState, SkypeClient
from chatchannels.rawevents import encode_raw_event
from chatchannels.retry import Backoff, log_retry
from chatchannels.signing_secrets import agent_signer

log = logging.getLogger(__name__)

_STATUS_EVERY_S = 1.0
# Waiting for space for the spool: soon again after a blip, every 10 s at most.
_SPOOL_BACKOFF = Backoff(initial=0.5, maximum=10.0)


@dataclass
class _Counters:
    captured: int = 0
    last_capture_at: float | None = None


class _SpoolWriter:
    """The capture side's spool connection, used only from its own thread."""

    def __init__(self, config: AgentConfig, session: str) -> None:
        self.config = config
        self.session = session
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool")
        self._spool: Spool | None = None

    async def open(self) -> dict[str, int]:
        def open_spool() -> dict[str, int]:
            self._spool = Spool(self.config.spool, self.config.host_id)
            return self._spool.marks()

        return await asyncio.get_running_loop().run_in_executor(self._pool, open_spool)

    async def write(self, batch: list[Captured], marks: dict[str, int]) -> range:
        host, session = self.config.host_id, self.session

        def builder(item: Captured):
            return lambda seq: encode_raw_event(
                build_event(item.read, host=host, session=session, seq=seq, clock=item.clock)
            )

        assert self._spool is not None
        append = self._spool.append
        builders = [builder(item) for item in batch]
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, lambda: append(builders, time.time(), marks)
        )

    def close(self) -> None:
        if self._spool is not None:
            self._pool.submit(self._spool.close).result()
        self._pool.shutdown()


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.signer = _signer(config)
        self.session = uuid.uuid4().hex
        self.counters = _Counters()
        self._rate: deque[tuple[float, int]] = deque(maxlen=10)
        self.client: SkypeClient | None = None
        self.delivery: Delivery | None = None
        # Why capture stands still, for the status file ("" while it captures).
        self.capture_paused = ""

    async def run(self, stop: asyncio.Event) -> int:
        """Capture until `stop` is set; returns the exit code (0 after a clean stop)."""
        config = self.config
        # First: a missing or world-readable password file stops the agent before it starts.
        kafka_options = config.kafka_login().client_options()
        writer = _SpoolWriter(config, self.session)
        marks = await writer.open()
        delivery = Delivery(
            config.spool,
            config.host_id,
            config.kafka,
            config.topic,
            config.max_in_flight,
            producer_options=kafka_options,
            signer=self.signer,
        )
        self.delivery = delivery
        delivery.start()

        async def sink(batch: list[Captured], marks: dict[str, int]) -> None:
            seqs = await self._spool(writer, batch, marks, stop)
            self.counters.captured += len(seqs)
            self.counters.last_capture_at = time.time()
            delivery.wake()

        client = SkypeClient(
            config.app_name,
            bus_address=config.dbus_address or None,
            command_timeout=config.command_timeout_s,
            backoff=Backoff(maximum=config.reattach_max_backoff_s),
        )
        self.client = client
        capture = Capture(
            client,
            config.allow_list(),
            sink,
            wall_clock(config.clock_offset_s),
            marks,
            overlap=config.overlap,
            read_window=config.read_window,
            max_commands=config.max_commands,
            rescan_interval_s=config.rescan_interval_s,
        )
        log.info(
            "agent starting",
            extra={"host": config.host_id, "session": self.session, "spool": str(config.spool)},
        )
        capture.start()
        connect = asyncio.create_task(client.connect(wait=True))
        status = asyncio.create_task(self._status_loop())
        stopped = asyncio.create_task(stop.wait())
        code = 0
        try:
            while not stop.is_set():
                waiting = [stopped] if connect.done() else [stopped, connect]
                await asyncio.wait(waiting, timeout=1.0, return_when="FIRST_COMPLETED")
                if connect.done() and not connect.cancelled() and connect.exception() is not None:
                    log.error("cannot attach to Skype: %s", connect.exception())
                    code = 3
                    break
                if capture.failed is not None or delivery.crashed is not None:
                    code = 2
                    break
        finally:
            log.info("agent stopping: writing what was read, flushing to Kafka")
            connect.cancel()
            await capture.stop()
            await client.close()
            await asyncio.get_running_loop().run_in_executor(None, delivery.stop)
            writer.close()
            status.cancel()
            stopped.cancel()
            self._write_status("stopped")
        log.info("agent stopped", extra={"exit_code": code})
        return code

    async def _spool(
        self,
        writer: _SpoolWriter,
        batch: list[Captured],
        marks: dict[str, int],
        stop: asyncio.Event,
    ) -> range:
        """Write a batch, waiting while the spool's disk is full: capture stands still
        meanwhile (reads wait for the writer, notifications queue up), what is spooled
        stays as it is, and the batch is written once there is room. A stop meanwhile
        gives up on the batch (its messages are read again after a restart: no mark rose)."""
        for attempt, delay in enumerate(_SPOOL_BACKOFF.delays(), start=1):
            try:
                seqs = await writer.write(batch, marks)
            except SpoolFull as exc:
                if stop.is_set():
                    raise
                self.capture_paused = f"{exc}; capture waits for space"
                log_retry(log, "space for the spool", str(exc), attempt, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            if self.capture_paused:
                log.info("space again: capture goes on")
                self.capture_paused = ""
            return seqs
        raise AssertionError("Backoff.delays() never ends")

    # --- status -------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            state = self.client.state.value if self.client else AttachState.NOT_ATTACHED.value
            try:
                # Off the event loop: counting a spool that grew while Kafka was away takes a
                # while.
                summary = await asyncio.to_thread(read_summary, self.config.spool)
            except SpoolError:
                summary = None
            self._write_status(state, summary)
            await asyncio.sleep(_STATUS_EVERY_S)

    def _events_per_s(self) -> float:
        now = time.monotonic()
        self._rate.append((now, self.counters.captured))
        first_at, first_count = self._rate[0]
        return (self.counters.captured - first_count) / (now - first_at) if now > first_at else 0.0

    def _write_status(self, attach_state: str, summary: SpoolSummary | None = None) -> None:
        stats = self.delivery.stats() if self.delivery else None
        doc: dict[str, Any] = {
            "pid": os.getpid(),
            "host": self.config.host_id,
            "session": self.session,
            "attach_state": attach_state,
            "captured": self.counters.captured,
            "last_capture_at": self.counters.last_capture_at,
            "events_per_s": round(self._events_per_s(), 1),
            "kafka_connected": stats.connected if stats else False,
            "acked": stats.acked if stats else 0,
            "in_flight": stats.in_flight if stats else 0,
            "last_ack_at": stats.last_ack_at if stats else None,
            "last_error": stats.last_error if stats else "",
            "capture_paused": self.capture_paused,
            "updated_at": time.time(),
        }
        doc["metrics"] = agent_metrics(doc, summary)
        write_json_atomically(self.config.status_file, doc)


def log_tasks() -> None:
    """SIGUSR1: log where every task of the agent waits (for a hung-looking agent)."""
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(limit=8, file=out)
        log.warning("task %s", task.get_name(), extra={"stack": out.getvalue()})


def write_json_atomically(path: Path, doc: dict[str, Any]) -> None:
    """Replace `path` with the document. On a full disk (where the spool lives: the status
    must say so) the file is rewritten in place instead, within the space it holds already;
    a reader may then catch it half-written, and reads it as no status for that second."""
    data = json.dumps(doc, sort_keys=True).encode()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno != errno.ENOSPC or not path.exists():
            raise
        with path.open("r+b") as out:
            out.write(data)
            out.truncate()


def _signer(config: AgentConfig) -> Signer:
    """The agent's signer: its principal, keyed by the password file it logs in to Kafka
    with (event_signing.py); the processor refuses what it writes without one."""
    login = config.kafka_login()
    return agent_signer(login.user, login.password_file)


def run_agent(config: AgentConfig) -> int:
    """Run until SIGTERM or SIGINT; then flush and close cleanly."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, log_tasks)
        try:
            return await Agent(config).run(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)

    return asyncio.run(main())
