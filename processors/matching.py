"""Cross-host matching: which hosts' copies are one message.

Design note
===========

Input: every complete `HostMessage` (chat, author and TIMESTAMP known) of one group, the
group being (chat, author compared case-insensitively). Output: clusters, each at most one
host message per host, each one canonical message. `cluster_messages` is a pure function of
the *set* of host messages: it sorts everything it reads by host id, time and local id and
never looks at arrival order.

Time. A host message's corrected time is its Skype TIMESTAMP minus its host's clock skew
(clocks.py: upper envelope of agent clock minus broker append time, in epochs split at
clock steps), as estimated when that host first read the TIMESTAMP and redone when that
epoch's estimate later rises by a second or more. Both depend only on the host's own prefix
of events, so the corrected time is a function of the host's events.

Phase 1, originals. A body read with EDITED_TIMESTAMP 0 is known to be the original; such a
host message gets a strong key, the digest of (type, normalised original body, USERS).
Copies with different strong keys are never one message. Within one strong key the hosts are
taken in host-id order and each host's messages (sorted by corrected time, then local id) are
aligned to the clusters built so far (sorted by their median time) by an order-preserving
alignment (dynamic programming, like a sequence alignment) that maximises the sum over
matched pairs of (tolerance - |time difference|) and admits only pairs within the tolerance.
Unmatched messages open new clusters. The sum rewards close pairs, so when a host missed one
of two equal posts its single copy goes to the nearer occurrence, not the earlier; order
preservation keeps two equal posts of one host in their order, and one host never appears
twice in a cluster because each host is aligned once.

Phase 2, copies without a known original (first read after an edit, or after deletion: an
empty body with EDITED_TIMESTAMP set). Hosts again in id order, each host's such messages
aligned to all clusters of the group that lack that host, same score but doubled when the
edit evidence agrees (the orphan's current body is one of the bodies the cluster's members
saw, a tombstone meeting a deleted cluster) and admitted only if the edit is not older than
the cluster's posting time minus the tolerance. A cluster whose hosts have not yet seen the
edit still matches, on chat, author and time. Unmatched ones open clusters that later
hosts' orphans can join.

Why order-independent. Host messages fold in host order, which Kafka keeps; the corrected
times depend on host prefixes only; clustering and ids (canonical.py) are functions of the
set of host messages with every tie broken by host id, time and local id. So the state after
all events is the same for every interleaving, and incrementally recomputing a group from
its stored host messages whenever one of them changes reaches that same state. Only the
aliases (ids that existed for a while) depend on the interleaving.

Shared ids. Copies of one message in main.db files share an id (HostMessage.xid: chat,
author, remote_id, type); two copies whose ids differ are never one message, in either phase.
Time and text alone would pair them when each of two files holds a different one of two
equal posts made within the tolerance.

Limits. Progressive alignment is deterministic but not symmetric in hosts: the host-id order
decides close calls among three or more hosts. Phase 2 can pair a copy read only after an
edit with a different message of the same author within the tolerance if the true original
was seen by no other host. Canonical ids can change when a group's clustering changes (see
canonical.py); the store must keep old ids as aliases. A host whose only clock evidence so
far is spooled is corrected too late by the spool delay until its first live event.

Segments. A cluster's median lies among its members' times, and a member joins only within
the tolerance of it, so a cluster never spans a gap of more than the tolerance between two
consecutive corrected times of the group (orphans' and tombstones' included). A group is
therefore clustered segment by segment, a segment being a maximal run of its host messages
(time-sorted) whose consecutive times are at most the tolerance apart: messages of different
segments can never pair. That is the definition, not an optimisation of it (a tie in the
alignment could otherwise be broken across segments). Segments are memoised on their host
messages, so recomputing a group after a change re-clusters only the segments that changed;
a message bridging a gap makes one new segment of two, which is simply a new one to cluster.
Cost: a change re-clusters its segment (the alignment table is quadratic in the number of
equal texts in it) and hashes the rest of its group.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chatchannels.processors.content import MEMO_SLOTS, content_key, normalise_handle
from chatchannels.processors.observations import HostMessage

DEFAULT_TOLERANCE_S = 120.0
_US = 1_000_000
R = TypeVar("R")


class LatestMemo(Generic[R]):
    """A function memoised on the latest input per slot, least recently used slots dropped.

    Unlike an lru_cache keyed on the whole input, an input that changed replaces its slot's
    old one instead of adding an entry, so the memo holds one entry per live slot, and a
    batch that visits more slots than fit does not wipe out the entries it needs next (an
    LRU cache visited cyclically by more keys than it holds misses every time). Inputs are
    compared with ==, which for the same objects is an identity check per element."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.entries: OrderedDict[Hashable, tuple[Any, R]] = OrderedDict()

    def get(self, slot: Hashable, value: Any, compute: Callable[[], R]) -> R:
        entry = self.entries.get(slot)
        if entry is not None and entry[0] == value:
            self.entries.move_to_end(slot)
            return entry[1]
        result = compute()
        self.entries[slot] = (value, result)
        self.entries.move_to_end(slot)
        if len(self.entries) > self.slots:
            self.entries.popitem(last=False)
        return result


