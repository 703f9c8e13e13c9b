"""Signed session cookies (itsdangerous): who signed in, and which generation of that reader.

The cookie holds the reader's name, the epoch it was issued in and the reader's creation
time, signed with the server's `session.key` and stamped with the time it was issued. It is
valid while the signature holds, it is younger than the session's lifetime, and the reader
still exists with the same epoch and creation time: a password change bumps the epoch and
removing the reader deletes the row, so either ends every session opened before (a reader
removed and added again is a new generation too). Nothing secret is in the cookie: it is
signed, not encrypted, and holds no password.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer

SESSION_SALT = "chatchannels.session"


@dataclass(frozen=True)
class SessionClaim:
    name: str
    epoch: int
    created: str  # the reader row's created_utc, ISO 8601

    def matches(self, epoch: int, created: str) -> bool:
        return (self.epoch, self.created) == (epoch, created)


class SessionSigner:
    def __init__(self, key: bytes, max_age_s: int) -> None:
        self.max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(key, salt=SESSION_SALT)

    def issue(self, claim: SessionClaim) -> str:
        return self._serializer.dumps([claim.name, claim.epoch, claim.created])

    def read(self, cookie: str) -> SessionClaim | None:
        """The claim of a cookie this server signed within max_age_s; None for anything else
        (forged, altered, expired, or not a session cookie at all)."""
        try:
            name, epoch, created = self._serializer.loads(cookie, max_age=self.max_age_s)
        except (BadData, ValueError, TypeError):
            return None
        if not (isinstance(name, str) and type(epoch) is int and isinstance(created, str)):
            return None
        return SessionClaim(name, epoch, created)
