"""A site every reader may read, for the tests of serving that are not about permissions
(media types, search, status): `make_server(..., access=OPEN_SITE)`. The permissions'
own tests use the real Gate."""

from __future__ import annotations

from chatchannels.publishers.access.readers import Reader
from chatchannels.publishers.serve import Access


class EveryoneReadsEverything:
    def visible_chats(self, reader: Reader) -> frozenset[str] | None:
        return None

    def can_fetch(self, reader: Reader, site_path: str) -> bool:
        return True


OPEN_SITE = Access(gate=EveryoneReadsEverything())