@dataclass(frozen=True)
class Cluster:
    """Host messages judged to be one message; `members` sorted by host id."""

    chat: str
    author_key: str
    members: tuple[HostMessage, ...]
    key: str
    utc_us: int


# A chat and its author's normalised handle: only the host messages of one group are matched
# with each other, and a group is what the processor locks and recomputes.
GroupKey = tuple[str, str]


def group_key(message: HostMessage) -> GroupKey:
    assert message.chat is not None and message.author is not None
    return (message.chat, normalise_handle(message.author))


def corrected_us(message: HostMessage) -> int:
    utc = message.corrected_utc
    assert utc is not None
    return round(utc * _US)


def strong_key(message: HostMessage) -> str | None:
    original = message.original
    if original is None:
        return None
    return content_key(message.type, original.body, message.users, original.body_format)


def current_key(message: HostMessage) -> str:
    current = message.current
    if current is None:
        return content_key(message.type, "", message.users)
    return content_key(message.type, current.body, message.users, current.body_format)


def cluster_messages(
    messages: Iterable[HostMessage], tolerance_s: float = DEFAULT_TOLERANCE_S
) -> list[Cluster]:
    """Cluster complete host messages of any groups; sorted by (chat, author, time, key)."""
    groups: dict[tuple[str, str], list[HostMessage]] = {}
    for message in messages:
        if message.is_complete:
            groups.setdefault(group_key(message), []).append(message)
    tol_us = round(tolerance_s * _US)
    clusters: list[Cluster] = []
    for (chat, author_key), members in sorted(groups.items()):
        for segment in split_segments(members, tol_us):
            clusters.extend(
                _SEGMENTS.get(
                    (segment[0].key, tol_us),
                    segment,
                    lambda c=chat, a=author_key, s=segment: tuple(
                        cluster_segment(c, a, list(s), tol_us)
                    ),
                )
            )
    return sorted(clusters, key=lambda c: (c.chat, c.author_key, c.utc_us, c.key))


def split_segments(messages: Iterable[HostMessage], tol_us: int) -> list[tuple[HostMessage, ...]]:
    """Complete host messages sorted by (corrected time, host, local id), cut wherever two
    consecutive times are more than `tol_us` apart: no cluster can span such a gap."""
    timed = sorted(((corrected_us(m), m.key), m) for m in messages)
    segments: list[tuple[HostMessage, ...]] = []
    start = 0
    for i in range(1, len(timed) + 1):
        if i == len(timed) or timed[i][0][0] - timed[i - 1][0][0] > tol_us:
            segments.append(tuple(m for _, m in timed[start:i]))
            start = i
    return segments


# A slot per segment, named by its first message: a change elsewhere in the group finds it.
_SEGMENTS: LatestMemo[tuple[Cluster, ...]] = LatestMemo(MEMO_SLOTS)


