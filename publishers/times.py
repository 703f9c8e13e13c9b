"""How the site's pages show a time: as people read it in the page's zone, with the exact
UTC time as its title and datetime; pure (values in, safe HTML out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from markupsafe import Markup

from chatchannels.publishers import paths
from chatchannels.publishers.model import Message, Sighting
from chatchannels.publishers.utc import utc_iso


def time_html(moment: datetime, shown: str) -> Markup:
    """A time as people read it (`shown`), with the exact UTC time as its title and datetime."""
    # One formatting for both UTC forms: a month page has two times a message.
    iso = utc_iso(moment)[:-7] + "Z"
    return Markup(f'<time datetime="{iso}" title="{iso[:10]} {iso[11:19]} UTC">{shown}</time>')


def local_time(zone: tzinfo, moment: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> Markup:
    return time_html(moment, moment.astimezone(zone).strftime(fmt))


def sighting_time(sighting: Sighting) -> Markup:
    """The TIMESTAMP a desktop's Skype wrote, on its own clock and in its own time zone."""
    moment = datetime.fromtimestamp(sighting.local_timestamp, UTC)
    local = moment.astimezone(_fixed_zone(sighting.tz_offset_s))
    return time_html(moment, local.strftime("%Y-%m-%d %H:%M:%S %z"))


@lru_cache(maxsize=256)
def _fixed_zone(offset_s: int) -> timezone:
    # A desktop's UTC offset: few, and one a sighting, so made once each.
    return timezone(timedelta(seconds=offset_s))


def permalink(zone: tzinfo, message: Message, fmt: str) -> Markup:
    """The message's time in `zone`, linking to the message itself."""
    # message_anchor's alphabet ([a-z0-9._~()-]) needs no escaping in an attribute.
    anchor = paths.message_anchor(message.id)
    shown = message.posted_utc.astimezone(zone).strftime(fmt)
    return Markup(
        f'<a class="permalink" href="#{anchor}">{time_html(message.posted_utc, shown)}</a>'
    )
