"""A month of a chat laid out the way people read a conversation; pure (values in, values out).

The month page (templates/month.html) shows a break at each day and, DiscordChatExporter
style, one header over a run of messages one person posted within a few minutes of each
other. System messages (people added, removed or leaving, topic changes, calls) are compact
lines of their own and end a run. Days and times are in the organisation's time zone (the
`time_zone` setting); the month itself is the UTC month the page covers (paths.month_of).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatchannels.publishers.markup import SYSTEM_TYPES
from chatchannels.publishers.model import Message

# The longest pause between two messages of one person that keeps them under one header.
RUN_GAP = timedelta(minutes=5)


class TimeZoneError(ValueError):
    """The time_zone setting names no zone this machine's tz database knows."""


def time_zone(name: str) -> tzinfo:
    """The zone a `time_zone` setting names (an IANA name such as `Europe/Tallinn`, or UTC)."""
    if name.strip().upper() in ("", "UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeZoneError(
            f"time_zone {name!r} is not a time zone name (e.g. UTC, Europe/Tallinn)"
        ) from exc


@dataclass(frozen=True)
class Run:
    """Consecutive messages of one person (by handle and the name they had then)."""

    author: str
    author_name: str
    messages: tuple[Message, ...]

    @property
    def first(self) -> Message:
        return self.messages[0]


@dataclass(frozen=True)
class SystemLine:
    message: Message


@dataclass(frozen=True)
class Day:
    date: date
    items: tuple[Run | SystemLine, ...]


def is_system(message: Message) -> bool:
    return message.type in SYSTEM_TYPES


def local(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone)


def conversation(messages: Sequence[Message], zone: tzinfo) -> tuple[Day, ...]:
    """The messages (in time order) as days of runs and system lines, in `zone`."""
    days: list[Day] = []
    items: list[Run | SystemLine] = []
    current: date | None = None
    previous: Message | None = None
    for message in messages:
        day = local(message.posted_utc, zone).date()
        if day != current:
            if current is not None:
                days.append(Day(current, tuple(items)))
            current, items, previous = day, [], None
        if is_system(message):
            items.append(SystemLine(message))
            previous = None
            continue
        last = items[-1] if items else None
        if (
            isinstance(last, Run)
            and previous is not None
            and last.author == message.author
            and last.author_name == message.author_name
            and message.posted_utc - previous.posted_utc <= RUN_GAP
        ):
            items[-1] = Run(last.author, last.author_name, (*last.messages, message))
        else:
            items.append(Run(message.author, message.author_name, (message,)))
        previous = message
    if current is not None:
        days.append(Day(current, tuple(items)))
    return tuple(days)


def participants(messages: Sequence[Message]) -> list[tuple[str, str, int]]:
    """(handle, the name they last posted under, messages) of everyone who posted, most
    messages first, then by name; system messages count for their author too."""
    counts = Counter(m.author for m in messages)
    names = {m.author: m.author_name or m.author for m in messages}
    return sorted(((h, names[h], n) for h, n in counts.items()), key=lambda p: (-p[2], p[1], p[0]))
