"""The processor's steps for one raw event, as pure functions, plus an in-memory engine.

A durable consumer (processors/store.py) does per record, in one transaction:

1. `decode_event(event)`; a DecodeError goes to dead_letters with the raw record.
2. `observe_clock(stored HostClock of the host, seq, event clock.utc, record append time)`.
   If its estimate rose or it gained its first evidence, `refresh_host_messages` re-corrects
   the host's messages whose correction is stale (`HostClock.is_stale(skew_s, epoch)`: a
   query on the host, epoch and skew of stored host messages finds them) and their groups
   are recomputed in step 4. Once a host has one live event this is rare.
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
from chatchannels.processors.matching import DEFAULT_TOLERANCE_S, cluster_messages, group_key
from chatchannels.processors.observations import (
    HostMessage,
    MessageObservation,
    ObjectObservation,
    Observation,
    fold_observation,
    merge_object,
    refresh_host_messages,
)

GroupKey = tuple[str, str]


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

    def apply(self, event: Mapping[str, Any], broker_utc: float | None) -> Applied | DecodeError:
        observation = decode_event(event)
        if isinstance(observation, DecodeError):
            return observation
        host = observation.host
        before = self.clocks.get(host) or HostClock(host)
        clock = observe_clock(before, observation.seq, observation.captured_utc, broker_utc)
        self.clocks[host] = clock
        touched: set[GroupKey] = set()
        if (clock.skew_s, clock.epoch) != (before.skew_s, before.epoch):
            mine = (m for m in self.host_messages.values() if m.host == host)
            for message in refresh_host_messages(mine, clock):
                self.host_messages[message.key] = message
                if message.is_complete:
                    touched.add(group_key(message))
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
