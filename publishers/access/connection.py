"""One connection to the store, kept open between requests and shared by a server's threads
(one query at a time), opened again when the server dropped it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg

T = TypeVar("T")


class KeptConnection:
    def __init__(self, connect: Callable[[], psycopg.Connection]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    @classmethod
    def of_dsn(cls, dsn: str) -> KeptConnection:
        return cls(lambda: psycopg.connect(dsn, autocommit=True))

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work` on the connection; once more on a new connection if the old one was
        broken (the server restarted), so that a restart costs no request an error."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            try:
                return work(self._conn)
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = self._connect()
                return work(self._conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
