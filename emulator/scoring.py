"""Score a canonical archive against a scenario's ground truth. Pure: values in, a report out.

A truth message is found in the archive by what every copy agrees on: chat, author, type and
original body; among equal ones, in posting order (the same text posted twice is two
messages, and the archive must keep both). Then its state is compared: final body or
tombstone, the edits it went through, the hosts it was seen on, and its corrected time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatchannels.emulator.truth import TruthMessage
from chatchannels.processors.replay.archive import ArchivedMessage
from chatchannels.processors.richtext import TEXT, as_skype_xml


def _stored(body: str) -> str:
    """A truth body (Desktop API text) as the archive's body_markup holds it: Skype XML."""
    return as_skype_xml(body, TEXT)


@dataclass
class Score:
    expected: int = 0
    archived: int = 0
    matched: int = 0
    merged_across_hosts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def perfect(self) -> bool:
        return not self.problems and self.matched == self.expected == self.archived


def _original(message: ArchivedMessage) -> str:
    originals = [r for r in message.revisions if r.edited_utc is None and not r.deleted]
    return originals[0].body_markup if originals else message.body_markup


def _key(chat: str, author: str, type_: str, body: str) -> tuple[str, str, str, str]:
    return (chat, author.lower(), type_ or "SAID", body)


def score_archive(
    truth: Iterable[TruthMessage],
    archive: Iterable[ArchivedMessage],
    observed_by: Iterable[str],
    time_tolerance_s: float = 5.0,
) -> Score:
    """Compare; `observed_by` are the hosts that captured (a truth message no capturing host
    held cannot be in the archive, and is not expected)."""
    capturing = set(observed_by)
    score = Score()
    wanted: dict[tuple, list[TruthMessage]] = defaultdict(list)
    for t in truth:
        if capturing & set(t.hosts):
            wanted[_key(t.chat, t.author, t.type, _stored(t.body))].append(t)
            score.expected += 1
    have: dict[tuple, list[ArchivedMessage]] = defaultdict(list)
    for m in archive:
        have[_key(m.chat, m.author, m.type, _original(m))].append(m)
        score.archived += 1

    for key in sorted(set(wanted) | set(have), key=repr):
        truths = sorted(wanted.get(key, []), key=lambda t: t.posted_at)
        found = sorted(have.get(key, []), key=lambda m: (m.posted_utc, m.id))
        if len(truths) != len(found):
            score.problems.append(
                f"{key[0]} {key[1]} {key[3][:40]!r}: {len(truths)} expected, {len(found)} archived"
            )
        for t, m in zip(truths, found, strict=False):
            score.matched += 1
            _compare(t, m, capturing, time_tolerance_s, score)
    return score


def _compare(
    t: TruthMessage, m: ArchivedMessage, capturing: set[str], tolerance: float, score: Score
) -> None:
    where = f"{t.msg} ({t.chat} {t.author})"
    if abs(m.posted_utc - t.posted_at) > tolerance:
        score.problems.append(
            f"{where}: posted at {m.posted_utc:.0f}, truth {t.posted_at:.0f} "
            f"(off by {m.posted_utc - t.posted_at:+.1f} s)"
        )
    if m.deleted != t.deleted:
        score.problems.append(f"{where}: deleted={m.deleted}, truth {t.deleted}")
    elif not t.deleted and m.body_markup != _stored(t.final_body):
        score.problems.append(
            f"{where}: body {m.body_markup[:40]!r}, truth {_stored(t.final_body)[:40]!r}"
        )
    if len(m.revisions) != 1 + len(t.revisions):
        score.problems.append(
            f"{where}: {len(m.revisions)} revisions, truth {1 + len(t.revisions)}"
        )
    expected_hosts = tuple(sorted(capturing & set(t.hosts)))
    if m.hosts != expected_hosts:
        score.problems.append(f"{where}: seen on {m.hosts}, truth {expected_hosts}")
    if len(m.hosts) > 1:
        score.merged_across_hosts += 1
