"""Statistics of a chat or of the whole archive, as values, and the charts they make (no I/O).

tallies.py reads these from the site's own tally tables; here they become the figures the
statistics pages show: messages per person, by month, by hour of day and day of week, the
busiest days, and edits and deletions. Days and hours are those of the site's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from chatchannels.publishers.charts import Bar, Series, bars, columns

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
BUSIEST_DAYS = 10
# The chart shows this many people; the table under it shows everyone.
CHARTED_PEOPLE = 25


@dataclass(frozen=True)
class PersonTally:
    handle: str
    name: str  # the display name of the person's latest message; may be empty
    messages: int
    edited: int  # messages edited and not deleted
    deleted: int


@dataclass(frozen=True)
class DayTally:
    day: str  # YYYY-MM-DD, in the time zone of the Statistics
    messages: int
    edited: int
    deleted: int


@dataclass(frozen=True)
class Statistics:
    people: tuple[PersonTally, ...]  # most messages first, then by handle
    days: tuple[DayTally, ...]  # days with messages, in order
    hours: tuple[tuple[int, int, int], ...]  # (ISO weekday 1-7, hour 0-23, messages)
    time_zone: str = "UTC"  # where the days and hours were counted

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.people)

    @property
    def edited(self) -> int:
        return sum(p.edited for p in self.people)

    @property
    def deleted(self) -> int:
        return sum(p.deleted for p in self.people)


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + 1:04}-01" if number == 12 else f"{year:04}-{number + 1:02}"


def by_month(days: tuple[DayTally, ...]) -> list[DayTally]:
    """Per month from the first to the last with messages, quiet months included as zeros
    (a chart with gaps left out would hide them); `day` holds the month, YYYY-MM."""
    sums: dict[str, list[int]] = {}
    for d in days:
        total = sums.setdefault(d.day[:7], [0, 0, 0])
        total[0] += d.messages
        total[1] += d.edited
        total[2] += d.deleted
    if not sums:
        return []
    months, month, last = [], min(sums), max(sums)
    while month <= last:
        months.append(DayTally(month, *sums.get(month, (0, 0, 0))))
        month = _next_month(month)
    return months


def busiest(days: tuple[DayTally, ...], count: int = BUSIEST_DAYS) -> list[DayTally]:
    """The days with the most messages, the earlier first among equals."""
    return sorted(days, key=lambda d: (-d.messages, d.day))[:count]


def by_hour(hours: tuple[tuple[int, int, int], ...]) -> list[int]:
    counts = [0] * 24
    for _, hour, n in hours:
        counts[hour] += n
    return counts


def by_weekday(hours: tuple[tuple[int, int, int], ...]) -> list[int]:
    counts = [0] * 7
    for weekday, _, n in hours:
        counts[weekday - 1] += n
    return counts


def person_label(person: PersonTally) -> str:
    return f"{person.name} ({person.handle})" if person.name else person.handle


def charts(stats: Statistics, day_link: Callable[[str], str | None]) -> dict[str, Markup]:
    """The page's charts by section; `day_link` gives the link of a day (its month page), if any."""
    months = by_month(stats.days)
    month_labels = [m.day for m in months]
    return {
        "people": bars(
            "people",
            "Messages per person",
            f"The {min(len(stats.people), CHARTED_PEOPLE)} people who wrote the most messages,"
            f" of {len(stats.people)}.",
            "Person",
            "messages",
            [Bar(person_label(p), p.messages) for p in stats.people],
            CHARTED_PEOPLE,
        ),
        "months": columns(
            "months",
            "Messages by month",
            f"Messages each month from {month_labels[0]} to {month_labels[-1]}."
            if months
            else "No messages.",
            "Month",
            month_labels,
            [Series("messages", tuple(m.messages for m in months))],
        ),
        "hours": columns(
            "hours",
            f"Messages by hour of day ({stats.time_zone})",
            f"Messages posted in each hour of the day, 0 to 23, {stats.time_zone} time.",
            "Hour",
            [f"{h:02}" for h in range(24)],
            [Series("messages", tuple(by_hour(stats.hours)))],
        ),
        "weekdays": columns(
            "weekdays",
            f"Messages by day of week ({stats.time_zone})",
            f"Messages posted on each day of the week, Monday to Sunday, {stats.time_zone} time.",
            "Day",
            [d[:3] for d in WEEKDAYS],
            [Series("messages", tuple(by_weekday(stats.hours)))],
        ),
        "busiest": bars(
            "busiest",
            "Busiest days",
            f"The {min(len(stats.days), BUSIEST_DAYS)} days with the most messages.",
            "Day",
            "messages",
            [Bar(d.day, d.messages, day_link(d.day)) for d in busiest(stats.days)],
        ),
        "changes": columns(
            "changes",
            "Edits and deletions by month",
            "Messages edited and messages deleted, by the month they were posted in.",
            "Month",
            month_labels,
            [
                Series("edited", tuple(m.edited for m in months), "s0"),
                Series("deleted", tuple(m.deleted for m in months), "s1"),
            ],
        ),
    }
