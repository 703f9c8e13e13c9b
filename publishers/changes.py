"""The one change-reading loop every publisher shares (design.md, "Change stream").

A publisher keeps its own watermark (the last change_seq it applied) in its own output, and
applying a batch is idempotent, so "rebuild from zero" is this same loop from watermark 0.
The loop reads changes after the watermark in pages, hands each page to the publisher, which
applies it and then records the page's last change_seq; a crash in between re-applies the
page, which changes nothing. Woken by NOTIFY on the store's channel (store_contract.py), and
polling anyway in case a notification is missed (NOTIFY is not delivered to a listener that
reconnects).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from chatchannels.publishers.files import OutputFull, output_full_as_error
from chatchannels.publishers.metrics import PublisherMetrics
from chatchannels.publishers.model import Change
from chatchannels.publishers.store import read_changes, read_newest_change_seq
from chatchannels.retry import Backoff, Stopped, first_line, wait_for_service
from chatchannels.store_contract import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

# Waiting for PostgreSQL or for space: soon again after a blip, every 10 s during a long
# outage.
RETRY_BACKOFF = Backoff(initial=0.5, maximum=10.0)


class Publisher(Protocol):
    name: str

    def watermark(self) -> int:
        """The last change_seq applied (0 when nothing was)."""

    def apply(self, conn: psycopg.Connection, changes: Sequence[Change]) -> None:
        """Make the output reflect these changes, then record changes[-1].seq. Idempotent."""

    def caught_up(self, conn: psycopg.Connection, finish: bool = True) -> float | None:
        """Called when no change is left after the watermark: finish what the batches
        since the last call deferred (the site renders its touched pages here). Unless
        `finish`, it may put that off while the store is still moving: then it returns the
        seconds after which to call again; None when nothing is left."""

    def idle(self) -> None:
        """Housekeeping that must stay off the hot path (e.g. merging index segments)."""

    def close(self) -> None:
        """Release files and connections."""


@dataclass(frozen=True)
class CatchUp:
    publisher: str
    changes: int
    batches: int
    watermark: int
    # Seconds after which the publisher wants to finish work it put off (None: it did all).
    due_s: float | None = None


def catch_up(
    conn: psycopg.Connection,
    publisher: Publisher,
    batch_size: int,
    metrics: PublisherMetrics | None = None,
    finish: bool = True,
) -> CatchUp:
    """Apply every change after the publisher's watermark, one batch at a time; then, with
    `finish`, everything the publisher would put off (Publisher.caught_up)."""
    changes = batches = 0
    started = time.perf_counter()
    while True:
        batch = read_changes(conn, publisher.watermark(), batch_size)
        if not batch:
            due_s = publisher.caught_up(conn, finish)
            if metrics:
                if due_s is None:
                    seconds = time.perf_counter() - started if changes else None
                    metrics.caught_up_with(publisher.name, seconds)
                _position(conn, publisher, metrics)
            return CatchUp(publisher.name, changes, batches, publisher.watermark(), due_s)
        applying = time.perf_counter()
        publisher.apply(conn, batch)
        changes += len(batch)
        batches += 1
        if metrics:
            metrics.batch_applied(publisher.name, len(batch), time.perf_counter() - applying)
            _position(conn, publisher, metrics)
        log.debug("%s applied %d changes up to %d", publisher.name, len(batch), batch[-1].seq)


def _position(conn: psycopg.Connection, publisher: Publisher, metrics: PublisherMetrics) -> None:
    metrics.position(publisher.name, publisher.watermark(), read_newest_change_seq(conn))


def run_publishers(
    dsn: str,
    publishers: Sequence[Publisher],
    *,
    once: bool,
    batch_size: int = 5000,
    poll_s: float = 5.0,
    stop: threading.Event | None = None,
    metrics: PublisherMetrics | None = None,
) -> list[CatchUp]:
    """Catch every publisher up; with `once`, return; else keep following until `stop`.

    With `once` a lost store or a full disk is an error for the caller. Following, the loop
    waits for PostgreSQL, or for space, with backoff and goes on where it was (applying a
    batch is idempotent). A stop while waiting returns no results."""
    stop = stop or threading.Event()
    if once:
        with psycopg.connect(dsn, autocommit=True) as conn:
            results = _catch_up_all(conn, publishers, batch_size, metrics)
        _idle_all(publishers)
        return results
    while True:
        try:
            conn = wait_for_service(
                "PostgreSQL",
                lambda: _listening(dsn),
                transient=(psycopg.OperationalError,),
                log=log,
                backoff=RETRY_BACKOFF,
                stop=stop,
            )
        except Stopped:
            return []
        try:
            return _follow(conn, publishers, batch_size, poll_s, stop, metrics)
        except psycopg.OperationalError as exc:
            log.warning("lost PostgreSQL (%s); reconnecting", first_line(exc))
        except Stopped:
            return []
        finally:
            conn.close()


def _listening(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    except BaseException:
        conn.close()
        raise
    return conn


def _follow(
    conn: psycopg.Connection,
    publishers: Sequence[Publisher],
    batch_size: int,
    poll_s: float,
    stop: threading.Event,
    metrics: PublisherMetrics | None,
) -> list[CatchUp]:
    while True:
        # A full disk under the outputs is waited out here: the same catch-up again once
        # there is room (psycopg errors end the wait, and reconnect).
        results = wait_for_service(
            "space to write the outputs",
            lambda: _catch_up_all(conn, publishers, batch_size, metrics, finish=False),
            transient=(OutputFull,),
            log=log,
            backoff=RETRY_BACKOFF,
            stop=stop,
        )
        if stop.is_set():
            _idle_all(publishers)
            return results
        due = [r.due_s for r in results if r.due_s is not None]
        if not any(r.changes for r in results) and not due:
            try:
                _idle_all(publishers)
            except OutputFull as exc:
                log.warning("housekeeping put off: %s", exc)
        # Wake on the first notification, or when put-off work is due, or after poll_s.
        for _ in conn.notifies(timeout=min([poll_s, *due]), stop_after=1):
            pass


def _catch_up_all(
    conn: psycopg.Connection,
    publishers: Sequence[Publisher],
    batch_size: int,
    metrics: PublisherMetrics | None,
    finish: bool = True,
) -> list[CatchUp]:
    with output_full_as_error():
        return [catch_up(conn, p, batch_size, metrics, finish) for p in publishers]


def _idle_all(publishers: Sequence[Publisher]) -> None:
    with output_full_as_error():
        for publisher in publishers:
            publisher.idle()
