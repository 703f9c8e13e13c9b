"""Atom feeds from values: one current feed per chat and one for the whole archive, and
closed monthly archive documents (RFC 5005 "archived feeds").

- A chat's current feed holds its latest entries and links `prev-archive` to the archive of
  its newest month; each month's archive holds all of that month's messages, is marked
  `<fh:archive/>` and links to the month before. A month's archive changes only while its
  month is open or when one of its own messages is edited, deleted or backfilled, never when
  newer messages arrive.
- Entry ids are `tag:` URIs minted from canonical ids (which never change on edit, invariant
  5); `updated` is the last real edit, else the posting time; nothing depends on the clock.
- Content is rendered Skype markup sent as escaped HTML (`type="html"`); titles are text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from chatchannels.publishers import paths
from chatchannels.publishers.markup import Context, body_html, body_text, clean_text
from chatchannels.publishers.model import Message

TAG_AUTHORITY = "chatchannels.intranet,2006"
FEED_HISTORY_NS = "http://purl.org/syndication/history/1.0"
CURRENT_ENTRIES = 50
TITLE_CHARS = 80
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tag_uri(kind: str, key: str) -> str:
    """A `tag:` URI (RFC 4151) for a message, chat or feed; the key is percent-encoded."""
    return f"tag:{TAG_AUTHORITY}:{kind}/{quote(key, safe='')}"


class _ArchiveMark(BaseExtension):
    """Adds RFC 5005's `<fh:archive/>`, which says the document is an archive."""

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FEED_HISTORY_NS}

    def extend_atom(self, feed):  # type: ignore[no-untyped-def]
        xml_elem(f"{{{FEED_HISTORY_NS}}}archive", feed)
        return feed


def _entry_title(message: Message, chat_titles: Mapping[str, str] | None = None) -> str:
    """`Alice: hello`; in a feed of several chats, `Alice in Design review: hello`."""
    who = message.author_name or message.author
    if chat_titles is not None:
        who = f"{who} in {chat_titles.get(message.chat) or message.chat}"
    if message.deleted:
        return f"{who}: (deleted)"
    text = " ".join(body_text(message).split())
    if len(text) > TITLE_CHARS:
        text = text[: TITLE_CHARS - 1] + "…"
    return f"{who}: {text}"


def _entry_html(message: Message, context: Context) -> str:
    if message.deleted:
        return "<p><em>This message was deleted.</em></p>"
    return f"<div>{body_html(message, context)}</div>"


def _new_feed(
    feed_path: str,
    feed_id: str,
    title: str,
    messages: Sequence[Message],
    media: Mapping[str, str] | None,
    chat_titles: Mapping[str, str] | None = None,
) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(clean_text(title))
    fg.updated(max((m.updated_utc for m in messages), default=EPOCH))
    fg.link(href=paths.relative_link(feed_path, feed_path), rel="self")
    # Links in content resolve against the feed's own address (RFC 4287, xml:base).
    context = Context(media or {}, paths.relative_link(feed_path, ""))
    pages: dict[tuple[str, str], str] = {}  # (chat, month) -> link to its page
    for message in messages:
        place = (message.chat, paths.month_of(message.posted_utc))
        if place not in pages:
            pages[place] = paths.relative_link(feed_path, paths.month_page_path(*place))
        fe = fg.add_entry(order="append")
        fe.id(tag_uri("message", message.id))
        fe.title(clean_text(_entry_title(message, chat_titles)))
        fe.author(name=clean_text(message.author_name or message.author) or "(unknown)")
        fe.published(message.posted_utc)
        fe.updated(message.updated_utc)
        fe.link(
            href=f"{pages[place]}#{paths.message_anchor(message.id)}",
            rel="alternate",
            type="text/html",
        )
        fe.content(_entry_html(message, context), type="html")
    return fg


def _serialise(fg: FeedGenerator) -> bytes:
    return fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)


def chat_feed(
    chat: str,
    latest: Sequence[Message],
    newest_month: str | None,
    media: Mapping[str, str] | None = None,
    *,
    title: str | None = None,
) -> bytes:
    """A chat's current feed: its latest messages (newest first), paged to its archives.
    `media`, here and below: docid -> sha256 of the archived files the messages show;
    `title`: the chat's title (names.chat_title), else its id."""
    path = paths.chat_feed_path(chat)
    fg = _new_feed(path, tag_uri("chat", chat), title or chat, latest, media)
    fg.link(
        href=paths.relative_link(path, paths.chat_index_path(chat)),
        rel="alternate",
        type="text/html",
    )
    if newest_month is not None:
        fg.link(
            href=paths.relative_link(path, paths.archive_feed_path(chat, newest_month)),
            rel="prev-archive",
        )
    return _serialise(fg)


def archive_feed(
    chat: str,
    month: str,
    messages: Sequence[Message],
    prev_month: str | None,
    media: Mapping[str, str] | None = None,
    *,
    title: str | None = None,
) -> bytes:
    """A month's archive document of a chat (all its messages, oldest first)."""
    path = paths.archive_feed_path(chat, month)
    feed_id = tag_uri("chat-archive", f"{chat}/{month}")
    fg = _new_feed(path, feed_id, f"{title or chat} {month}", messages, media)
    # No entry extension: feedgen then leaves the entries alone instead of giving each one
    # an extension object that adds nothing.
    fg.register_extension("archive", _ArchiveMark, None, atom=True, rss=False)
    fg.link(href=paths.relative_link(path, paths.chat_feed_path(chat)), rel="current")
    fg.link(
        href=paths.relative_link(path, paths.month_page_path(chat, month)),
        rel="alternate",
        type="text/html",
    )
    if prev_month is not None:
        fg.link(
            href=paths.relative_link(path, paths.archive_feed_path(chat, prev_month)),
            rel="prev-archive",
        )
    return _serialise(fg)


def all_feed(
    latest: Sequence[Message],
    media: Mapping[str, str] | None = None,
    chat_titles: Mapping[str, str] | None = None,
) -> bytes:
    """The whole archive's current feed: the latest messages of every chat, each entry's
    title naming its chat by `chat_titles` (chat -> names.chat_title)."""
    path = paths.ALL_FEED_PATH
    fg = _new_feed(
        path, tag_uri("feed", "all"), "Chat Channels: all chats", latest, media, chat_titles or {}
    )
    fg.link(href=paths.relative_link(path, "index.html"), rel="alternate", type="text/html")
    return _serialise(fg)
