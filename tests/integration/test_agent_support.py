"""Helpers shared by the agent's integration tests (no tests here): read a topic back, poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from chatchannels.rawevents import decode_raw_event


class TopicReader:
    """Reads every record of a topic from offset 0, validating each as a raw event."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=200
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
