"""What the permissions look at, read from the store: every chat with its title and its
participants' handles, the map from Skype handles to user names (`reader_handles`), and which
chats show an archived file.

Kept in memory and read again when the store changes, so that checking a request costs no
query: at most every RECHECK_S a small query reads the store's newest change_seq and a digest
of the handle map, and a difference reloads everything. A new member, a removed handle or a
changed title therefore takes effect within RECHECK_S plus one reload (well under a second).
Which chats show a file is asked per file, when a reader fetches it, and kept until the next
reload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg

from chatchannels.publishers import store
from chatchannels.publishers.access.connection import KeptConnection
from chatchannels.publishers.access.rules import ChatFacts
from chatchannels.publishers.names import handles_in_name
from chatchannels.publishers.paths import DIGEST_MARK, encode_chat_name

RECHECK_S = 0.5
# Files whose chats are remembered between reloads (a page of thumbnails asks for dozens).
MEDIA_REMEMBERED = 10_000

_VERSION = (
    "SELECT coalesce((SELECT max(change_seq) FROM changes), 0),"
    " to_regclass('reader_handles') IS NOT NULL"
)
# The handle map is small (one row a person): its digest says whether it changed.
_HANDLES_VERSION = (
    "SELECT count(*), coalesce(md5(string_agg(handle || chr(31) || reader, chr(30)"
    " ORDER BY handle)), '') FROM reader_handles"
)


@dataclass(frozen=True)
class Snapshot:
    """The catalog as of one version of the store."""

    version: tuple
    chats: Mapping[str, ChatFacts]
    # Lower-case Skype handle -> user name.
    handle_readers: Mapping[str, str]
    # File-name component -> chat name, for the names too long to decode (paths.py).
    shortened: Mapping[str, str]
    # sha256 -> chats, filled as files are asked for.
    media: dict[str, frozenset[str]] = field(default_factory=dict)

    def member_chats(self, reader_name: str) -> frozenset[str]:
        handles = {h for h, name in self.handle_readers.items() if name == reader_name}
        if not handles:
            return frozenset()
        return frozenset(
            chat.name
            for chat in self.chats.values()
            if any(h.lower() in handles for h in chat.handles)
        )


class Catalog:
    """Reads through `conn` (read-only is enough). Safe to share between threads."""

    def __init__(
        self,
        conn: KeptConnection,
        recheck_s: float = RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked = float("-inf")

    @classmethod
    def of_dsn(cls, dsn: str, **kwargs) -> Catalog:
        return cls(KeptConnection.of_dsn(dsn), **kwargs)

    def close(self) -> None:
        self._conn.close()

    def current(self) -> Snapshot:
        """The catalog, read again if the store changed since it was last read (asked at most
        every `recheck_s`)."""
        with self._lock:
            now = self._clock()
            if self._snapshot is None or now - self._checked >= self._recheck_s:
                self._snapshot = self._conn.run(self._refresh)
                self._checked = now
            return self._snapshot

    def media_chats(self, sha256: str) -> frozenset[str]:
        """The chats whose messages show the archived file."""
        snapshot = self.current()
        found = snapshot.media.get(sha256)
        if found is None:
            found = frozenset(self._conn.run(lambda conn: store.read_media_chats(conn, sha256)))
            if len(snapshot.media) >= MEDIA_REMEMBERED:
                snapshot.media.clear()
            snapshot.media[sha256] = found
        return found

    def _refresh(self, conn: psycopg.Connection) -> Snapshot:
        seq, has_handles = conn.execute(_VERSION).fetchone()
        handles_version = conn.execute(_HANDLES_VERSION).fetchone() if has_handles else None
        version = (seq, handles_version)
        if self._snapshot is not None and self._snapshot.version == version:
            return self._snapshot
        return read_snapshot(conn, version, has_handles)


def read_snapshot(conn: psycopg.Connection, version: tuple, has_handles: bool) -> Snapshot:
    names = store.read_chat_names(conn)
    titles = store.read_chat_titles(conn, names)
    members = store.read_chat_members(conn)
    chats = {
        name: ChatFacts(
            name,
            titles[name],
            frozenset(h.lower() for h in (*members.get(name, ()), *handles_in_name(name))),
        )
        for name in names
    }
    # Without WEB's migration (0009_readers) nobody is mapped: the members rule admits no one.
    handle_readers = (
        {h.lower(): r for h, r in conn.execute("SELECT handle, reader FROM reader_handles")}
        if has_handles
        else {}
    )
    shortened = {
        encoded: name for name in names if DIGEST_MARK in (encoded := encode_chat_name(name))
    }
    return Snapshot(version, chats, handle_readers, shortened)
