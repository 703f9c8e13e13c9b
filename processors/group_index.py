"""One group's clustering kept between batches, so that a change costs its own time segment.

`engine.recompute_group` derives a group's canonical messages from all its host messages:
split into time segments, cluster each, rank each key's clusters in time order for their ids,
build the messages. Done per batch, that is work in proportion to the whole group, which
grows for as long as its author keeps writing in its chat: a replay slowed batch by batch.

`GroupIndex` keeps the segments, their clusters and each key's ranked messages. `update`
with the host messages a batch changed gives the messages and the writes `recompute_group`
gives for the new set (tests/unit/processors/test_group_index.py holds it to that), redoing
only:
- the segments that hold or lie within the tolerance of a changed message's old or new time
  (any other segment keeps its members and its gaps to its neighbours, so it is still one
  segment of the new split; matching.py's "Segments");
- for every key of a cluster gone or made there, the ranks of that key's clusters, and the
  messages whose cluster or rank changed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chatchannels.processors.canonical import (
    CanonicalMessage,
    GroupChange,
    build_message,
    canonical_id,
    diff_messages,
    rank_order,
)
from chatchannels.processors.matching import (
    Cluster,
    cluster_segment,
    corrected_us,
    split_segments,
)
from chatchannels.processors.observations import HostMessage

MessageKey = tuple[str, str]


@dataclass(frozen=True)
class _Segment:
    members: tuple[HostMessage, ...]  # time order
    clusters: tuple[Cluster, ...]
    start_us: int
    end_us: int


class GroupIndex:
    """The canonical messages of one group (chat, author key) and how they were made."""

    def __init__(self, chat: str, author_key: str, tolerance_s: float) -> None:
        self.chat, self.author_key = chat, author_key
        self.tolerance_s = tolerance_s
        self.tol_us = round(tolerance_s * 1_000_000)
        self.members: dict[MessageKey, HostMessage] = {}
        self.messages: dict[str, CanonicalMessage] = {}
        self._segments: list[_Segment] = []
        self._starts: list[int] = []
        # Per key, its clusters in rank order with their messages.
        self._ranked: dict[str, list[tuple[Cluster, CanonicalMessage]]] = {}

    @classmethod
    def of(
        cls,
        chat: str,
        author_key: str,
        tolerance_s: float,
        members: Mapping[MessageKey, HostMessage],
    ) -> GroupIndex:
        """The index of a group's host messages: its messages are the ones the store holds
        for those host messages, since they are a function of the set (matching.py)."""
        index = cls(chat, author_key, tolerance_s)
        index.update(members)
        return index

    def update(
        self, changed: Mapping[MessageKey, HostMessage]
    ) -> tuple[GroupChange, dict[str, CanonicalMessage]]:
        """Take the group's new or changed (complete) host messages. Returns the writes from
        the messages before to the messages now, and the messages before that they replace
        or remove (by id)."""
        fresh = {k: m for k, m in changed.items() if self.members.get(k) != m}
        points = [corrected_us(m) for m in fresh.values()]
        points += [corrected_us(self.members[k]) for k in fresh if k in self.members]
        hit = self._segments_near(points)
        self.members.update(fresh)
        loose = [m for i in hit for m in self._segments[i].members if m.key not in fresh]
        loose += fresh.values()
        made = [self._segment(members) for members in split_segments(loose, self.tol_us)]
        gone = [c for i in hit for c in self._segments[i].clusters]
        kept = [s for i, s in enumerate(self._segments) if i not in hit]
        self._segments = sorted(kept + made, key=lambda s: s.start_us)
        self._starts = [s.start_us for s in self._segments]
        return self._rerank(gone, [c for s in made for c in s.clusters])

    def _segments_near(self, points: Iterable[int]) -> set[int]:
        """Indexes of the segments within the tolerance of any of the times."""
        hit: set[int] = set()
        for p in points:
            i = bisect_right(self._starts, p + self.tol_us)
            while i and self._segments[i - 1].end_us >= p - self.tol_us:
                hit.add(i - 1)
                i -= 1
        return hit

    def _segment(self, members: tuple[HostMessage, ...]) -> _Segment:
        clusters = cluster_segment(self.chat, self.author_key, list(members), self.tol_us)
        return _Segment(
            members, tuple(clusters), corrected_us(members[0]), corrected_us(members[-1])
        )

    def _rerank(
        self, gone: list[Cluster], made: list[Cluster]
    ) -> tuple[GroupChange, dict[str, CanonicalMessage]]:
        gone_ids = {id(c) for c in gone}
        added: dict[str, list[Cluster]] = {}
        for cluster in made:
            added.setdefault(cluster.key, []).append(cluster)
        before: dict[str, CanonicalMessage] = {}
        after: list[CanonicalMessage] = []
        for key in sorted({c.key for c in gone} | set(added)):
            old = self._ranked.pop(key, [])
            clusters = [c for c, _ in old if id(c) not in gone_ids] + added.get(key, [])
            clusters.sort(key=rank_order)
            ranked = []
            for rank, cluster in enumerate(clusters):
                if rank < len(old) and old[rank][0] == cluster:
                    message = old[rank][1]
                else:
                    message_id = canonical_id(self.chat, self.author_key, key, rank)
                    message = build_message(message_id, cluster, self.tolerance_s)
                ranked.append((cluster, message))
            if ranked:
                self._ranked[key] = ranked
            before.update((m.id, m) for _, m in old)
            after.extend(m for _, m in ranked)
        for message_id in before:
            del self.messages[message_id]
        self.messages.update((m.id, m) for m in after)
        return diff_messages(list(before.values()), after), before
