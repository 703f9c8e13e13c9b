"""Who is reading: the one value identity (how a request proves who it is) hands to the
permissions (what that reader may see). Neither side needs to know how the other works."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reader:
    # None: nobody signed in. Otherwise the intranet user name, as the proxy or the readers
    # table spells it; Skype handles are mapped to these names, never the other way.
    name: str | None
    groups: frozenset[str] = frozenset()
    admin: bool = False
    # How the request proved it: "anonymous", "session", "proxy" or "token".
    via: str = "anonymous"

    @property
    def signed_in(self) -> bool:
        return self.name is not None


ANONYMOUS = Reader(None)
