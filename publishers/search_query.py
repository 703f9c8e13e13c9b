"""The search language, parsed into a small tree any search backend can translate.

    words            every word must match (body text, stemmed: "meeting" finds "meetings")
    "a phrase"       the exact words in this order (not stemmed)
    a OR b           either side; binds tighter than the implicit AND ("x a OR b" = x AND (a|b))
    NOT word, -word  must not match (also before a phrase or a field)
    author:alice     author handle or any word of the display name
    chat:NAME        the chat's name exactly, or a word of it
    date:2006-05     a year, month or day (UTC); after:2006-05-03 (that day included) and
    before:2006-06   (that day excluded)

Pure: text in, tree out. Malformed input never raises past `parse_query`: an unknown field is
searched as words, a bad date raises QueryError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

FIELDS = ("author", "chat", "date", "after", "before")
TOKEN = re.compile(
    r'(?P<neg>-)?(?:(?P<field>[a-zA-Z]+):)?(?:"(?P<phrase>[^"]*)"?|(?P<word>[^\s"]+))|"'
)
DATE_FORMATS = (("%Y-%m-%d", "day"), ("%Y-%m", "month"), ("%Y", "year"))


class QueryError(ValueError):
    """The query cannot be searched; the message names the part and what to write instead."""


@dataclass(frozen=True)
class Words:
    """Text to find in the body: one word, or several when `phrase` (in order, unstemmed)."""

    text: str
    phrase: bool = False


@dataclass(frozen=True)
class Field:
    name: str  # author | chat
    value: str


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC; either side open when None."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Not:
    clause: Clause


@dataclass(frozen=True)
class AnyOf:
    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class AllOf:
    clauses: tuple[Clause, ...]


Clause = Words | Field | TimeRange | Not | AnyOf | AllOf


def _day_range(value: str, name: str) -> tuple[datetime, datetime | None]:
    for fmt, unit in DATE_FORMATS:
        try:
            start = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        try:
            if unit == "day":
                end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
            elif unit == "month":
                end = start.replace(
                    year=start.year + (start.month == 12), month=start.month % 12 + 1
                )
            else:
                end = start.replace(year=start.year + 1)
        except ValueError:  # the end of year 9999
            end = None
        return start, end
    raise QueryError(f"{name}:{value} is not a date; write YYYY, YYYY-MM or YYYY-MM-DD")


def _field_clause(name: str, value: str) -> Clause:
    if name == "date":
        return TimeRange(*_day_range(value, name))
    if name == "after":
        return TimeRange(_day_range(value, name)[0], None)
    if name == "before":
        return TimeRange(None, _day_range(value, name)[0])
    return Field(name, value)


def _atoms(text: str) -> list[Clause | str]:
    """Clauses, with the bare keywords OR and NOT left as strings for the grammar."""
    out: list[Clause | str] = []
    for match in TOKEN.finditer(text):
        if match[0] == '"':
            continue  # a lone quote carries nothing
        neg, field, phrase, word = match["neg"], match["field"], match["phrase"], match["word"]
        value = phrase if phrase is not None else word
        if field and field.lower() in FIELDS and value:
            clause: Clause = _field_clause(field.lower(), value)
        elif field and field.lower() not in FIELDS:
            clause = Words(f"{field}:{value}" if value else field, phrase is not None)
        elif phrase is not None:
            if not phrase.strip():
                continue
            clause = Words(phrase, phrase=True)
        elif not neg and word in ("OR", "NOT"):
            out.append(word)
            continue
        elif word is None or word == "-":
            continue
        else:
            clause = Words(word)
        out.append(Not(clause) if neg else clause)
    return out


def parse_query(text: str) -> AllOf:
    """The query's tree: an AllOf of clauses (empty when the text holds nothing to search)."""
    atoms = _atoms(text)
    clauses: list[Clause] = []
    pending_not = False
    join_next = False
    for atom in atoms:
        if atom == "NOT":
            pending_not = not pending_not
            continue
        if atom == "OR":
            join_next = bool(clauses)
            continue
        clause = Not(atom) if pending_not else atom
        pending_not = False
        if join_next and clauses:
            previous = clauses.pop()
            members = previous.clauses if isinstance(previous, AnyOf) else (previous,)
            clause = AnyOf((*members, clause))
        join_next = False
        clauses.append(clause)
    return AllOf(_merge_time_ranges(clauses))


