"""Who may read which chat: the `[permissions]` rules of the settings file, as values (no I/O).

Modelled on datasette's `allow` blocks (docs "Defining permissions with allow blocks"): an
allow block is `true` (everyone, anonymous readers too), `false` (nobody but administrators),
or a table whose keys each admit some readers, any key being enough:

- `id`: user names, a string or a list; `"*"` is any signed-in reader;
- `groups`: group names (the Reader's groups); `"*"` is a reader in any group;
- `members = true`: the chat's participants, the Skype handles the store knows for it (its
  members and those its id names), mapped to user names by the `reader_handles` table;
- `unauthenticated = true`: readers who are not signed in.

A rule selects chats by `chats` (globs on the chat's id, e.g. `"dialog:*"`) and/or `titles`
(globs on its title, case-insensitive); with both, a chat must match each; with neither, it
selects every chat (a title is a topic its participants can change: deploy/config.md says
what that means for rules that open chats by title). Rules only ever add readers: a chat is
readable when any rule that selects it admits the reader. Private by default: a chat no rule
admits anyone to is read by administrators only, and administrators read every chat.

```toml
[[permissions.rules]]
allow = { members = true }            # everyone reads the chats they are in

[[permissions.rules]]
titles = ["Announcements*"]
allow = true                          # public, anonymous readers included

[[permissions.rules]]
chats = ["19:*@thread.skype"]
allow = { groups = ["staff"], id = ["carol"] }
```
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatchannels.publishers.access.readers import Reader

ALLOW_KEYS = ("id", "groups", "members", "unauthenticated")
RULE_KEYS = ("chats", "titles", "allow")
ANY = "*"


class RulesError(ValueError):
    """The permissions cannot be used; the message names the rule and the key."""


@dataclass(frozen=True)
class Allow:
    """Whom one allow block admits."""

    everyone: bool = False
    ids: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    members: bool = False
    unauthenticated: bool = False

    def admits(self, reader: Reader, is_member: Callable[[], bool]) -> bool:
        """`is_member`: whether the reader is one of the chat's participants (asked last:
        it is the only question that needs the catalog)."""
        if self.everyone or (self.unauthenticated and not reader.signed_in):
            return True
        if not reader.signed_in:
            return False
        if ANY in self.ids or reader.name in self.ids:
            return True
        if reader.groups and (ANY in self.groups or not self.groups.isdisjoint(reader.groups)):
            return True
        return self.members and is_member()


@dataclass(frozen=True)
class ChatFacts:
    """What the rules look at in a chat: its id, its title (names.chat_title) and the Skype
    handles of its participants."""

    name: str
    title: str
    handles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rule:
    chats: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    allow: Allow = Allow()

    def selects(self, chat: ChatFacts) -> bool:
        if self.chats and not _glob(self.chats, False).match(chat.name):
            return False
        return not self.titles or bool(_glob(self.titles, True).match(chat.title.casefold()))


@dataclass(frozen=True)
class Permissions:
    rules: tuple[Rule, ...] = ()

    def covering(self, chat: ChatFacts) -> tuple[Allow, ...]:
        """The allow blocks of the rules that select the chat: they depend on the chat alone,
        so a caller may keep them while the chat is unchanged."""
        return tuple(rule.allow for rule in self.rules if rule.selects(chat))

    def may_read(self, reader: Reader, chat: ChatFacts, handle_readers: Mapping[str, str]) -> bool:
        """Whether the reader may read the chat; `handle_readers` maps Skype handles
        (lower-case) to user names (the `reader_handles` table)."""
        if reader.admin:
            return True
        return admitted(
            reader, self.covering(chat), lambda: is_member(reader, chat, handle_readers)
        )


def admitted(reader: Reader, allows: Sequence[Allow], member: Callable[[], bool]) -> bool:
    """Whether any of the allow blocks covering a chat admits the reader (admins aside)."""
    return any(allow.admits(reader, member) for allow in allows)


def is_member(reader: Reader, chat: ChatFacts, handle_readers: Mapping[str, str]) -> bool:
    return reader.signed_in and any(
        handle_readers.get(handle.lower()) == reader.name for handle in chat.handles
    )


@functools.lru_cache(maxsize=1024)
def _glob(patterns: tuple[str, ...], fold: bool) -> re.Pattern[str]:
    """One regular expression for a rule's globs (fnmatch's `*`, `?` and `[...]`; `*` also
    crosses `/`, which chat ids contain)."""
    texts = [p.casefold() if fold else p for p in patterns]
    return re.compile("|".join(f"(?:{fnmatch.translate(t)})" for t in texts), re.DOTALL)


def parse_permissions(raw: Any, source: str = "settings") -> Permissions:
    """The permissions from the settings file's `[permissions]` table (a JSON text from the
    environment is read the same way). Raises RulesError naming the rule and key."""
    if isinstance(raw, Permissions):
        return raw
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise RulesError(f"permissions from {source}: not a JSON object ({exc})") from exc
    if not isinstance(raw, Mapping):
        raise RulesError(f"permissions from {source}: must be a table with `rules`, not {raw!r}")
    unknown = sorted(set(raw) - {"rules"})
    if unknown:
        raise RulesError(
            f"permissions from {source}: unknown key {unknown[0]!r} (only `rules`, a list of"
            " tables: [[permissions.rules]])"
        )
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        raise RulesError(f"permissions from {source}: `rules` must be a list of tables")
    return Permissions(tuple(_rule(i, rule, source) for i, rule in enumerate(rules, start=1)))


def _rule(number: int, raw: Any, source: str) -> Rule:
    where = f"permissions rule {number} from {source}"
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: must be a table, not {raw!r}")
    unknown = sorted(set(raw) - set(RULE_KEYS))
    if unknown:
        raise RulesError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(RULE_KEYS)})")
    if "allow" not in raw:
        raise RulesError(f"{where}: has no `allow` (true, false, or a table of {ALLOW_KEYS})")
    return Rule(
        _names(where, "chats", raw.get("chats", [])),
        _names(where, "titles", raw.get("titles", [])),
        _allow(where, raw["allow"]),
    )


def _allow(where: str, raw: Any) -> Allow:
    if isinstance(raw, bool):
        return Allow(everyone=raw)
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: `allow` must be true, false or a table, not {raw!r}")
    unknown = sorted(set(raw) - set(ALLOW_KEYS))
    if unknown:
        raise RulesError(
            f"{where}: unknown key {unknown[0]!r} in `allow` (known: {', '.join(ALLOW_KEYS)})"
        )
    for key in ("members", "unauthenticated"):
        if not isinstance(raw.get(key, False), bool):
            raise RulesError(f"{where}: `allow.{key}` must be true or false")
    return Allow(
        ids=frozenset(_names(where, "allow.id", raw.get("id", []))),
        groups=frozenset(_names(where, "allow.groups", raw.get("groups", []))),
        members=raw.get("members", False),
        unauthenticated=raw.get("unauthenticated", False),
    )


def _names(where: str, key: str, raw: Any) -> tuple[str, ...]:
    found = [raw] if isinstance(raw, str) else raw
    if not isinstance(found, list) or not all(isinstance(n, str) and n for n in found):
        raise RulesError(f"{where}: `{key}` must be a string or a list of non-empty strings")
    return tuple(found)
