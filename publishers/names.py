"""The names people recognise a chat by, the same on every page, feed and search hit.

Skype names a chat by an id (`#alice/$bob;a7ab206ec78060f1`, `19:...@thread.skype`,
`dialog:alice;bob`) that nobody reads. People know a group chat by its topic and a
one-to-one chat by who is in it, so that is the title; the id stays available, shown small.
Pure: the caller hands in what the store knows (topic, members with their display names).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

DIALOG_PREFIX = "dialog:"
# `#creator/$other;hex` is a one-to-one chat between creator and other; `#creator/$;hex`
# (no one after the `$`) is a group started by creator.
_LEGACY = re.compile(r"#(?P<creator>[^/\s]+)/\$(?P<other>[^;\s]*);[0-9a-fA-F]+")
# A title lists at most this many people; a larger untitled group says how many more.
MOST_NAMED = 3


def handles_in_name(name: str) -> tuple[str, ...]:
    """The people a chat's id itself names: both sides of a legacy one-to-one chat or of a
    paired dialog, the creator of a legacy group; none for a thread id."""
    legacy = _LEGACY.fullmatch(name)
    if legacy:
        return tuple(h for h in (legacy["creator"], legacy["other"]) if h)
    if name.startswith(DIALOG_PREFIX):
        return tuple(h for h in name[len(DIALOG_PREFIX) :].split(";") if h)
    return ()


def is_one_to_one(name: str) -> bool:
    return len(handles_in_name(name)) == 2


def chat_title(
    name: str,
    topic: str,
    members: Sequence[tuple[str, str]] = (),
    display_names: Mapping[str, str] | None = None,
) -> str:
    """The chat's title: its topic; else the names of the people in it (the members, or
    those its id names), as "Alice & Bob" or "Alice, Bob, Carol and 2 more"; else its id.

    `members` are (handle, display name) pairs as the store has them; `display_names` maps
    further handles (those the id names) to display names. A person without a display name
    is shown by handle."""
    if topic.strip():
        return topic.strip()
    known = dict(display_names or {})
    known.update((handle, shown) for handle, shown in members if shown)
    handles = [h for h, _ in members] or list(handles_in_name(name))
    if not handles:
        return name
    people = [known.get(h) or h for h in dict.fromkeys(handles)]
    if len(people) == 2:
        title = f"{people[0]} & {people[1]}"
    elif len(people) <= MOST_NAMED:
        title = ", ".join(people[:-1]) + (f" and {people[-1]}" if len(people) > 1 else people[0])
    else:
        title = f"{', '.join(people[:MOST_NAMED])} and {len(people) - MOST_NAMED} more"
    return title if title.strip() else name
