"""Delivery: move spooled events to Kafka, oldest first, and forget them only once acknowledged.

One thread with its own spool connection. The producer is idempotent with acks=all, and every
record is keyed by the host id, so all of a host's events land in one partition in seq order.
At most `max_in_flight` events are handed to the producer at a time: while Kafka is away the
backlog waits on disk, not in memory. When the producer gives up on a record (Kafka away
longer than the delivery timeout, or never reachable) the producer is dropped and delivery
starts again from the oldest event still in the spool; records Kafka may already hold are then
sent again byte for byte, which consumers collapse by (host, seq).

Every record is signed on its way out (`signer`, chatchannels/event_signing.py): headers
`cc-signer` and `cc-sig`, by which the processor knows who wrote it.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from chatchannels.event_signing import Signer
from chatchannels.ingest.agent.spool import Spool, SpoolFull

log = logging.getLogger(__name__)

# Acknowledged seqs are removed from the spool in batches: each removal is a durable commit,
# and a crash before it only means the same records are sent again.
_REMOVE_EVERY_S = 0.2
_MAX_BACKOFF_S = 10.0


@dataclass(frozen=True)
class DeliveryStats:
    acked: int
    in_flight: int
    last_ack_at: float | None
    connected: bool
    last_error: str


class Delivery:
    """Runs in its own thread: `start()`, `wake()` after appending, `stop()` to flush and end."""

    def __init__(
        self,
        spool_path: Path,
        host: str,
        bootstrap: str,
        topic: str,
        max_in_flight: int = 2000,
        producer_options: dict | None = None,
        *,
        signer: Signer,
    ) -> None:
        self._spool_path = spool_path
        self._signer = signer
        self._host = host
        self._key = host.encode()
        self._bootstrap = bootstrap
        self._topic = topic
        self._max_in_flight = max_in_flight
        self._producer_options = producer_options or {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._acks: collections.deque[int] = collections.deque()
        self._failures: collections.deque[tuple[int, Exception]] = collections.deque()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self._acked = 0
        # Each producer is one generation; counters are written by one thread each, so
        # in-flight = sent - completed needs no lock. Late callbacks of a dropped producer
        # still count as acks (they are), but their failures are old news.
        self._generation = 0
        self._sent = 0
        self._completed = 0
        self._last_ack_at: float | None = None
        self._connected = False
        self._last_error = ""
        self.crashed: BaseException | None = None

    # --- public -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what the spool holds for up to `flush_timeout_s`, then close the producer."""
        self._stop_deadline = time.monotonic() + flush_timeout_s
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def stats(self) -> DeliveryStats:
        return DeliveryStats(
            acked=self._acked,
            in_flight=self._sent - self._completed,
            last_ack_at=self._last_ack_at,
            connected=self._connected,
            last_error=self._last_error,
        )

    # --- thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            with Spool(self._spool_path, self._host) as spool:
                self._loop(spool)
        except BaseException as exc:  # the agent checks `crashed` and stops capture with it
            log.exception("delivery thread failed")
            self.crashed = exc

    def _loop(self, spool: Spool) -> None:
        producer: KafkaProducer | None = None
        last_sent = 0
        backoff = 0.5
        last_remove = time.monotonic()
        while True:
            now = time.monotonic()
            if self._acks and (now - last_remove >= _REMOVE_EVERY_S or self._stopping.is_set()):
                self._remove_acked(spool)
                last_remove = now
            if self._failures:
                self._remove_acked(spool)
                self._handle_failures(spool)
                self._drop(producer)
                producer = None
                last_sent = 0
                self._wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            if self._stopping.is_set() and (
                time.monotonic() >= self._stop_deadline or (spool.depth() == 0 and not self._acks)
            ):
                break
            if producer is None:
                producer = self._connect()
                if producer is None:
                    self._wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
            in_flight = self._sent - self._completed
            room = self._max_in_flight - in_flight
            sent = 0
            if room > 0:
                for event in spool.peek(last_sent, min(room, 1000)):
                    try:
                        future = producer.send(
                            self._topic,
                            key=self._key,
                            value=event.data,
                            headers=self._signer.headers(self._key, event.data),
                        )
                    except KafkaError as exc:
                        self._failures.append((event.seq, exc))
                        break
                    self._sent += 1
                    future.add_callback(
                        functools.partial(self._on_ack, self._generation, event.seq)
                    )
                    future.add_errback(
                        functools.partial(self._on_error, self._generation, event.seq)
                    )
                    last_sent = event.seq
                    sent += 1
            if sent:
                backoff = 0.5
            else:
                self._wait(0.02 if in_flight or self._acks else 0.5)
        if self._acks:
            self._remove_acked(spool)
        self._drop(producer, timeout=max(0.0, self._stop_deadline - time.monotonic()))

    def _connect(self) -> KafkaProducer | None:
        options = {
            "bootstrap_servers": self._bootstrap,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            # Short blocking, so stop() stays prompt; the retry happens here, from the spool.
            "max_block_ms": 5000,
            "client_id": f"chatchannels-agent-{self._host}",
            **self._producer_options,
        }
        try:
            producer = KafkaProducer(**options)
        except KafkaError as exc:
            self._note_error(f"cannot reach Kafka at {self._bootstrap}: {exc!r}")
            return None
        self._connected = True
        return producer

    def _drop(self, producer: KafkaProducer | None, timeout: float = 0.0) -> None:
        if producer is not None:
            try:
                producer.close(timeout=timeout)
            except KafkaError as exc:
                log.warning("closing the Kafka producer: %r", exc)
        self._connected = False
        self._generation += 1
        self._sent = self._completed = 0
        self._failures.clear()

    def _remove_acked(self, spool: Spool) -> None:
        done = []
        while self._acks:
            done.append(self._acks.popleft())
        try:
            spool.remove(done)
        except SpoolFull as exc:
            # Removing writes too (the WAL). Kept to remove later: an acknowledged event
            # left in the spool is at worst sent again, which changes nothing in the store.
            self._acks.extendleft(reversed(done))
            self._note_error(f"{exc}; acknowledged events stay in the spool until there is room")
            return
        self._acked += len(done)

    def _handle_failures(self, spool: Spool) -> None:
        for seq, exc in list(self._failures):
            if isinstance(exc, MessageSizeTooLargeError):
                log.error("seq %d is too large for Kafka; kept in the spool's dead table", seq)
                spool.bury(seq, f"Kafka refused it: {exc!r}")
        first_seq, first = self._failures[0]
        self._note_error(f"delivery of seq {first_seq} failed: {first!r}; resending from spool")

    def _note_error(self, text: str) -> None:
        if text != self._last_error:
            log.warning("%s", text)
        self._last_error = text

    def _on_ack(self, generation: int, seq: int, _metadata: object) -> None:
        self._last_ack_at = time.time()
        self._acks.append(seq)
        if generation == self._generation:
            self._completed += 1

    def _on_error(self, generation: int, seq: int, exc: Exception) -> None:
        if generation == self._generation:
            self._completed += 1
            self._failures.append((seq, exc))
            self._wake.set()

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()
