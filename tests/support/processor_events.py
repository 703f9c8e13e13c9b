"""Builders for processor tests: hosts whose agents emit valid `skype-api` raw events.

A `Host` has a clock skew (its clock minus true time). Everything it writes (Skype's
TIMESTAMP, EDITED_TIMESTAMP, the agent's clock.utc) is in its own clock; the broker append
time it returns with each event is true time plus a delay, and never earlier than its
previous event's, as its Kafka partition keeps its order. Events captured during a Kafka
`outage` are spooled and appended when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatchannels.processors.engine import Engine
from chatchannels.rawevents import EventClock, skype_api_event, validate_raw_event

Record = tuple[dict[str, Any], float]
CHAT = "#alice/$bob;ea753190f0a3e49b"
T0 = 1_700_000_000


@dataclass
class Host:
    name: str
    skew: float = 0.0
    delay: float = 0.2
    tz_offset_s: int = 3600
    seq: int = 0
    session: str = "0" * 31 + "1"
    outage: tuple[float, float] | None = None
    records: list[Record] = field(default_factory=list)

    def event(
        self,
        local_id: str,
        lines: list[str],
        *,
        at: float,
        reason: str = "notification",
        trigger: str | None = None,
        delay: float | None = None,
        obj: str = "CHATMESSAGE",
    ) -> Record:
        """An event captured at true time `at`, appended `delay` later (default: the host's)."""
        self.seq += 1
        event = skype_api_event(
            host=self.name,
            session=self.session,
            seq=self.seq,
            clock=EventClock(utc=round(at + self.skew, 6), tz_offset_s=self.tz_offset_s),
            reason=reason,
            obj=obj,
            obj_id=local_id,
            trigger=trigger,
            lines=lines,
        )
        validate_raw_event(event)
        appended = at + (self.delay if delay is None else delay)
        if self.outage is not None and self.outage[0] <= at < self.outage[1]:
            appended = self.outage[1]
        if self.records:
            appended = max(appended, self.records[-1][1] + 0.001)
        record = (event, appended)
        self.records.append(record)
        return record

    def stamp(self, true_time: float) -> int:
        return int(true_time + self.skew)

    def read(
        self,
        local_id: str,
        *,
        posted: float,
        body: str,
        at: float | None = None,
        author: str = "bob",
        chat: str = CHAT,
        edited: float | None = None,
        edited_by: str = "",
        status: str = "RECEIVED",
        msg_type: str = "SAID",
        reason: str = "notification",
        delay: float | None = None,
    ) -> Record:
        """A full read of a message posted at true time `posted` (edited at `edited`)."""
        p = f"CHATMESSAGE {local_id} "
        lines = [
            p + f"TIMESTAMP {self.stamp(posted)}",
            p + f"FROM_HANDLE {author}",
            p + f"FROM_DISPNAME {author.title()}",
            p + f"TYPE {msg_type}",
            p + f"STATUS {status}",
            p + f"CHATNAME {chat}",
            p + f"EDITED_TIMESTAMP {self.stamp(edited) if edited is not None else 0}",
            p + f"EDITED_BY {edited_by}",
            p + f"BODY {body}",
        ]
        trigger = p + f"STATUS {status}" if reason == "notification" else None
        at = posted + 1 if at is None else at
        return self.event(local_id, lines, at=at, reason=reason, trigger=trigger, delay=delay)

    def edit(
        self,
        local_id: str,
        *,
        edited: float,
        body: str,
        editor: str = "bob",
        at: float | None = None,
    ) -> Record:
        """The three-line edit notification flow (spec §6.4), read as one event."""
        p = f"CHATMESSAGE {local_id} "
        lines = [
            p + f"EDITED_TIMESTAMP {self.stamp(edited)}",
            p + f"EDITED_BY {editor}",
            p + f"BODY {body}",
        ]
        at = edited + 1 if at is None else at
        return self.event(local_id, lines, at=at, trigger=lines[0])

    def status(self, local_id: str, status: str, *, at: float) -> Record:
        line = f"CHATMESSAGE {local_id} STATUS {status}"
        return self.event(local_id, [], at=at, reason="status", trigger=line)


def interleave(hosts: list[Host], order: list[int]) -> list[Record]:
    """Merge hosts' records, taking the next record of hosts[order[k]] at step k."""
    queues = [list(h.records) for h in hosts]
    merged = [queues[i].pop(0) for i in order]
    return merged + [r for q in queues for r in q]


def engine_after_edits_and_deletes() -> Engine:
    a, b = Host("a", skew=30.5), Host("b", skew=-83)
    for h in (a, b):
        h.read("1", posted=T0, body="hé <b>x</b>\r\n", at=T0 + 1)
        h.edit("1", edited=T0 + 5, body="edited")
        h.read("2", posted=T0 + 9, body="gone")
        h.edit("2", edited=T0 + 12, body="")
        h.status("2", "READ", at=T0 + 13)
    engine = Engine()
    for event, broker_utc in a.records + b.records:
        engine.apply(event, broker_utc)
    return engine