class _Draft:
    """A cluster being built; mutable only inside this module."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.members: list[HostMessage] = []
        self.utc_us = 0

    @classmethod
    def restore(cls, key: str, members: tuple[HostMessage, ...], utc_us: int) -> _Draft:
        draft = cls(key)
        draft.members, draft.utc_us = list(members), utc_us
        return draft

    def add(self, message: HostMessage) -> None:
        self.members.append(message)
        self.utc_us = _median([corrected_us(m) for m in self.members])

    @property
    def hosts(self) -> set[str]:
        return {m.host for m in self.members}

    def refuses(self, message: HostMessage) -> bool:
        """Whether the message's shared id says it is another message than this one's."""
        return message.xid is not None and any(
            m.xid is not None and m.xid != message.xid for m in self.members
        )

    def body_keys(self) -> set[str]:
        return {
            content_key(m.type, s.body, m.users, s.body_format)
            for m in self.members
            for s in m.sightings
        }

    def sort_key(self) -> tuple[int, tuple[str, str]]:
        return (self.utc_us, min(m.key for m in self.members))


def _median(times: list[int]) -> int:
    times = sorted(times)
    middle = len(times) // 2
    return times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) // 2


def _by_host(messages: Iterable[HostMessage]) -> list[tuple[str, list[HostMessage]]]:
    hosts: dict[str, list[HostMessage]] = {}
    for message in messages:
        hosts.setdefault(message.host, []).append(message)
    return [
        (host, sorted(ms, key=lambda m: (corrected_us(m), m.local_order)))
        for host, ms in sorted(hosts.items())
    ]


def cluster_segment(
    chat: str, author_key: str, messages: list[HostMessage], tol_us: int
) -> list[Cluster]:
    host = messages[0].host
    if all(m.host == host for m in messages):
        return _one_host_clusters(chat, author_key, messages)
    return _aligned_segment(chat, author_key, messages, tol_us)


def _one_host_clusters(chat: str, author_key: str, messages: list[HostMessage]) -> list[Cluster]:
    """`_aligned_segment` of one host's messages (an imported file's segments are all such),
    without the alignment: a host never pairs with itself, so its copies of one text open a
    cluster each, and its orphans find no cluster that lacks it. Each message is a cluster of
    its own, listed in the order the alignment leaves them: by strong key, then time and
    local id; if there are orphans, all of those by (time, key), then the orphans by time and
    local id."""
    strong: list[tuple[str, int, tuple[int, int | str], HostMessage]] = []
    orphans: list[tuple[int, tuple[int, int | str], HostMessage]] = []
    for message in messages:
        key = strong_key(message)
        if key is None:
            orphans.append((corrected_us(message), message.local_order, message))
        else:
            strong.append((key, corrected_us(message), message.local_order, message))
    strong.sort(key=lambda s: s[:3])
    singles = [(key, t, m) for key, t, _, m in strong]
    if orphans:
        singles.sort(key=lambda s: (s[1], s[2].key))
        orphans.sort(key=lambda o: o[:2])
        singles += [(current_key(m), t, m) for t, _, m in orphans]
    return [Cluster(chat, author_key, (m,), key, t) for key, t, m in singles]


def _aligned_segment(
    chat: str, author_key: str, messages: list[HostMessage], tol_us: int
) -> list[Cluster]:
    by_strong: dict[str, list[HostMessage]] = {}
    orphans: list[HostMessage] = []
    for message in messages:
        key = strong_key(message)
        if key is None:
            orphans.append(message)
        else:
            by_strong.setdefault(key, []).append(message)

    drafts = [
        _Draft.restore(key, members, utc_us)
        for key, same in sorted(by_strong.items())
        for members, utc_us in _STRONG.get(
            (key, same[0].key, tol_us),
            same,
            lambda key=key, same=same: _strong_clusters(key, same, tol_us),
        )
    ]

    for host, own in _by_host(orphans):
        drafts.sort(key=_Draft.sort_key)
        candidates = [d for d in drafts if host not in d.hosts]
        times = [d.utc_us for d in candidates]
        # A cluster's bodies are read only when a copy lies within the tolerance of it.
        evidence: dict[int, set[str]] = {}

        def weight(
            i: int, j: int, _t: int, own=own, evidence=evidence, times=times, found=candidates
        ) -> int:
            if found[i].refuses(own[j]):
                return 0
            if i not in evidence:
                evidence[i] = found[i].body_keys()
            return _edit_evidence(own[j], evidence[i], times[i], tol_us)

        pairs = align(times, [corrected_us(m) for m in own], weight, tol_us)
        drafts.extend(_attach(candidates, own, pairs, lambda m: _Draft(current_key(m))))

    return [
        Cluster(
            chat=chat,
            author_key=author_key,
            members=tuple(sorted(d.members, key=lambda m: m.key)),
            key=d.key,
            utc_us=d.utc_us,
        )
        for d in drafts
    ]


def _strong_clusters(
    key: str, same: list[HostMessage], tol_us: int
) -> tuple[tuple[tuple[HostMessage, ...], int], ...]:
    """Phase 1 for one strong key: (members, median time) of its clusters. It reads only the
    messages with that key, so it is memoised apart (_STRONG, a slot per strong key and
    segment, named by its first message): most keys of a segment are unchanged."""
    times = [corrected_us(m) for m in same]
    one_id = len({m.xid for m in same if m.xid is not None}) <= 1
    if one_id and len({m.host for m in same}) == len(same) and max(times) - min(times) <= tol_us:
        # The common case, a copy per host all within the tolerance of each other: each
        # host's copy is within the tolerance of the cluster's median, which lies among
        # them, so the alignment below would pair every one with the first host's cluster.
        return ((tuple(sorted(same, key=lambda m: m.host)), _median(times)),)
    return _aligned_clusters(key, same, tol_us)


def _aligned_clusters(
    key: str, same: list[HostMessage], tol_us: int
) -> tuple[tuple[tuple[HostMessage, ...], int], ...]:
    keyed: list[_Draft] = []
    for _host, own in _by_host(same):
        keyed.sort(key=_Draft.sort_key)
        pairs = align(
            [d.utc_us for d in keyed],
            [corrected_us(m) for m in own],
            lambda i, j, _t, keyed=keyed, own=own: 0 if keyed[i].refuses(own[j]) else 1,
            tol_us,
        )
        keyed.extend(_attach(keyed, own, pairs, lambda _m: _Draft(key)))
    return tuple((tuple(d.members), d.utc_us) for d in keyed)


_STRONG: LatestMemo[tuple[tuple[tuple[HostMessage, ...], int], ...]] = LatestMemo(MEMO_SLOTS)


def _edit_evidence(orphan: HostMessage, body_keys: set[str], cluster_us: int, tol_us: int) -> int:
    """Score weight of an orphan against a cluster: 2 agreeing, 1 neutral, 0 impossible."""
    current = orphan.current
    edited = current.edited_utc if current else None
    if edited is not None and round(edited * _US) < cluster_us - tol_us:
        return 0
    return 2 if current_key(orphan) in body_keys else 1


def _attach(
    drafts: list[_Draft],
    own: Sequence[HostMessage],
    pairs: list[tuple[int, int]],
    new_draft: Callable[[HostMessage], _Draft],
) -> list[_Draft]:
    """Add matched messages to their drafts; return new drafts for the unmatched ones."""
    matched = {j: i for i, j in pairs}
    opened: list[_Draft] = []
    for j, message in enumerate(own):
        if j in matched:
            drafts[matched[j]].add(message)
        else:
            draft = new_draft(message)
            draft.add(message)
            opened.append(draft)
    return opened


def align(
    xs: Sequence[int],
    ys: Sequence[int],
    weight: Callable[[int, int, int], int],
    tol_us: int,
) -> list[tuple[int, int]]:
    """Order-preserving pairs (i, j) of two time-sorted sequences with the highest total of
    weight * (tol_us - |xs[i] - ys[j]| + 1) over pairs within the tolerance.

    `weight(i, j, dt)` of 0 forbids a pair. Ties prefer a match, then skipping an x, so the
    result is a function of the inputs alone.
    """
    if not xs or not ys:
        return []
    # An x more than the tolerance before the first y or after the last is never paired, and
    # leaving it out changes no other choice: its row of the table adds nothing, and the
    # walk back passes it by skipping it. A group's segment is long, a host's copies few.
    lo, hi = bisect_left(xs, ys[0] - tol_us), bisect_right(xs, ys[-1] + tol_us)
    if not lo and hi == len(xs):
        return align_all(xs, ys, weight, tol_us)
    inner = align_all(xs[lo:hi], ys, lambda i, j, dt: weight(i + lo, j, dt), tol_us)
    return [(i + lo, j) for i, j in inner]


def align_all(
    xs: Sequence[int],
    ys: Sequence[int],
    weight: Callable[[int, int, int], int],
    tol_us: int,
) -> list[tuple[int, int]]:
    """`align`'s table over every x."""
    n, m = len(xs), len(ys)
    if not n or not m:
        return []
    score = [[0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 0 match, 1 skip x, 2 skip y
    for i in range(1, n + 1):
        row, prev = score[i], score[i - 1]
        for j in range(1, m + 1):
            best, choice = prev[j], 1
            if row[j - 1] > best:
                best, choice = row[j - 1], 2
            dt = abs(xs[i - 1] - ys[j - 1])
            if dt <= tol_us:
                w = weight(i - 1, j - 1, dt)
                if w and prev[j - 1] + w * (tol_us - dt + 1) >= best:
                    best, choice = prev[j - 1] + w * (tol_us - dt + 1), 0
            row[j], move[i][j] = best, choice
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i and j:
        choice = move[i][j]
        if choice == 0:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif choice == 1:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs
