"""Clocks of imported files: each file's offset, from the messages it shares with earlier ones.

An imported file (a Skype main.db, an export) is a host of the event log. Its events carry the
importer's clock when it read each record and the broker's append time, and neither says
anything about the clock of the machine that wrote the file, so clocks.py's evidence does not
apply. What does: copies of one message in the main.db files of different accounts or
machines share an id (`MessageObservation.xid`: chat, author, remote_id, type), and their
TIMESTAMPs differ by the difference of the writers' clock errors.

The rule (deterministic, a function of the evidence only):

- Import hosts are the hosts of observations with reason "import". They are ranked by the
  broker time of their first event (the least seen; unknown ranks last), then host id: the
  file imported first comes first.
- Every two copies of one shared id, in hosts a < b (by id), are a pair, kept as the
  difference of their TIMESTAMPs `ts_a - ts_b`; a host holding two rows of one id counts its
  earliest. Pairs more than `SANITY_S` apart (a day) are not the same message's copies by any
  clock error worth correcting and are ignored.
- In rank order, a host's offset is the median, over its pairs with earlier-ranked hosts,
  of (its timestamp - the earlier copy's corrected time), i.e. `ts_h - ts_g + offset_g`, with
  the mean of the two middle values for an even count, rounded half up to the second (Skype
  timestamps are whole seconds). A host without such pairs has offset 0: it sets the time of
  its chain (main.db times are UTC seconds, exports are server UTC). So hosts that share ids
  form chains, the first file of each sets its time, and every later file is corrected to it,
  through intermediate files if it shares ids only with them.
- The offset is the host's clock skew (HostClock with `imported`, `samples` = its pairs with
  earlier hosts), recorded in proc_host_clocks and host_clocks like any host's.

The evidence is a multiset of pairs per two hosts, small however many messages (one value
per distinct difference, mostly one), so every offset is recomputed from all of it whenever a
batch adds copies, in rank order, and a change of one host's offset reaches the later hosts
of its chain at once. Offsets are whole seconds, so clocks.py's rule that the correction in
force moves only by `REFRESH_S` (a second) or more holds by construction; when a host's offset
moves, its messages folded so far are re-corrected (HostClock.is_stale, refresh_host_messages)
and their groups recomputed. In the common case a later file's first batch already finds the
earlier file's copies stored, its offset is right from its first message and nothing is
refreshed.

Order independence. The pairs are a function of the set of copies, the ranks of the set of
(host, broker time) events, and the offsets of both: so after all events the offsets, and the
corrections of all messages (refreshed to them), are the same in every interleaving that
ranks the hosts alike; the store (per batch, with the batch's copies counted before its
messages are folded) and the Engine (per event) reach the same. What depends on the
interleaving is when an offset changed (host_clocks' history) and which messages were
refreshed on the way.

Store. proc_shared_ids holds the copies (a batch reads only its own ids' other copies),
proc_file_pairs the pair counts and proc_file_hosts the ranks and estimates in force; a batch
with import events holds one advisory lock from reading them to its commit, so concurrent
instances never miss each other's copies.

Limits. The first file of a chain is taken as right: if it is the skewed one, its chain takes
its time (all copies still merge, a whole chain off by the same offset). Only main.db rows
carry shared ids; an export or live capture sets no file's offset (exports are server time).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chatchannels.processors.clocks import HostClock
from chatchannels.processors.frozen import evolve

IMPORT_REASON = "import"
SANITY_S = 86_400

# (host a, host b, ts_a - ts_b) with a < b: one pair of copies of one shared id.
Pair = tuple[str, str, int]
# xid -> host -> TIMESTAMP: the copies of shared ids.
Copies = dict[str, dict[str, int]]


@dataclass(frozen=True)
class FileEstimate:
    """A file's offset (its TIMESTAMPs minus true time) and the pairs it rests on."""

    offset_s: int = 0
    samples: int = 0


NO_ESTIMATE = FileEstimate()


def rank_key(host: str, first_broker: float | None) -> tuple[bool, float, str]:
    return (first_broker is None, first_broker or 0.0, host)


def earliest(a: float | None, b: float | None) -> float | None:
    """The earlier of two broker times, either unknown (None)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def merged_copies(stored: Mapping[str, int], new: Mapping[str, int]) -> dict[str, int]:
    """One id's copies after `new`: per host its earliest TIMESTAMP, whatever came first."""
    out = dict(stored)
    for host, ts in new.items():
        out[host] = min(ts, out.get(host, ts))
    return out


def pairs_of(copies: Mapping[str, int]) -> Counter[Pair]:
    out: Counter[Pair] = Counter()
    _count_pairs(copies, out, 1)
    return out


def _count_pairs(copies: Mapping[str, int], counts: dict[Pair, int], sign: int) -> None:
    hosts = sorted(copies)
    for i, a in enumerate(hosts):
        for b in hosts[i + 1 :]:
            diff = copies[a] - copies[b]
            if abs(diff) <= SANITY_S:
                counts[(a, b, diff)] = counts.get((a, b, diff), 0) + sign


