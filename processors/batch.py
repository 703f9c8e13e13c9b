"""Steps 1-3 of engine.py for a batch of Kafka records, as pure functions over loaded state.

The store loads what a batch needs (the clocks of its hosts, the host messages it names),
`fold_records` applies the records in order exactly as `Engine.apply` does, and the store
writes back only what changed. Step 4 (recomputing the touched groups) follows in the store,
under the groups' locks, once per group per batch instead of once per event: the canonical
messages are a function of the set of host messages (matching.py), so the result after the
batch is the one the engine reaches after the same events.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chatchannels.event_signing import Headers, SignatureRefused, Verifier
from chatchannels.processors.clocks import HostClock, observe_clock
from chatchannels.processors.completeness import Position, event_position
from chatchannels.processors.decode import DecodeError, decode_event
from chatchannels.processors.file_clocks import IMPORT_REASON, Copies, advance, earliest
from chatchannels.processors.matching import GroupKey, group_key
from chatchannels.processors.observations import (
    HostMessage,
    MessageObservation,
    ObjectObservation,
    Observation,
    fold_observation,
    merge_object,
    refresh_host_messages,
)
from chatchannels.rawevents import RawEventError, parse_raw_event

MessageKey = tuple[str, str]
ObjectKey = tuple[str, str, str]


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as consumed; `broker_utc` is its LogAppendTime, None if unknown;
    `headers` its Kafka headers (the signature, event_signing.py)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    broker_utc: float | None
    headers: Headers = ()


@dataclass(frozen=True)
class Decoded:
    record: RawRecord
    result: Observation | DecodeError
    # The record's place in its host's series, read in the same parse (completeness.py);
    # None when it has none readable.
    position: Position | None = None


@dataclass(frozen=True)
class ClockEstimate:
    """A row of host_clocks: the host's estimate changed at its event `seq` (after `steps`
    steps of its clock seen so far), resting on `samples` (live hosts: the one sample of
    least delay; imported files: their pairs of shared ids, file_clocks.py)."""

    host: str
    seq: int
    skew_s: float
    steps: int
    samples: int = 1


@dataclass
class Folded:
    """What a batch changed; the store writes exactly these."""

    clocks: dict[str, HostClock] = field(default_factory=dict)
    estimates: list[ClockEstimate] = field(default_factory=list)
    host_messages: dict[MessageKey, HostMessage] = field(default_factory=dict)
    first_seen: dict[MessageKey, RawRecord] = field(default_factory=dict)
    objects: dict[ObjectKey, ObjectObservation] = field(default_factory=dict)
    groups: set[GroupKey] = field(default_factory=set)
    dead: list[tuple[RawRecord, DecodeError]] = field(default_factory=list)


def take_in_time_order(
    pending: Mapping[int, deque[RawRecord]], n: int, horizon: float = math.inf
) -> list[RawRecord]:
    """Up to `n` records off the fronts of the partitions' queues, in broker-time order
    (each partition's own order kept: a batch is a prefix of every partition it reads),
    none later than `horizon`.

    Hosts write to different partitions, so a batch that drained one partition before the
    next would hold one host's copy of a message and the next batches the others': the
    message would be rebuilt and written once per host. In time order its copies mostly
    arrive in one batch."""
    heads = [(_time(q[0]), p) for p, q in pending.items() if q]
    heapq.heapify(heads)
    out: list[RawRecord] = []
    while heads and len(out) < n and heads[0][0] <= horizon:
        _, p = heapq.heappop(heads)
        queue = pending[p]
        out.append(queue.popleft())
        if queue:
            heapq.heappush(heads, (_time(queue[0]), p))
    return out


def time_horizon(pending: Mapping[int, deque[RawRecord]], unread: Iterable[int]) -> float:
    """The latest time up to which the queues hold every record of the partitions that have
    more to read (`unread`): taking a record past it could get ahead of one of theirs."""
    ends = (_time(pending[p][-1]) if pending.get(p) else -math.inf for p in unread)
    return min(ends, default=math.inf)


def count_until(pending: Mapping[int, deque[RawRecord]], horizon: float, enough: int) -> int:
    """How many queued records lie at or before `horizon` (counting stops at `enough`)."""
    n = 0
    for queue in pending.values():
        for record in queue:
            if _time(record) > horizon or n >= enough:
                break
            n += 1
    return n


def _time(record: RawRecord) -> float:
    return record.broker_utc or 0.0


def decode_record(record: RawRecord, verifier: Verifier | None = None) -> Decoded:
    """`decode_value` of a record; with a `verifier` (the consumer's, a redrive's) its
    signature is checked first. Records made in memory (tests, benches) need none."""
    return Decoded(record, *decode_value(record.value, verifier, *_signed_part(record)))


def decode_value(
    value: bytes,
    verifier: Verifier | None = None,
    key: bytes | None = None,
    headers: Headers = (),
    broker_utc: float | None = None,
) -> tuple[Observation | DecodeError, Position | None]:
    """The record's JSON object (rawevents.parse_raw_event), then the pure decoder, which
    validates it; and the record's position in its host's series, which even a record the
    decoder refuses may have.

    With a `verifier`: first the signature over `key` and `value` (a refusal costs no
    parse), then whether its signer may write the event's host. A record refused there has
    no host, seq or position: they are the claims of someone who may not make them, and
    they must not count for the host they name (metrics, completeness)."""
    signer = None
    if verifier is not None:
        try:
            signer = verifier.signer(key, value, headers, broker_utc)
        except SignatureRefused as exc:
            return DecodeError("signature", "record headers", str(exc)), None
    try:
        event = parse_raw_event(value)
    except RawEventError as exc:
        return DecodeError("schema", "record", str(exc)), None
    host = event.get("host")
    # A host that is no string is no one's: the decoder refuses the event, with no position.
    if verifier is not None and isinstance(host, str):
        try:
            verifier.check_host(signer, host, event.get("seq"))
        except SignatureRefused as exc:
            return DecodeError("signature", "host", str(exc)), None
    return decode_event(event), event_position(event)


SignedPart = tuple[bytes | None, Headers, float | None]


def _signed_part(record: RawRecord) -> SignedPart:
    """What a signature check needs of a record besides its value."""
    return record.key, record.headers, record.broker_utc


def decode_values(
    values: list[bytes],
    verifier: Verifier | None = None,
    signed: list[SignedPart] | None = None,
) -> tuple[list[tuple[Observation | DecodeError, Position | None]], float]:
    """`decode_value` of each (with `verifier`: `signed` holds each value's key, headers
    and broker time), and the seconds it took (run in a worker process)."""
    start = time.perf_counter()
    if verifier is None:
        results = [decode_value(v) for v in values]
    else:
        assert signed is not None
        results = [decode_value(v, verifier, *s) for v, s in zip(values, signed, strict=True)]
    return results, time.perf_counter() - start


def signed_parts(records: Iterable[RawRecord]) -> list[SignedPart]:
    return [_signed_part(r) for r in records]


def needed_keys(decoded: Iterable[Decoded]) -> tuple[set[str], set[MessageKey], set[ObjectKey]]:
    """The hosts, host messages and objects whose stored state a batch reads."""
    hosts: set[str] = set()
    messages: set[MessageKey] = set()
    objects: set[ObjectKey] = set()
    for d in decoded:
        obs = d.result
        if isinstance(obs, MessageObservation):
            hosts.add(obs.host)
            messages.add((obs.host, obs.local_id))
        elif isinstance(obs, ObjectObservation):
            hosts.add(obs.host)
            objects.add((obs.host, obs.obj, obs.obj_id))
    return hosts, messages, objects


def import_evidence(
    decoded: Iterable[Decoded],
) -> tuple[dict[str, float | None], Copies]:
    """The batch's import hosts with their least broker time in it, and the copies of shared
    ids its messages hold (xid -> host -> earliest TIMESTAMP): file_clocks.update_files."""
    first: dict[str, float | None] = {}
    copies: Copies = {}
    for d in decoded:
        obs = d.result
        if isinstance(obs, DecodeError) or obs.reason != IMPORT_REASON:
            continue
        first[obs.host] = earliest(first.get(obs.host), d.record.broker_utc)
        if isinstance(obs, MessageObservation) and obs.xid is not None and obs.timestamp:
            held = copies.setdefault(obs.xid, {})
            held[obs.host] = min(obs.timestamp, held.get(obs.host, obs.timestamp))
    return first, copies


def clock_track(
    decoded: Iterable[Decoded],
    clocks: Mapping[str, HostClock],
    imported: Mapping[str, HostClock] | None = None,
) -> list[HostClock | None]:
    """The clock of each record's host after the record (None where it did not decode), from
    the stored `clocks`: what both `refreshing_hosts` and `fold_records` need, computed once.
    Import hosts' records take their host's clock in `imported` (the file's offset after the
    whole batch's shared ids, file_clocks.py), of which they only advance the position."""
    imported = imported or {}
    current = {**clocks, **imported}
    track: list[HostClock | None] = []
    for d in decoded:
        obs = d.result
        if isinstance(obs, DecodeError):
            track.append(None)
            continue
        before = current.get(obs.host) or HostClock(obs.host)
        if obs.host in imported:
            clock = advance(before, obs.seq)
        else:
            clock = observe_clock(before, obs.seq, obs.captured_utc, d.record.broker_utc)
        current[obs.host] = clock
        track.append(clock)
    return track


def refreshing_hosts(
    track: Iterable[HostClock | None],
    clocks: Mapping[str, HostClock],
    imported: Mapping[str, HostClock] | None = None,
) -> set[str]:
    """Hosts whose correction (skew, epoch) changes somewhere in the batch (`clock_track`),
    or up front (`imported`, the import hosts' clocks after the batch's shared ids, hosts
    with no record in the batch among them): the store must load their possibly stale host
    messages (`correction_epochs`) before folding."""
    current = dict(clocks)
    changed: set[str] = set()
    for clock in (imported or {}).values():
        before = current.get(clock.host) or HostClock(clock.host)
        if (clock.skew_s, clock.epoch) != (before.skew_s, before.epoch):
            changed.add(clock.host)
    for clock in track:
        if clock is None:
            continue
        before = current.get(clock.host) or HostClock(clock.host)
        current[clock.host] = clock
        if (clock.skew_s, clock.epoch) != (before.skew_s, before.epoch):
            changed.add(clock.host)
    return changed


def correction_epochs(message: HostMessage) -> tuple[int, int]:
    """(lowest, highest) clock epoch of the corrections in a host message, None as -1: a
    correction can only go stale in its host's current epoch or while it has none."""
    epochs = [s.epoch for s in message.sightings]
    if message.skew_s is not None:
        epochs.append(message.epoch)
    values = [-1 if e is None else e for e in epochs] or [0]
    return min(values), max(values)


def fold_records(
    decoded: Iterable[Decoded],
    track: Iterable[HostClock | None],
    clocks: Mapping[str, HostClock],
    host_messages: Mapping[MessageKey, HostMessage],
    objects: Mapping[ObjectKey, ObjectObservation],
    imported: Mapping[str, HostClock] | None = None,
) -> Folded:
    """Apply decoded records in order to the stored state (not modified); return the changes.
    `track` is `clock_track` of the records over `clocks` and `imported`, the import hosts'
    clocks, which apply before the first record.

    `host_messages` must hold the messages the records name and, for every host in
    `refreshing_hosts`, those of its messages whose correction may go stale.
    """
    out = Folded()
    by_host: dict[str, set[MessageKey]] = {}
    for key in host_messages:
        by_host.setdefault(key[0], set()).add(key)

    def take_clock(host: str, clock: HostClock) -> None:
        before_clock = out.clocks.get(host) or clocks.get(host)
        fresh = before_clock or HostClock(host)
        if clock != before_clock:
            out.clocks[host] = clock
            if clock.has_evidence and (before_clock is None or clock.skew_s != before_clock.skew_s):
                samples = clock.samples if clock.imported else 1
                out.estimates.append(
                    ClockEstimate(host, clock.last_seq, clock.skew_s, clock.steps, samples)
                )
        if (clock.skew_s, clock.epoch) != (fresh.skew_s, fresh.epoch):
            known = (out.host_messages.get(k) or host_messages[k] for k in by_host.get(host, ()))
            for message in refresh_host_messages(known, clock):
                out.host_messages[message.key] = message
                if message.is_complete:
                    out.groups.add(group_key(message))

    for host, clock in sorted((imported or {}).items()):
        take_clock(host, clock)
    for d, clock in zip(decoded, track, strict=True):
        obs = d.result
        if isinstance(obs, DecodeError):
            out.dead.append((d.record, obs))
            continue
        assert clock is not None
        host = obs.host
        take_clock(host, clock)
        if isinstance(obs, ObjectObservation):
            key3 = (host, obs.obj, obs.obj_id)
            stored = out.objects.get(key3) or objects.get(key3)
            merged = merge_object(stored, obs)
            if merged is not stored:
                out.objects[key3] = merged
            continue
        key = (host, obs.local_id)
        before = out.host_messages.get(key) or host_messages.get(key)
        message = fold_observation(before, obs, clock)
        if message == before:
            continue
        if before is None:
            out.first_seen[key] = d.record
            by_host.setdefault(host, set()).add(key)
        out.host_messages[key] = message
        if message.is_complete:
            out.groups.add(group_key(message))
    return out
