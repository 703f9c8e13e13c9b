"""Is the archive complete? Sequence runs per (host, session), their gaps, and silent hosts.

Every host numbers its events 1, 2, 3, ... without a gap, across its agent's (or importer's)
sessions (schemas/raw-event.v1.json). The processor records which numbers reached the log
as runs: maximal ranges of consecutive numbers of one (host, session), with the broker times
of their first and last records. A number missing between a host's runs is an event lost
between its spool and the log, which must never happen. Runs are a function of the set of
records consumed, whatever their batching or order, so a replay rebuilds the same ones.

Records that do not decode still count: they are in the log (as dead letters). Only a
record without a readable host, session and seq counts for nothing here. A record's
position is read in the decoder's own parse of it (batch.decode_value), in the worker
processes, so counting costs the processor's loop no second parse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, NamedTuple

# Sources whose hosts are live agents: only they are expected to keep talking. An imported
# file is a host of its own that goes quiet once it is read.
LIVE_SOURCES = frozenset({"skype-api"})


class Position(NamedTuple):
    """Where a record stands in its host's series (a tuple: one is made per record)."""

    host: str
    session: str
    seq: int
    source: str


@dataclass(frozen=True)
class Run:
    """Consecutive seqs `first_seq`..`last_seq` of one (host, session) that reached the log,
    appended between `first_utc` and `last_utc` (broker time; None when unknown)."""

    host: str
    session: str
    first_seq: int
    last_seq: int
    first_utc: float | None
    last_utc: float | None
    source: str


@dataclass(frozen=True)
class Gap:
    """Seqs `first_seq`..`last_seq` of `host` never reached the log. `after_session` holds
    the seq before the gap (None: the gap starts at 1), `before_session` the seq after it."""

    host: str
    first_seq: int
    last_seq: int
    after_session: str | None
    before_session: str

    @property
    def missing(self) -> int:
        return self.last_seq - self.first_seq + 1

    def __str__(self) -> str:
        where = (
            f"session {self.before_session}"
            if self.after_session in (None, self.before_session)
            else f"between session {self.after_session} and session {self.before_session}"
        )
        span = (
            f"seq {self.first_seq}"
            if self.first_seq == self.last_seq
            else f"seq {self.first_seq}-{self.last_seq}"
        )
        return (
            f"host {self.host} {where}: {span} missing"
            f" ({self.missing} event{'s' if self.missing != 1 else ''} lost between a spool"
            " and the log)"
        )


def event_position(event: Mapping[str, Any]) -> Position | None:
    """A parsed record's host, session, seq and source, if it has them in the right types;
    the rest of it may be invalid (a dead letter still took its place in the series)."""
    host, session, seq = event.get("host"), event.get("session"), event.get("seq")
    source = event.get("source")
    if not (isinstance(host, str) and isinstance(session, str) and isinstance(source, str)):
        return None
    if type(seq) is not int or seq < 1:
        return None
    return Position(host, session, seq, source)


def batch_runs(records: Iterable[tuple[Position | None, float | None]]) -> list[Run]:
    """The runs a batch's records (each its position and broker time) make on their own,
    to be merged with the stored ones; sorted by (host, session, first_seq)."""
    seen: dict[tuple[str, str, str], list[tuple[int, float | None]]] = {}
    for at, broker_utc in records:
        if at is not None:
            seen.setdefault((at.host, at.session, at.source), []).append((at.seq, broker_utc))
    runs: list[Run] = []
    for (host, session, source), found in sorted(seen.items()):
        found.sort(key=lambda f: f[0])
        first, last = found[0][0], found[0][0]
        first_utc = last_utc = found[0][1]
        for seq, at in found[1:]:
            if seq > last + 1:
                runs.append(Run(host, session, first, last, first_utc, last_utc, source))
                first, first_utc, last_utc = seq, at, at
            else:
                first_utc, last_utc = _least(first_utc, at), _greatest(last_utc, at)
            last = max(last, seq)
        runs.append(Run(host, session, first, last, first_utc, last_utc, source))
    return runs


def merge_runs(runs: Iterable[Run]) -> list[Run]:
    """The maximal runs covering `runs` (overlapping or adjacent ones of one (host, session)
    become one), sorted by (host, session, first_seq)."""
    merged: list[Run] = []
    for run in sorted(runs, key=lambda r: (r.host, r.session, r.first_seq, r.last_seq)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and (last.host, last.session) == (run.host, run.session)
            and run.first_seq <= last.last_seq + 1
        ):
            merged[-1] = Run(
                last.host,
                last.session,
                last.first_seq,
                max(last.last_seq, run.last_seq),
                _least(last.first_utc, run.first_utc),
                _greatest(last.last_utc, run.last_utc),
                min(last.source, run.source),
            )
        else:
            merged.append(run)
    return merged


def find_gaps(runs: Iterable[Run]) -> list[Gap]:
    """Every range of seqs no run of its host covers, from 1 to the host's last seq."""
    gaps: list[Gap] = []
    ordered = sorted(runs, key=lambda r: (r.host, r.first_seq, r.last_seq))
    for host, of_host in groupby(ordered, key=lambda r: r.host):
        covered, session = 0, None
        for run in of_host:
            if run.first_seq > covered + 1:
                gaps.append(Gap(host, covered + 1, run.first_seq - 1, session, run.session))
            if run.last_seq > covered:
                covered, session = run.last_seq, run.session
    return gaps


