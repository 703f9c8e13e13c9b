"""The static site's pages, rendered from values (no I/O beyond reading our templates).

Jinja2 with autoescape: every value is escaped unless it went through `markup` or `body`,
which rebuild Skype markup with markup.py. Pages carry nothing that depends on when they
were rendered, so a page rendered incrementally equals the page rendered in a full rebuild.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from importlib.resources import files
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from chatchannels.publishers import paths, statistics
from chatchannels.publishers.articles import run_html, system_article
from chatchannels.publishers.conversation import conversation, participants, time_zone
from chatchannels.publishers.markup import Context, clean_text
from chatchannels.publishers.model import Chat, ChatSummary, Message, MonthCount
from chatchannels.publishers.search_query import narrowed
from chatchannels.publishers.times import local_time

if TYPE_CHECKING:
    from chatchannels.publishers.search_index import SearchResults

# The language of the pages' own words (messages carry their own direction, dir="auto").
LANG = "en"
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The one stylesheet: no external assets (fonts, images), so a page works from a file share.
STYLE_CSS = (files("chatchannels.publishers.templates") / "style.css").read_text(encoding="utf-8")


def day_label(day: date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def month_label(month: str) -> str:
    start, _ = paths.month_bounds(month)
    return f"{start:%B %Y}"


def _finalize(value: object) -> object:
    # Text XML cannot carry (NUL, lone surrogates) never reaches a page, even when escaped.
    if isinstance(value, Markup):  # built from escaped parts already
        return value
    return clean_text(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class ChatRow:
    name: str
    title: str
    messages: int
    last_utc: datetime | None
    link: str
    feed: str


def calendar(
    months: Sequence[MonthCount],
) -> list[tuple[int, list[MonthCount | None], int]]:
    """(year, its twelve months' counts or None, the year's total), every year from the
    first month with messages to the last."""
    if not months:
        return []
    by_month = {m.month: m for m in months}
    first, last = int(months[0].month[:4]), int(months[-1].month[:4])
    years = []
    for year in range(first, last + 1):
        cells = [by_month.get(f"{year:04}-{n:02}") for n in range(1, 13)]
        years.append((year, cells, sum(c.messages for c in cells if c)))
    return years


class PageRenderer:
    """Renders each kind of page to a string. One per publisher; holds the Jinja environment.
    `time_zone` (the setting): where the pages' days and times are told."""

    def __init__(self, time_zone_name: str = "UTC") -> None:
        self.zone = time_zone(time_zone_name)
        self.zone_name = "UTC" if self.zone is UTC else str(self.zone)
        self.env = Environment(
            loader=PackageLoader("chatchannels.publishers", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            finalize=_finalize,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(lang=LANG, zone_name=self.zone_name)
        self.env.filters.update(
            local_time=partial(local_time, self.zone),
            day_label=day_label,
            run_html=run_html,
            system_article=system_article,
        )

    def site_index(self, chats: Sequence[ChatSummary]) -> str:
        here = "index.html"
        rows = [
            ChatRow(
                name=c.name,
                title=c.title,
                messages=c.messages,
                last_utc=c.last_utc,
                link=paths.relative_link(here, paths.chat_index_path(c.name)),
                feed=paths.relative_link(here, paths.chat_feed_path(c.name)),
            )
            for c in chats
        ]
        return self.env.get_template("site_index.html").render(
            root="", chats=rows, all_feed=paths.ALL_FEED_PATH
        )

    def chat_index(self, chat: Chat, months: Sequence[MonthCount]) -> str:
        here = paths.chat_index_path(chat.name)
        return self.env.get_template("chat_index.html").render(
            root=paths.relative_link(here, ""),
            chat=chat,
            title=chat.title,
            years=calendar(months),
            month_names=MONTH_NAMES,
            feed=paths.relative_link(here, paths.chat_feed_path(chat.name)),
        )

    def month_page(
        self,
        chat: Chat,
        month: str,
        messages: Sequence[Message],
        prev_month: str | None,
        next_month: str | None,
        media: Mapping[str, str] | None = None,
        thumbs: Collection[str] = frozenset(),
    ) -> str:
        """`media`: docid -> sha256 of the archived files the messages show; `thumbs`: the
        sha256s of those the site has a thumbnail of. The page
        depends on the chat's title (its topic, or its people's names): the site publisher
        re-renders a chat's months when that changes."""
        root = paths.relative_link(paths.month_page_path(chat.name, month), "")
        return self.env.get_template("month.html").render(
            root=root,
            title=chat.title,
            chat=chat.name,
            month=month,
            month_label=month_label(month),
            messages=messages,
            days=conversation(messages, self.zone),
            people=participants(messages),
            prev_month=prev_month,
            next_month=next_month,
            # Event lines name people as the chat's page does (its members' display names).
            context=Context(
                media or {}, root, self.zone, thumbs, dict((*chat.named, *chat.members))
            ),
        )

    def search_page(
        self,
        query: str,
        sort: str,
        results: SearchResults | None,
        error: str,
        default_limit: int = 20,
    ) -> str:
        def link(text: str | None, offset: int = 0) -> str | None:
            """The relative link of a results page (None: no such page)."""
            if text is None:
                return None
            params: dict[str, object] = {"q": text, "sort": sort}
            if offset:
                params["offset"] = offset
            if results is not None and results.limit != default_limit:
                params["limit"] = results.limit
            return "search?" + urlencode(params)

        return self.env.get_template("search.html").render(
            root="",
            query=query,
            sort=sort,
            results=results,
            error=error,
            link=link,
            narrowed=narrowed,
            chat_index=paths.chat_index_path,
        )

    def stats_page(self, chat: Chat | None, stats: statistics.Statistics) -> str:
        """A chat's statistics page, or (chat None) the whole archive's."""
        here = paths.chat_stats_path(chat.name) if chat else paths.STATS_PATH
        charts = statistics.charts(
            stats,
            (lambda day: f"{day[:7]}.html") if chat else (lambda day: None),
        )
        return self.env.get_template("stats.html").render(
            root=paths.relative_link(here, ""),
            chat=chat,
            title=chat.title if chat else "All chats",
            stats=stats,
            first=stats.days[0].day if stats.days else None,
            last=stats.days[-1].day if stats.days else None,
            charts=charts,
        )
