"""The processor's steps for one raw event, as pure functions, plus an in-memory engine.

A durable consumer (processors/store.py) does per record, in one transaction:

1. `decode_event(event)`; a DecodeError goes to dead_letters with the raw record.
2. `observe_clock(stored HostClock of the host, seq, event clock.utc, record append time)`.
3. For a MessageObservation: `fold_observation(stored HostMessage, obs, clock.skew_s)`.
4. If the host message is complete: lock its group (chat, author), load the group's host
   messages and stored canonical messages, and write `recompute_group(...)`'s GroupChange.

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
from chatchannels.processors.clocks import DEFAULT_WINDOW_S, HostClock, observe_clock
from chatchannels.processors.decode import DecodeError, decode_event
from chatchannels.processors.matching import DEFAULT_TOLERANCE_S, cluster_messages, group_key
from chatchannels.processors.observations import (
    HostMessage,
    MessageObservation,
    ObjectObservation,
    Observation,
    fold_observation,
)

GroupKey = tuple[str, str]


@dataclass(frozen=True)
class Applied:
    """What one event changed. `change` is None when no canonical message was affected."""

    observation: Observation
    clock: HostClock
    host_message: HostMessage | None
    group: GroupKey | None
    change: GroupChange | None


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
    clock_window_s: float = DEFAULT_WINDOW_S
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
        clock = self.clocks.get(host) or HostClock(host, window_s=self.clock_window_s)
        clock = observe_clock(clock, observation.seq, observation.captured_utc, broker_utc)
        self.clocks[host] = clock
        if isinstance(observation, ObjectObservation):
            self.objects[(host, observation.obj, observation.obj_id)] = observation
            return Applied(observation, clock, None, None, None)
        return self._apply_message(observation, clock)

    def _apply_message(self, obs: MessageObservation, clock: HostClock) -> Applied:
        key = (obs.host, obs.local_id)
        before = self.host_messages.get(key)
        message = fold_observation(before, obs, clock.skew_s)
        self.host_messages[key] = message
        if message == before or not message.is_complete:
            return Applied(obs, clock, message, None, None)
        group = group_key(message)
        members = self.groups.setdefault(group, set())
        members.add(key)
        current, change = recompute_group(
            (self.host_messages[k] for k in members),
            self.messages.get(group, ()),
            self.tolerance_s,
        )
        self.messages[group] = tuple(current)
        for old_id, new_id in change.aliases:
            self.aliases[old_id] = new_id
        return Applied(obs, clock, message, group, change)

    def canonical_messages(self) -> list[CanonicalMessage]:
        return sorted(
            (m for ms in self.messages.values() for m in ms), key=lambda m: (m.chat, m.utc, m.id)
        )