def _merge_time_ranges(clauses: list[Clause]) -> tuple[Clause, ...]:
    """`after:X before:Y` is one range: backends then look up its months once, and count
    its matches exactly instead of estimating an intersection."""
    ranges = [c for c in clauses if isinstance(c, TimeRange)]
    if len(ranges) < 2:
        return tuple(clauses)
    starts = [r.start for r in ranges if r.start is not None]
    ends = [r.end for r in ranges if r.end is not None]
    merged = TimeRange(max(starts) if starts else None, min(ends) if ends else None)
    rest = [c for c in clauses if not isinstance(c, TimeRange)]
    return (*rest, merged)


def narrowed(query: str, field: str, value: str) -> str | None:
    """The query with `field:"value"` added (a facet's link), or None when the value cannot
    be written in the language (it holds a double quote)."""
    if '"' in value:
        return None
    if query.count('"') % 2:
        query += '"'  # close an open phrase, or it would swallow the field
    words = query.split()
    # A trailing OR or NOT means nothing (parse_query drops it); before the field it would
    # join or negate it.
    while words and words[-1] in ("OR", "NOT"):
        words.pop()
    return " ".join([*words, f'{field}:"{value}"'])


def has_positive(clause: Clause) -> bool:
    """Whether the clause selects something by itself (a query of only NOTs selects nothing)."""
    if isinstance(clause, Not):
        return False
    if isinstance(clause, AllOf):
        return any(has_positive(c) for c in clause.clauses)
    if isinstance(clause, AnyOf):
        return all(has_positive(c) for c in clause.clauses)
    return True


def highlight_words(clause: Clause) -> tuple[str, ...]:
    """The words a result snippet should mark: every positive body word or phrase."""
    if isinstance(clause, Words):
        return (clause.text,)
    if isinstance(clause, AllOf | AnyOf):
        return tuple(w for c in clause.clauses for w in highlight_words(c))
    return ()


def make_snippet(
    text: str, spans: Sequence[tuple[int, int]], width: int = 200
) -> tuple[tuple[str, bool], ...]:
    """A window of `text` around its first marked span, as (text, marked) pieces.

    `spans` are sorted (start, end) character ranges to mark (the backend knows its
    stemming); the pieces are plain text, to be escaped by whoever renders them.
    """
    start = 0
    if spans and spans[0][0] > width // 3:
        start = text.rfind(" ", 0, spans[0][0] - width // 3) + 1
    end = min(len(text), start + width)
    if end < len(text):
        end = max(text.rfind(" ", start, end), start + width // 2)
    pieces: list[tuple[str, bool]] = []
    cursor = start
    for first, last in spans:
        if first < cursor or last > end:
            continue
        if first > cursor:
            pieces.append((text[cursor:first], False))
        pieces.append((text[first:last], True))
        cursor = last
    if cursor < end:
        pieces.append((text[cursor:end], False))
    if start > 0:
        pieces.insert(0, ("…", False))
    if end < len(text):
        pieces.append(("…", False))
    return tuple(pieces)


def cover_range(
    start: datetime | None, end: datetime | None, known_months: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The whole months (`YYYY-MM`) and single days (`YYYY-MM-DD`) that exactly make up the
    day-aligned range [start, end), limited to the months that have messages.

    A backend looks up a few month and day terms instead of a numeric range over every
    message's time. The language only has days, so the bounds are midnight UTC.
    """
    for bound in (start, end):
        if bound is not None and bound.timetz() != datetime.min.replace(tzinfo=UTC).timetz():
            raise ValueError(f"{bound} is not midnight UTC; time ranges are made of days")
    if not known_months:
        return [], []
    first = datetime.strptime(min(known_months), "%Y-%m").replace(tzinfo=UTC)
    last = _day_range(max(known_months), "date")[1] or datetime.max.replace(tzinfo=UTC)
    cursor = max(start or first, first)
    stop = min(end or last, last)
    known = set(known_months)
    months: list[str] = []
    days: list[str] = []
    while cursor < stop:
        month_end = _day_range(cursor.strftime("%Y-%m"), "date")[1]
        if cursor.day == 1 and month_end is not None and month_end <= stop:
            if cursor.strftime("%Y-%m") in known:
                months.append(cursor.strftime("%Y-%m"))
            cursor = month_end
            continue
        if cursor.strftime("%Y-%m") in known:
            days.append(cursor.strftime("%Y-%m-%d"))
        next_day = _day_range(cursor.strftime("%Y-%m-%d"), "date")[1]
        if next_day is None:
            break
        cursor = next_day
    return months, days
