"""A moment in UTC as text, as `strftime("%Y-%m-%dT%H:%M:%S.%f")` writes it.

A site has several such times a message (its page's times, its month, its manifest line),
and isoformat writes them in half the time strftime takes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_iso(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffff`, the moment in UTC. What follows the year has a fixed
    width, so slices from the end give the shorter forms (`[:-7]` without microseconds)."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such a year unpadded (`5-01-02`)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return utc.isoformat(timespec="microseconds")[:26]
