"""A chat's mark: the id up to which every message of the chat is in the spool.

The agent starts each backfill from the mark (less a small overlap), so a mark that claims a
message never written loses that message for good. A backfill therefore walks up the chat's
message list and moves the mark only over ids whose full read is written: a read put off
(Skype quit), timed out, or skipped because another read of the same message was in flight
holds the mark below it until some read captures it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable


class MarkWalk:
    def __init__(self, listed: Iterable[int], mark: int | None) -> None:
        # The ids the chat listed above its mark when the backfill began, ascending.
        self.ids = sorted(i for i in set(listed) if mark is None or i > mark)
        self._passed = 0

    def advance(self, captured: Container[int]) -> int | None:
        """The highest listed id with every listed id up to it in `captured`, if any."""
        while self._passed < len(self.ids) and self.ids[self._passed] in captured:
            self._passed += 1
        return self.ids[self._passed - 1] if self._passed else None
