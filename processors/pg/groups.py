"""The batch's groups (chat, author): locked, loaded, recomputed, and cached between batches.

A batch takes a transaction-scoped advisory lock per touched group, in sorted key order so
that instances never deadlock, reloads each group's host messages, including the ones other
instances committed, and recomputes it (group_index.py, incrementally, as
engine.recompute_group would). Recently recomputed groups stay in memory (`GroupCache`),
valid for as long as the stored version in proc_groups is the one cached: another instance
writing the group gives it a new version, and the next batch reloads it.

A group that is not cached is read back as its stored host messages only, and indexed: its
canonical messages are a function of that set (matching.py), so the index of the stored
host messages holds exactly the messages the store holds for them, and updating it with the
batch's changes gives the writes. No copy of the canonical messages is kept for this, so a
message costs no row beyond its public ones (messages, revisions, observations). A release
whose matching makes different messages of the same host messages therefore has to be rolled
out with a replay (deploy/operations.md), as it must anyway for the archive to be one
function of the log.
"""

from __future__ import annotations

import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass

from chatchannels.processors.batch import Folded
from chatchannels.processors.canonical import CanonicalMessage, GroupChange
from chatchannels.processors.content import normalise_handle
from chatchannels.processors.group_index import GroupIndex
from chatchannels.processors.matching import GroupKey
from chatchannels.processors.observations import HostMessage
from chatchannels.processors.pg.locks import group_lock
from chatchannels.processors.pg.session import Session
from chatchannels.processors.snapshots import load_value


@dataclass(frozen=True)
class Recomputed:
    group: GroupKey
    change: GroupChange
    # The messages before, by id, that the change replaces or removes.
    before: dict[str, CanonicalMessage]


@dataclass(frozen=True)
class LockedGroups:
    groups: list[GroupKey]
    indexes: dict[GroupKey, GroupIndex]
    # The groups not in the cache: their stored host messages.
    stored: dict[GroupKey, dict[tuple[str, str], HostMessage]]


@dataclass(frozen=True)
class _GroupState:
    version: uuid.UUID
    index: GroupIndex


class GroupCache:
    """Recently recomputed groups, bounded by their number of host messages (LRU). An index
    grows in place, so each entry keeps the size it was counted with."""

    def __init__(self, max_members: int) -> None:
        self.max_members = max_members
        self.size = 0
        self.groups: OrderedDict[GroupKey, tuple[_GroupState, int]] = OrderedDict()

    def take(self, group: GroupKey) -> _GroupState | None:
        """Remove and return: an index being updated is in no state to be reused until the
        update is done and put back."""
        entry = self.groups.pop(group, None)
        if entry is None:
            return None
        self.size -= entry[1]
        return entry[0]

    def put(self, group: GroupKey, state: _GroupState) -> None:
        self.take(group)
        size = len(state.index.members)
        self.groups[group] = (state, size)
        self.size += size
        while self.size > self.max_members and len(self.groups) > 1:
            _, (_, evicted) = self.groups.popitem(last=False)
            self.size -= evicted


class Groups:
    """The groups of one session's batches, with the cache that outlives them."""

    def __init__(self, session: Session, tolerance_s: float, cache_members: int) -> None:
        self.session = session
        self.tolerance_s = tolerance_s
        self.cache = GroupCache(cache_members)
        # How the batches' groups were read (the benchmark reads them): instances sharing
        # groups read back whatever the other one wrote since.
        self.counts: Counter[str] = Counter()

    def forget(self) -> None:
        """Drop the cache. The groups are frozen out of the collector (session.PausedCollector):
        they go now, even if something still holds the store."""
        self.cache = GroupCache(self.cache.max_members)

    def lock(self, folded: Folded) -> LockedGroups:
        """Locks the batch's groups and reads them: from the cache where it holds the stored
        version, from the store otherwise (their host messages as stored before this batch:
        they are read before the batch's state is written)."""
        keyed = sorted((group_lock(self.session.schema, g), g) for g in folded.groups)
        if not keyed:
            return LockedGroups([], {}, {})
        self.session.write(
            "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k",
            ([k for k, _ in keyed],),
        )
        groups = [g for _, g in keyed]
        indexes = self._cached_indexes(groups)
        stored = self._load([g for g in groups if g not in indexes])
        return LockedGroups(groups, indexes, stored)

    def recompute(self, folded: Folded, locked: LockedGroups) -> list[Recomputed]:
        groups = locked.groups
        if not groups:
            return []
        changed: dict[GroupKey, dict[tuple[str, str], HostMessage]] = {g: {} for g in groups}
        for key, message in folded.host_messages.items():
            if message.is_complete:
                changed[(message.chat, normalise_handle(message.author))][key] = message
        versions = [(g[0], g[1], uuid.uuid4()) for g in groups]
        self.session.upsert(
            "proc_groups",
            ("chat", "author_key", "version"),
            versions,
            ("chat", "author_key"),
            ("version",),
        )
        result = []
        for (*_, version), group in zip(versions, groups, strict=True):
            index = locked.indexes.get(group)
            if index is None:
                index = GroupIndex.of(*group, self.tolerance_s, locked.stored[group])
            change, before = index.update(changed[group])
            result.append(Recomputed(group, change, before))
            # Valid only if this transaction commits: otherwise the stored version differs
            # and the next batch reloads the group.
            self.cache.put(group, _GroupState(version, index))
        return result

    def _cached_indexes(self, groups: list[GroupKey]) -> dict[GroupKey, GroupIndex]:
        """The cached groups whose stored version is the one cached: no other transaction
        has written them since. Taken out of the cache until their update is done."""
        stored_versions = {
            (c, a): v
            for c, a, v in self.session.query(
                "SELECT p.chat, p.author_key, p.version FROM proc_groups p"
                " JOIN unnest(%s::text[], %s::text[]) AS g(chat, author_key)"
                " USING (chat, author_key)",
                ([g[0] for g in groups], [g[1] for g in groups]),
            )
        }
        indexes = {}
        for group in groups:
            cached = self.cache.take(group)
            if cached is None:
                self.counts["groups read back: not cached"] += 1
            elif cached.version == stored_versions.get(group):
                indexes[group] = cached.index
            else:
                self.counts["groups read back: written by another transaction"] += 1
        self.counts["groups from the cache"] += len(indexes)
        return indexes

    def _load(self, groups: list[GroupKey]) -> dict[GroupKey, dict[tuple[str, str], HostMessage]]:
        """Each group's stored host messages."""
        loaded: dict[GroupKey, dict[tuple[str, str], HostMessage]] = {g: {} for g in groups}
        if not groups:
            return loaded
        for chat, author_key, host, local_id, state in self.session.query(
            "SELECT m.chat, m.author_key, m.host, m.local_id, m.state"
            " FROM proc_host_messages m JOIN unnest(%s::text[], %s::text[])"
            " AS g(chat, author_key) USING (chat, author_key)",
            ([g[0] for g in groups], [g[1] for g in groups]),
        ):
            loaded[(chat, author_key)][(host, local_id)] = load_value(HostMessage, state)
            self.counts["host messages read back"] += 1
        return loaded