@dataclass(frozen=True)
class Silence:
    host: str
    last_heard_utc: float
    silent_s: float


def silent_hosts(runs: Iterable[Run], now_utc: float, silent_after_s: float) -> list[Silence]:
    """Live hosts whose last record reached the log more than `silent_after_s` before
    `now_utc` (broker time against the caller's clock), longest silent first."""
    heard = last_heard(r for r in runs if r.source in LIVE_SOURCES)
    found = [
        Silence(host, at, now_utc - at)
        for host, at in heard.items()
        if at is not None and now_utc - at > silent_after_s
    ]
    return sorted(found, key=lambda s: (-s.silent_s, s.host))


def last_heard(runs: Iterable[Run]) -> dict[str, float | None]:
    """Each host's latest broker time (None when none of its records had one)."""
    heard: dict[str, float | None] = {}
    for run in runs:
        heard[run.host] = _greatest(heard.get(run.host), run.last_utc)
    return heard


@dataclass(frozen=True)
class SessionSpan:
    """One (host, session) summed up: its seqs, its runs, when it was heard."""

    host: str
    session: str
    source: str
    first_seq: int
    last_seq: int
    runs: int
    first_utc: float | None
    last_utc: float | None


def session_spans(runs: Iterable[Run]) -> list[SessionSpan]:
    """Per (host, session), in order of their first seq within each host."""
    spans = []
    ordered = sorted(runs, key=lambda r: (r.host, r.session))
    for (host, session), group in groupby(ordered, key=lambda r: (r.host, r.session)):
        of_session = list(group)
        first_utc: float | None = None
        last_utc: float | None = None
        for r in of_session:
            first_utc, last_utc = _least(first_utc, r.first_utc), _greatest(last_utc, r.last_utc)
        spans.append(
            SessionSpan(
                host,
                session,
                min(r.source for r in of_session),
                min(r.first_seq for r in of_session),
                max(r.last_seq for r in of_session),
                len(of_session),
                first_utc,
                last_utc,
            )
        )
    return sorted(spans, key=lambda s: (s.host, s.first_seq, s.session))


@dataclass(frozen=True)
class ChatCapture:
    """`host` captured `messages` messages of `chat`, posted between `first_utc` and
    `last_utc` (corrected time)."""

    chat: str
    host: str
    first_utc: float
    last_utc: float
    messages: int


@dataclass(frozen=True)
class Completeness:
    runs: tuple[Run, ...]
    gaps: tuple[Gap, ...]
    silent: tuple[Silence, ...]
    chats: tuple[ChatCapture, ...]
    checked_utc: float
    silent_after_s: float

    @property
    def complete(self) -> bool:
        return not self.gaps

    def as_json(self) -> dict:
        """Stable keys for `completeness --json` (README.md, "Completeness and status")."""
        spans = session_spans(self.runs)
        heard = last_heard(self.runs)
        silent = {s.host: s for s in self.silent}
        hosts = []
        for host, of_host in groupby(spans, key=lambda s: s.host):
            sessions = list(of_host)
            hosts.append(
                {
                    "host": host,
                    "source": sessions[0].source,
                    "first_seq": min(s.first_seq for s in sessions),
                    "last_seq": max(s.last_seq for s in sessions),
                    "last_heard_utc": heard[host],
                    "silent": host in silent,
                    "sessions": [
                        {
                            "session": s.session,
                            "first_seq": s.first_seq,
                            "last_seq": s.last_seq,
                            "runs": s.runs,
                            "first_heard_utc": s.first_utc,
                            "last_heard_utc": s.last_utc,
                        }
                        for s in sessions
                    ],
                    "gaps": [_gap_json(g) for g in self.gaps if g.host == host],
                }
            )
        chats = []
        for chat, of_chat in groupby(self.chats, key=lambda c: c.chat):
            chats.append(
                {
                    "chat": chat,
                    "hosts": [
                        {
                            "host": c.host,
                            "first_utc": c.first_utc,
                            "last_utc": c.last_utc,
                            "messages": c.messages,
                        }
                        for c in of_chat
                    ],
                }
            )
        return {
            "complete": self.complete,
            "checked_utc": self.checked_utc,
            "silent_after_s": self.silent_after_s,
            "gaps": [_gap_json(g) for g in self.gaps],
            "silent_hosts": [
                {"host": s.host, "last_heard_utc": s.last_heard_utc, "silent_s": s.silent_s}
                for s in self.silent
            ],
            "hosts": hosts,
            "chats": chats,
        }


def assess(
    runs: Sequence[Run],
    chats: Sequence[ChatCapture],
    now_utc: float,
    silent_after_s: float,
) -> Completeness:
    runs = merge_runs(runs)
    return Completeness(
        tuple(runs),
        tuple(find_gaps(runs)),
        tuple(silent_hosts(runs, now_utc, silent_after_s)),
        tuple(sorted(chats, key=lambda c: (c.chat, c.first_utc, c.host))),
        now_utc,
        silent_after_s,
    )


def _gap_json(gap: Gap) -> dict:
    return {
        "host": gap.host,
        "first_seq": gap.first_seq,
        "last_seq": gap.last_seq,
        "missing": gap.missing,
        "after_session": gap.after_session,
        "before_session": gap.before_session,
        "message": str(gap),
    }


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