def median_rounded(values: Mapping[int, int]) -> int:
    """The median of a multiset of whole seconds (value -> count), rounded half up."""
    ordered = sorted((v, n) for v, n in values.items() if n > 0)
    total = sum(n for _, n in ordered)
    if not total:
        raise ValueError("median of nothing")
    lo_rank, hi_rank = (total - 1) // 2, total // 2
    lo = hi = None
    seen = 0
    for value, n in ordered:
        if lo is None and seen + n > lo_rank:
            lo = value
        if seen + n > hi_rank:
            hi = value
            break
        seen += n
    assert lo is not None and hi is not None
    return math.floor((lo + hi) / 2 + 0.5)


def estimate_offsets(
    first_broker: Mapping[str, float | None], pairs: Mapping[Pair, int]
) -> dict[str, FileEstimate]:
    """Every import host's estimate, from all the pairs (the rule in the module docstring).
    Hosts of `pairs` missing from `first_broker` rank as unknown."""
    partners: dict[str, list[tuple[str, int, int]]] = {h: [] for h in first_broker}
    for (a, b, diff), n in pairs.items():
        if n > 0:
            partners.setdefault(a, []).append((b, diff, n))
            partners.setdefault(b, []).append((a, -diff, n))
    rank = {h: rank_key(h, first_broker.get(h)) for h in partners}
    out: dict[str, FileEstimate] = {}
    for host in sorted(partners, key=rank.__getitem__):
        values: Counter[int] = Counter()
        for partner, diff, n in partners[host]:
            if rank[partner] < rank[host]:
                values[diff + out[partner].offset_s] += n
        samples = sum(values.values())
        out[host] = FileEstimate(median_rounded(values), samples) if samples else NO_ESTIMATE
    return out


@dataclass
class FileUpdate:
    """What a batch of import events changes in the file-clock evidence."""

    # The copies to store (new, or a host's earlier TIMESTAMP for an id it held).
    copies: Copies = field(default_factory=dict)
    # Those of its ids that had no copy stored: none of their rows exists yet.
    new_ids: set[str] = field(default_factory=set)
    # Every import host's first broker time, and estimate, after the batch.
    first_broker: dict[str, float | None] = field(default_factory=dict)
    estimates: dict[str, FileEstimate] = field(default_factory=dict)
    # The pair counts that changed, with their new counts (0: none left).
    pairs: dict[Pair, int] = field(default_factory=dict)
    # The hosts whose estimate (offset or samples) changed, and those whose first broker
    # time did: the rows to write.
    changed: set[str] = field(default_factory=set)
    ranked: set[str] = field(default_factory=set)


def update_files(
    first_broker: Mapping[str, float | None],
    estimates: Mapping[str, FileEstimate],
    pairs: Mapping[Pair, int],
    stored_copies: Mapping[str, Mapping[str, int]],
    batch_first_broker: Mapping[str, float | None],
    batch_copies: Mapping[str, Mapping[str, int]],
) -> FileUpdate:
    """The evidence after a batch: `first_broker`, `estimates` and `pairs` as stored (all of
    them), `stored_copies` the stored copies of the ids in `batch_copies` (the batch's, by
    id and host), `batch_first_broker` the batch's import hosts and their least broker time
    in it. All of the batch's copies count before any estimate is made."""
    out = FileUpdate(first_broker=dict(first_broker))
    for host, broker in batch_first_broker.items():
        before = first_broker.get(host)
        after = earliest(before, broker)
        if host not in first_broker or after != before:
            out.first_broker[host] = after
            out.ranked.add(host)
    # Most ids are new and held by one file (the first file's import): no pairs to count.
    delta: dict[Pair, int] = {}
    for xid, new in batch_copies.items():
        before = stored_copies.get(xid)
        if before is None:
            after = out.copies[xid] = dict(new)
            out.new_ids.add(xid)
        else:
            after = merged_copies(before, new)
            if after == before:
                continue
            out.copies[xid] = {h: ts for h, ts in after.items() if before.get(h) != ts}
            if len(before) > 1:
                _count_pairs(before, delta, -1)
        if len(after) > 1:
            _count_pairs(after, delta, 1)
    counts = dict(pairs)
    for pair, n in delta.items():
        if n:
            counts[pair] = counts.get(pair, 0) + n
            out.pairs[pair] = counts[pair]
    if not out.pairs and not out.ranked:
        # Nothing the estimates depend on changed (a re-imported file's events).
        out.estimates = dict(estimates)
        return out
    out.estimates = estimate_offsets(out.first_broker, counts)
    out.changed = {h for h, e in out.estimates.items() if h not in estimates or estimates[h] != e}
    return out


def file_clock(stored: HostClock | None, host: str, estimate: FileEstimate) -> HostClock:
    """The host's clock with `estimate` in force (its position, last_seq, kept)."""
    return HostClock(
        host,
        last_seq=stored.last_seq if stored is not None else 0,
        skew_s=float(estimate.offset_s),
        samples=estimate.samples,
        imported=True,
    )


def advance(clock: HostClock, seq: int) -> HostClock:
    """An import host's clock after its event `seq`: only its position moves."""
    return clock if seq <= clock.last_seq else evolve(clock, last_seq=seq)


def import_clocks(
    hosts: Iterable[str], estimates: Mapping[str, FileEstimate], clocks: Mapping[str, HostClock]
) -> dict[str, HostClock]:
    """The clocks of these import hosts with their estimates in force."""
    return {h: file_clock(clocks.get(h), h, estimates.get(h, NO_ESTIMATE)) for h in hosts}
