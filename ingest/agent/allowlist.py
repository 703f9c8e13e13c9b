"""Which chats the agent may read: the opt-in list from the config.

Pure. A chat is allowed when its name is listed exactly, or when one of the patterns (Python
regular expressions, searched anywhere) matches its name or its topic. Nothing else is ever
read: the agent asks Skype for a chat's topic only to evaluate the patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


class AllowListError(ValueError):
    """The allow-list is empty or has a bad pattern; the message says which and why."""


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()
    everything: bool = False

    @classmethod
    def build(
        cls, names: Iterable[str], patterns: Iterable[str], everything: bool = False
    ) -> AllowList:
        """Raises AllowListError for a bad pattern, or for an empty list without `everything`."""
        compiled = []
        for index, text in enumerate(patterns):
            try:
                compiled.append(re.compile(text))
            except re.error as exc:
                raise AllowListError(
                    f"chat_patterns[{index}] {text!r} is not a regex: {exc}"
                ) from None
        allow = cls(frozenset(names), tuple(compiled), everything)
        if not allow.everything and not allow.names and not allow.patterns:
            raise AllowListError(
                "no chats to archive: list them in the config (chats = [...] by name, or "
                "chat_patterns = [...] over name and topic); the agent reads only those. "
                "To archive every chat on purpose, run with --all-chats"
            )
        return allow

    @property
    def needs_topic(self) -> bool:
        """Whether deciding may depend on the topic (so it must be read for unlisted names)."""
        return bool(self.patterns) and not self.everything

    def allows(self, name: str, topic: str | None = None) -> bool:
        if self.everything or name in self.names:
            return True
        return any(p.search(name) or (topic is not None and p.search(topic)) for p in self.patterns)
