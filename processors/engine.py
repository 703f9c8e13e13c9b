"""The processor's steps for one raw event, as pure functions, plus an in-memory engine.

A durable consumer (processors/pg/store.py) does per record, in one transaction:

1. `decode_event(event)`; a DecodeError goes to dead_letters with the raw record.
2. `observe_clock(stored HostClock of the host, seq, event clock.utc, record append time)`.
   If its estimate rose or it gained its first evidence, `refresh_host_messages` re-corrects
   the host's messages whose correction is stale (`HostClock.is_stale(skew_s, epoch)`: a
   query on the host, epoch and skew of stored host messages finds them) and their groups
   are recomputed in step 4. Once a host has one live event this is rare.
   An imported file's events (reason "import") give no clock evidence: their shared ids
   update the files' offsets (file_clocks.update_files), and every import host whose offset
   moved, this event's or another, is re-corrected the same way.
3. For a MessageObservation: `fold_observation(stored HostMessage, obs, clock)`.
4. For each group touched (the host message's, if complete, and the refreshed ones'): lock
   it (chat, author), load its host messages and stored canonical messages, and write
   `recompute_group(...)`'s GroupChange.

`Engine` does exactly that with dictionaries. It is the reference the store must agree with
and what the property tests run; its state after any interleaving of the same per-host event
sequences is the same (design invariant 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatchannels.processors.canonical import (
    CanonicalMessage,
    GroupChange,
    build_messages,
    diff_messages,
)
from chatchannels.processors.clocks import HostClock, observe_clock
from chatchannels.processors.decode import DecodeError, decode_event
from chatchannels.processors.file_clocks import (
    IMPORT_REASON,
    FileEstimate,
    Pair,
    advance,
    import_clocks,
    update_files,
)
from chatchannels.processors.matching import (
    DEFAULT_TOLERANCE_S,
    GroupKey,
    cluster_messages,
    group_key,
)
from chatchannels.processors.observations import (
    HostMessage,
    MessageObservation,
    ObjectObservation,
    Observation,
    fold_observation,
    merge_object,
    refresh_host_messages,
)


@dataclass(frozen=True)
class Applied:
    """What one event changed: the host message it folded into, and the group changes."""

    observation: Observation
    clock: HostClock
    host_message: HostMessage | None
    changes: tuple[GroupChange, ...]


def recompute_group(
    host_messages: Iterable[HostMessage],
    stored: Sequence[CanonicalMessage],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> tuple[list[CanonicalMessage], GroupChange]:
    """The canonical messages of one group from all its host messages, and the writes from
    `stored` to them. Pure and deterministic: only the set of host messages matters."""
    messages = build_messages(cluster_messages(host_messages, tolerance_s), tolerance_s)
    return messages, diff_messages(stored, messages)


@dataclass
class Engine:
    """In-memory processor state; every field is plain frozen values, so it can be saved."""

    tolerance_s: float = DEFAULT_TOLERANCE_S
    clocks: dict[str, HostClock] = field(default_factory=dict)
    host_messages: dict[tuple[str, str], HostMessage] = field(default_factory=dict)
    groups: dict[GroupKey, set[tuple[str, str]]] = field(default_factory=dict)
    messages: dict[GroupKey, tuple[CanonicalMessage, ...]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], ObjectObservation] = field(default_factory=dict)
    # Imported files' clock evidence (file_clocks.py): copies of shared ids (xid -> host ->
    # TIMESTAMP), each import host's least broker time and estimate, the pairs' counts.
    shared_ids: dict[str, dict[str, int]] = field(default_factory=dict)
    file_first_broker: dict[str, float | None] = field(default_factory=dict)
    file_estimates: dict[str, FileEstimate] = field(default_factory=dict)
    file_pairs: dict[Pair, int] = field(default_factory=dict)

    def apply(self, event: Mapping[str, Any], broker_utc: float | None) -> Applied | DecodeError:
        observation = decode_event(event)
        if isinstance(observation, DecodeError):
            return observation
        return self.apply_observation(observation, broker_utc)

    def apply_observation(self, observation: Observation, broker_utc: float | None) -> Applied:
        """Steps 2-4 for one decoded event."""
        host = observation.host
        touched: set[GroupKey] = set()
        if observation.reason == IMPORT_REASON:
            for clock in self._file_clocks(observation, broker_utc).values():
                self._take_clock(clock, touched)
            clock = advance(self.clocks[host], observation.seq)
            self.clocks[host] = clock
        else:
            before = self.clocks.get(host) or HostClock(host)
            clock = observe_clock(before, observation.seq, observation.captured_utc, broker_utc)
            self._take_clock(clock, touched)
        message = None
        if isinstance(observation, ObjectObservation):
            key = (host, observation.obj, observation.obj_id)
            self.objects[key] = merge_object(self.objects.get(key), observation)
        else:
            message = self._fold(observation, clock)
            if message is not None and message.is_complete:
                touched.add(group_key(message))
        changes = tuple(self._recompute(group) for group in sorted(touched))
        return Applied(observation, clock, message, changes)

    def _take_clock(self, clock: HostClock, touched: set[GroupKey]) -> None:
        """`clock` in force for its host; its messages re-corrected if their correction moved."""
        host = clock.host
        before = self.clocks.get(host) or HostClock(host)
        self.clocks[host] = clock
        if (clock.skew_s, clock.epoch) != (before.skew_s, before.epoch):
            mine = (m for m in self.host_messages.values() if m.host == host)
            for message in refresh_host_messages(mine, clock):
                self.host_messages[message.key] = message
                if message.is_complete:
                    touched.add(group_key(message))

    def _file_clocks(
        self, observation: Observation, broker_utc: float | None
    ) -> dict[str, HostClock]:
        """The import hosts' clocks after this import event's evidence: its host's, and
        those of every host whose estimate it changed."""
        host = observation.host
        copies: dict[str, dict[str, int]] = {}
        xid = getattr(observation, "xid", None)
        timestamp = getattr(observation, "timestamp", None)
        if xid is not None and timestamp is not None:
            copies[xid] = {host: timestamp}
        update = update_files(
            self.file_first_broker,
            self.file_estimates,
            self.file_pairs,
            {x: self.shared_ids[x] for x in copies if x in self.shared_ids},
            {host: broker_utc},
            copies,
        )
        for x, held in update.copies.items():
            self.shared_ids.setdefault(x, {}).update(held)
        for pair, n in update.pairs.items():
            if n:
                self.file_pairs[pair] = n
            else:
                self.file_pairs.pop(pair, None)
        self.file_first_broker = update.first_broker
        self.file_estimates = update.estimates
        return import_clocks(sorted(update.changed | {host}), update.estimates, self.clocks)

    def _fold(self, obs: MessageObservation, clock: HostClock) -> HostMessage | None:
        """The host message after folding, or None if the observation changed nothing."""
        key = (obs.host, obs.local_id)
        before = self.host_messages.get(key)
        message = fold_observation(before, obs, clock)
        if message == before:
            return None
        self.host_messages[key] = message
        if message.is_complete:
            self.groups.setdefault(group_key(message), set()).add(key)
        return message

    def _recompute(self, group: GroupKey) -> GroupChange:
        current, change = recompute_group(
            (self.host_messages[k] for k in self.groups[group]),
            self.messages.get(group, ()),
            self.tolerance_s,
        )
        self.messages[group] = tuple(current)
        for old_id, new_id in change.aliases:
            self.aliases[old_id] = new_id
        return change

    def canonical_messages(self) -> list[CanonicalMessage]:
        return sorted(
            (m for ms in self.messages.values() for m in ms), key=lambda m: (m.chat, m.utc, m.id)
        )
