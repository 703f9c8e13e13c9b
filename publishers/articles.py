"""A month page's messages as HTML, one `<article>` each; pure (values in, text out).

The rest of the page is templates/month.html; a message's article is written here in
Python because a site has one per message, and rendering 200,000 of them through a Jinja
macro (a macro call, an escape and a filter call for every value) took a fifth longer.
The articles keep the page's rules: every value is escaped as the templates' autoescape
would, after markup.clean_text (pages._finalize), and times are shown as the page's
filters show them.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from chatchannels.publishers import paths
from chatchannels.publishers.conversation import Run
from chatchannels.publishers.markup import (
    MEMBER_EVENTS,
    SYSTEM_TYPES,
    Context,
    body_html,
    clean_text,
    render_in,
)
from chatchannels.publishers.model import Message
from chatchannels.publishers.times import local_time, permalink, sighting_time

# Kinds a month page shows as what they are; any other is labelled as unknown.
SHOWN_KINDS = frozenset(
    {"SAID", "EMOTED", "MEDIA", "FILES", "POSTEDCONTACTS", "SMS", "LOCATION", "CARD"}
    | SYSTEM_TYPES
    | set(MEMBER_EVENTS)
)
UNKNOWN_KIND = (
    '<p class="kind">A kind of message this archive does not know: <code>{}</code>;'
    " its content as stored is above.</p>"
)


def _text(value: str) -> str:
    return escape(clean_text(value))


def run_html(context: Context, run: Run) -> Markup:
    """One person's run of messages: a byline with the first one's time, then the
    articles, of which only the others show their time."""
    name = _text(run.author_name or run.author)
    who = f'<span class="author" title="{_text(run.author)}"><bdi>{name}</bdi></span>'
    when = permalink(context.zone, run.first, "%H:%M")
    out = [f'<div class="run">\n<p class="byline">{who} {when}</p>\n']
    for i, m in enumerate(run.messages):
        classes = "message"
        if m.deleted:
            classes += " deleted"
        if m.edited_utc:
            classes += " edited"
        if m.type == "EMOTED":
            classes += " emote"
        out.append(f'<article class="{classes}" id="{paths.message_anchor(m.id)}">\n')
        if i:
            out.append(permalink(context.zone, m, "%H:%M:%S"))
        out.append(_details(m, context))
        by = f" by <bdi>{_text(m.edited_by)}</bdi>" if m.edited_by else ""
        at = f" at {local_time(context.zone, m.edited_utc)}" if m.edited_utc else ""
        if m.deleted:
            out.append(f'<p class="tombstone">Message deleted{by}{at}.</p>\n')
        else:
            emote = (
                f'<span class="emote"><bdi>{_text(m.author_name or m.author)}</bdi></span> '
                if m.type == "EMOTED"
                else ""
            )
            out.append(f'<div class="body" dir="auto">{emote}{body_html(m, context)}</div>\n')
            if m.type not in SHOWN_KINDS:
                out.append(UNKNOWN_KIND.format(_text(m.type)))
            if m.edited_utc:
                out.append(f'<p class="edited">Edited{by}{at}.</p>')
        out.append("</article>\n")
    out.append("</div>\n")
    return Markup("".join(out))


def system_article(context: Context, m: Message) -> Markup:
    """A system message (an event, a call) as its compact line."""
    call = " call" if m.type == "CALL" else ""
    return Markup(
        f'<article class="message system{call}" id="{paths.message_anchor(m.id)}">\n'
        f"{permalink(context.zone, m, '%H:%M')}\n"
        f"{_details(m, context)}"
        f'<div class="body" dir="auto">{body_html(m, context)}</div>\n'
        "</article>\n"
    )


def _details(m: Message, context: Context) -> str:
    """The folded history (when the message was edited or deleted) and provenance."""
    out = []
    if len(m.revisions) > 1:
        out.append(
            f'<details class="history"><summary>History ({len(m.revisions)} versions)</summary>\n'
            "<ol>\n"
        )
        for r in m.revisions:
            when = local_time(context.zone, r.edited_utc) if r.edited_utc else "original"
            by = f" by <bdi>{_text(r.editor)}</bdi>" if r.editor else ""
            what = (
                "<em>deleted</em>"
                if r.deleted
                else f'<div class="body" dir="auto">{render_in(r.body_markup, context)}</div>'
            )
            out.append(f"<li>{when}{by}: {what}</li>\n")
        out.append("</ol>\n</details>\n")
    if m.sightings:
        out.append(
            '<details class="provenance"><summary title="Which desktops captured this message">'
            f"seen on {len(m.hosts)}</summary>\n<ul>\n"
        )
        for s in m.sightings:
            out.append(
                f"<li><bdi>{_text(s.host)}</bdi>: local id <code><bdi>{_text(s.local_id)}</bdi>"
                f"</code>, its clock said {sighting_time(s)}</li>\n"
            )
        out.append("</ul>\n</details>\n")
    return "".join(out)
