"""Name what differs between two archives, each read in canonical order (archive.py).

A replay's check compares digests; when they differ, this says where: messages only one side
has, and for a message both have, which fields differ and how. Pure: archives in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from chatchannels.processors.replay.archive import ArchivedMessage

# Long bodies are cut in the report; the stores keep them whole for inspection.
_SHOWN = 80


@dataclass(frozen=True)
class ArchiveDifference:
    message_id: str
    posted_utc: float
    what: str

    def __str__(self) -> str:
        return f"message {self.message_id} (posted {self.posted_utc}): {self.what}"


def diff_archives(
    left: Iterable[ArchivedMessage],
    right: Iterable[ArchivedMessage],
    *,
    names: tuple[str, str] = ("live", "replay"),
    limit: int = 10,
) -> list[ArchiveDifference]:
    """The first `limit` differences, in canonical order. Both inputs must be ordered by
    (posted_utc, id), as `read_archive` yields them; a merge walks them once."""
    found: list[ArchiveDifference] = []
    a_iter, b_iter = iter(left), iter(right)
    a, b = next(a_iter, None), next(b_iter, None)
    while (a is not None or b is not None) and len(found) < limit:
        if b is None or (a is not None and _key(a) < _key(b)):
            found.append(ArchiveDifference(a.id, a.posted_utc, f"only in {names[0]}"))
            a = next(a_iter, None)
        elif a is None or _key(b) < _key(a):
            found.append(ArchiveDifference(b.id, b.posted_utc, f"only in {names[1]}"))
            b = next(b_iter, None)
        else:
            fields = list(_field_differences(a, b, names))
            if fields:
                found.append(ArchiveDifference(a.id, a.posted_utc, "; ".join(fields)))
            a, b = next(a_iter, None), next(b_iter, None)
    return found


def _key(message: ArchivedMessage) -> tuple[float, str]:
    return (message.posted_utc, message.id)


def _field_differences(
    a: ArchivedMessage, b: ArchivedMessage, names: tuple[str, str]
) -> Iterator[str]:
    left, right = asdict(a), asdict(b)
    for field in left:
        if left[field] != right[field]:
            yield (
                f"{field} differs: {names[0]} {_shown(left[field])},"
                f" {names[1]} {_shown(right[field])}"
            )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
