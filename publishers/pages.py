"""The static site's pages, rendered from values (no I/O beyond reading our templates).

Jinja2 with autoescape: every value is escaped unless it went through `markup` or `body`,
which rebuild Skype markup with markup.py. Pages carry nothing that depends on when they
were rendered, so a page rendered incrementally equals the page rendered in a full rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from chatchannels.publishers import paths
from chatchannels.publishers.markup import body_html, clean_text, render_markup
from chatchannels.publishers.model import Chat, ChatSummary, Message, MonthCount
from chatchannels.publishers.search_query import narrowed

if TYPE_CHECKING:
    from chatchannels.publishers.search_index import SearchResults

STYLE_CSS = """\
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 0 1rem; }
nav.top { padding: .6rem 0; border-bottom: 1px solid #ccc; }
article.message { border-bottom: 1px solid #eee; padding: .4rem 0; }
article.message:target { background: #ffd; }
article.deleted .tombstone, .edited { color: #777; font-style: italic; }
.body { white-space: pre-wrap; overflow-wrap: anywhere; }
.author { font-weight: 600; }
.type, .seen, .chatname, .handle { color: #777; font-size: .85em; }
blockquote.quote { border-left: 3px solid #ccc; margin: .2rem 0; padding-left: .6rem; }
.event, .call, .files, .media, .contacts, .sms, .location { color: #444; }
.card { font-family: monospace; font-size: .85em; color: #555; }
.media.missing .mark { color: #a33; font-size: .85em; }
details.history { font-size: .9em; color: #555; }
mark { background: #ff6; }
table.chats td, table.chats th { text-align: left; padding: .2rem .6rem .2rem 0; }
.results { display: flex; flex-wrap: wrap; gap: 0 2rem; align-items: flex-start; }
ol.hits { flex: 1 1 30rem; padding-left: 1.5rem; margin: 0; }
li.hit { margin: 0 0 1rem; }
li.hit p { margin: .15rem 0; overflow-wrap: anywhere; }
.context { opacity: .7; font-size: .9em; }
.facets { flex: 0 1 14rem; font-size: .9em; }
.facets h2 { font-size: 1em; margin: .5rem 0 .2rem; }
.facets ul { list-style: none; padding: 0; margin: 0; }
.facets .count, .total { opacity: .7; }
details.syntax { font-size: .9em; margin: .4rem 0; }
details.syntax dd { margin: 0 0 .3rem 1rem; }
nav.pages a { margin-right: 1rem; }
@media (max-width: 40rem) {
  .facets { order: -1; flex-basis: 100%; }
  .facets ul li { display: inline; margin-right: .8rem; }
}
"""


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_time(moment: datetime) -> Markup:
    return Markup(f'<time datetime="{utc_iso(moment)}">{utc_text(moment)}</time>')


def _anchor(message_id: str) -> str:
    return paths.message_anchor(message_id)


def _markup(body_markup: str, media: Mapping[str, str], root: str) -> Markup:
    return Markup(render_markup(body_markup, media, root))


def _body(message: Message, media: Mapping[str, str], root: str) -> Markup:
    return Markup(body_html(message, media, root))


def _finalize(value: object) -> object:
    # Text XML cannot carry (NUL, lone surrogates) never reaches a page, even when escaped.
    if isinstance(value, Markup):  # built from escaped parts already
        return value
    return clean_text(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class ChatRow:
    name: str
    title: str
    topic: str
    messages: int
    last_utc: datetime | None
    link: str
    feed: str


class PageRenderer:
    """Renders each kind of page to a string. One per publisher; holds the Jinja environment."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("chatchannels.publishers", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            finalize=_finalize,
            keep_trailing_newline=True,
        )
        self.env.filters.update(utc_time=_utc_time, anchor=_anchor, markup=_markup, body=_body)

    def site_index(self, chats: Sequence[ChatSummary]) -> str:
        here = "index.html"
        rows = [
            ChatRow(
                name=c.name,
                title=c.topic or c.name,
                topic=c.topic,
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
            title=chat.topic or chat.name,
            months=months,
            feed=paths.relative_link(here, paths.chat_feed_path(chat.name)),
        )

    def month_page(
        self,
        chat: str,
        month: str,
        messages: Sequence[Message],
        prev_month: str | None,
        next_month: str | None,
        media: Mapping[str, str] | None = None,
    ) -> str:
        """`media`: docid -> sha256 of the archived files the messages show."""
        # The title is the chat's name, not its topic, so a topic change does not have to
        # re-render every month of the chat; the chat's index page carries the topic.
        here = paths.month_page_path(chat, month)
        return self.env.get_template("month.html").render(
            root=paths.relative_link(here, ""),
            title=chat,
            month=month,
            messages=messages,
            prev_month=prev_month,
            next_month=next_month,
            media=media or {},
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
