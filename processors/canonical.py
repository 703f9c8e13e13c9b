"""Canonical messages from clusters: deterministic ids, revisions, tombstones, and diffs.

Id. `m` + digest of (chat, author compared case-insensitively, cluster key, k), where the key
is the digest of the original content (or, if no host read the original, of the body the
first host read) and k is the cluster's rank among the group's clusters with that key, in
time order. Every input is something all hosts agree on, so an id does not change when
another host's copy joins the message, nor on edits or status changes; it changes only when
the clustering of its group changes (a host bringing the original of a message everybody
else read edited, or an earlier duplicate nobody had seen). `diff_messages` reports such
changes as aliases (old id -> new id) so that links keep working.

Revisions. Every body any host read is one revision: the original (EDITED_TIMESTAMP 0), then
each edit (body, editor, edit time corrected to UTC), ordered by edit time. Copies of one
edit from several hosts (same normalised text and editor, times within the tolerance) are one
revision, whatever format each copy's body was written in; its body is a Skype-XML copy if
there is one (it keeps the formatting, links and kinds a Desktop API BODY has lost), else the
first host's. A deletion is an edit to an empty body: the message keeps its id and becomes a
tombstone, and the bodies before it stay in its revisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from chatchannels.processors.content import normalise_content, normalise_handle, stable_digest
from chatchannels.processors.matching import DEFAULT_TOLERANCE_S, MEMO_SLOTS, Cluster, LatestMemo
from chatchannels.processors.richtext import TEXT

ORIGINAL, EDIT, DELETE, UNDATED = "original", "edit", "delete", "undated"


@dataclass(frozen=True)
class ObservationRef:
    """One host's copy: its local id, Skype's raw TIMESTAMP (host clock) and the UTC time."""

    host: str
    local_id: str
    local_timestamp: int
    utc: float
    skew_s: float
    tz_offset_s: int
    status: str | None


@dataclass(frozen=True)
class Revision:
    """One body the message had. `kind` is original, edit, delete, or undated (a body read
    without EDITED_TIMESTAMP, so neither original nor datable)."""

    n: int
    kind: str
    body: str
    edited_by: str | None
    edited_utc: float | None
    hosts: tuple[str, ...]
    body_format: str = "text"


@dataclass(frozen=True)
class CanonicalMessage:
    id: str
    chat: str
    author: str
    author_name: str | None
    utc: float
    type: str | None
    users: tuple[str, ...]
    body: str
    state: str  # original | edited | deleted | unknown (no body read yet)
    revisions: tuple[Revision, ...]
    observations: tuple[ObservationRef, ...]
    body_format: str = "text"

    @property
    def deleted(self) -> bool:
        return self.state == "deleted"

    @property
    def last_edit(self) -> Revision | None:
        """The latest dated edit or deletion (its editor and UTC time), None if never edited."""
        edits = [r for r in self.revisions if r.kind in (EDIT, DELETE)]
        return edits[-1] if edits else None


@dataclass(frozen=True)
class GroupChange:
    """What to write after recomputing messages: new or changed rows, ids gone, and for each
    id gone the id that now holds most of its observations."""

    upserted: tuple[CanonicalMessage, ...]
    removed: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]


def build_messages(
    clusters: Iterable[Cluster], tolerance_s: float = DEFAULT_TOLERANCE_S
) -> list[CanonicalMessage]:
    # Within one (chat, author, key) slot this is rank_order, so the ranks follow it.
    ordered = sorted(
        clusters, key=lambda c: (c.chat, c.author_key, c.utc_us, c.key, c.members[0].key)
    )
    ranks: dict[tuple[str, str, str], int] = {}
    messages = []
    for cluster in ordered:
        slot = (cluster.chat, cluster.author_key, cluster.key)
        rank = ranks.get(slot, 0)
        ranks[slot] = rank + 1
        message_id = canonical_id(*slot, rank)
        messages.append(
            _BUILT.get(
                (message_id, tolerance_s),
                cluster,
                lambda i=message_id, c=cluster: build_message(i, c, tolerance_s),
            )
        )
    return messages


def rank_order(cluster: Cluster) -> tuple[int, tuple[str, str]]:
    """The order of a group's clusters with one key, which their ranks (ids) follow."""
    return (cluster.utc_us, cluster.members[0].key)


@lru_cache(maxsize=MEMO_SLOTS)
def canonical_id(chat: str, author_key: str, key: str, rank: int) -> str:
    return "m" + stable_digest("message", chat, author_key, key, str(rank))


# Memoised per message id: recomputing a group rebuilds every cluster, most of them unchanged.
_BUILT: LatestMemo[CanonicalMessage] = LatestMemo(MEMO_SLOTS)


def build_message(message_id: str, cluster: Cluster, tolerance_s: float) -> CanonicalMessage:
    first = cluster.members[0]
    revisions = _revisions(cluster, tolerance_s)
    latest = revisions[-1] if revisions else None
    body_format = TEXT
    if latest is None:
        state, body = "unknown", ""
    elif latest.kind == DELETE:
        state, body = "deleted", ""
    else:
        edited = any(r.kind in (EDIT, DELETE) for r in revisions)
        state, body = ("edited" if edited else "original"), latest.body
        body_format = latest.body_format
    return CanonicalMessage(
        id=message_id,
        chat=cluster.chat,
        author=first.author or "",
        author_name=next((m.author_name for m in cluster.members if m.author_name), None),
        utc=cluster.utc_us / 1_000_000,
        type=next((m.type for m in cluster.members if m.type), None),
        users=first.users,
        body=body,
        state=state,
        revisions=revisions,
        observations=tuple(
            ObservationRef(
                host=m.host,
                local_id=m.local_id,
                local_timestamp=m.timestamp or 0,
                utc=m.corrected_utc or 0.0,
                skew_s=m.skew_s or 0.0,
                tz_offset_s=m.tz_offset_s or 0,
                status=m.status,
            )
            for m in cluster.members
        ),
        body_format=body_format,
    )


@dataclass
class _RevisionDraft:
    kind: str
    body: str
    norm: str
    editor: str | None
    edited_utc: float | None
    hosts: set[str]
    body_format: str


def _revisions(cluster: Cluster, tolerance_s: float) -> tuple[Revision, ...]:
    sightings = sorted(
        (
            (s.edited_utc if s.edited_utc is not None else float("-inf"), m.host, i, s)
            for m in cluster.members
            for i, s in enumerate(m.sightings)
        ),
        key=lambda t: t[:3],
    )
    drafts: list[_RevisionDraft] = []
    for edited_utc, host, _i, s in sightings:
        norm = normalise_content(s.body, s.body_format)
        editor = normalise_handle(s.edited_by) if s.edited_by else None
        if s.is_original:
            kind, when = ORIGINAL, None
        elif s.edited_timestamp is None:
            kind, when = UNDATED, None
        else:
            kind, when = (EDIT if norm else DELETE), edited_utc
        same = next(
            (d for d in drafts if _same_revision(d, kind, norm, editor, when, tolerance_s)), None
        )
        if same is None:
            drafts.append(
                _RevisionDraft(kind, s.body, norm, s.edited_by, when, {host}, s.body_format)
            )
        else:
            same.hosts.add(host)
            if same.body_format == TEXT and s.body_format != TEXT:
                same.body, same.body_format = s.body, s.body_format
    # An undated body equal to a dated one is that one read without EDITED_TIMESTAMP.
    dated = {d.norm for d in drafts if d.kind != UNDATED}
    drafts = [d for d in drafts if d.kind != UNDATED or d.norm not in dated]
    drafts.sort(key=_revision_order)
    return tuple(
        Revision(n, d.kind, d.body, d.editor, d.edited_utc, tuple(sorted(d.hosts)), d.body_format)
        for n, d in enumerate(drafts)
    )


def _same_revision(
    d: _RevisionDraft, kind: str, norm: str, editor: str | None, when: float | None, tol: float
) -> bool:
    if d.kind != kind or d.norm != norm:
        return False
    if kind != EDIT and kind != DELETE:
        return True
    d_editor = normalise_handle(d.editor) if d.editor else None
    assert when is not None and d.edited_utc is not None
    return d_editor == editor and abs(when - d.edited_utc) <= tol


def _revision_order(d: _RevisionDraft) -> tuple[int, float, str]:
    rank = {ORIGINAL: 0, UNDATED: 1}.get(d.kind, 2)
    return (rank, d.edited_utc if d.edited_utc is not None else 0.0, d.norm)


def diff_messages(old: Sequence[CanonicalMessage], new: Sequence[CanonicalMessage]) -> GroupChange:
    """The writes that turn the stored messages `old` into `new` (both of the same groups)."""
    old_by_id = {m.id: m for m in old}
    new_ids = {m.id for m in new}
    upserted = tuple(m for m in new if old_by_id.get(m.id) != m)
    removed = tuple(sorted(i for i in old_by_id if i not in new_ids))
    holder = {(o.host, o.local_id): m.id for m in new for o in m.observations}
    aliases = []
    for old_id in removed:
        counts: dict[str, int] = {}
        for o in old_by_id[old_id].observations:
            target = holder.get((o.host, o.local_id))
            if target is not None:
                counts[target] = counts.get(target, 0) + 1
        if counts:
            aliases.append((old_id, min(counts, key=lambda t: (-counts[t], t))))
    return GroupChange(upserted, removed, tuple(aliases))
