"""What a reader may see: the one question `serve` asks, for every path the site has.

The server resolves who the reader is (identity) and asks the Gate; the Gate applies the
settings' permissions (rules.py) to the store's chats (catalog.py). A path is allowed only if
it is one of the site's known kinds and its chat is readable; anything else is refused, and
the server answers a refused path exactly as a missing one (404), so that a reader cannot
tell a chat they may not read from one that does not exist.

Paths are relative to the site root, percent-decoded and normalised by the server:
- `style.css`: everyone;
- `chats/<enc>[/...]`, `feeds/<enc>.atom`, `feeds/<enc>/<YYYY-MM>.atom`: the chat's readers
  (`<enc>` is paths.encode_chat_name; a shortened name is looked up in the catalog);
- `media/<aa>/<sha256>`, `thumbs/<aa>/<sha256>.jpg`: readers of any chat showing the file;
- the site-wide pages (`index.html`, `feeds/all.atom`, `stats.html`) list every chat: only
  administrators get the static files, everyone else the per-reader pages (reader_pages.py).
"""

from __future__ import annotations

import re
import threading

from chatchannels.publishers import paths
from chatchannels.publishers.access.catalog import Catalog, Snapshot
from chatchannels.publishers.access.readers import Reader
from chatchannels.publishers.access.rules import Permissions, admitted

EVERYONE = frozenset({"style.css"})
SITE_WIDE = frozenset({"", "index.html", paths.ALL_FEED_PATH, paths.STATS_PATH})
_MONTH = r"\d{4}-(?:0[1-9]|1[0-2])"
_CHAT_FILE = re.compile(
    rf"(?:index\.html|stats\.html|{_MONTH}\.html|{_MONTH}{re.escape(paths.MANIFEST_SUFFIX)})?"
)
_ARCHIVE = re.compile(rf"{_MONTH}\.atom")
_SHA = re.compile(r"[0-9a-f]{64}")
# Readers whose visible chats are remembered per catalog version.
REMEMBERED_READERS = 4096


class Gate:
    def __init__(self, permissions: Permissions, catalog: Catalog) -> None:
        self.permissions = permissions
        self.catalog = catalog
        self._lock = threading.Lock()
        self._version: tuple | None = None
        # Per catalog version: each chat's covering allow blocks, and each reader's chats.
        self._covering: dict[str, tuple] = {}
        self._visible: dict[Reader, frozenset[str]] = {}

    def visible_chats(self, reader: Reader) -> frozenset[str] | None:
        """The chats the reader may read; None for every chat (administrators)."""
        if reader.admin:
            return None
        return self._visible_in(self.catalog.current(), reader)

    def can_read_chat(self, reader: Reader, chat: str) -> bool:
        visible = self.visible_chats(reader)
        return visible is None or chat in visible

    def can_fetch(self, reader: Reader, site_path: str) -> bool:
        """Whether the reader may fetch this site file (see the module doc)."""
        if site_path in EVERYONE:
            return True
        if site_path in SITE_WIDE:
            return reader.admin
        parts = site_path.split("/")
        kind = parts[0]
        if kind == "chats" and 2 <= len(parts) <= 3:
            if len(parts) == 3 and not _CHAT_FILE.fullmatch(parts[2]):
                return False
            return self._component_readable(reader, parts[1])
        if kind == "feeds" and len(parts) == 2 and parts[1].endswith(".atom"):
            return self._component_readable(reader, parts[1][: -len(".atom")])
        if kind == "feeds" and len(parts) == 3 and _ARCHIVE.fullmatch(parts[2]):
            return self._component_readable(reader, parts[1])
        if kind in ("media", "thumbs") and len(parts) == 3:
            sha = parts[2]
            if kind == "thumbs":
                if not sha.endswith(".jpg"):
                    return False
                sha = sha[: -len(".jpg")]
            if not _SHA.fullmatch(sha) or parts[1] != sha[:2]:
                return False
            if reader.admin:
                return True
            visible = self.visible_chats(reader)
            return visible is not None and not visible.isdisjoint(self.catalog.media_chats(sha))
        return False

    def _component_readable(self, reader: Reader, component: str) -> bool:
        snapshot = self.catalog.current()
        try:
            chat = paths.decode_chat_name(component)
        except paths.ChatNameError:
            found = snapshot.shortened.get(component)
            if found is None:
                return False
            chat = found
        if reader.admin:
            return True
        return chat in self._visible_in(snapshot, reader)

    def _visible_in(self, snapshot: Snapshot, reader: Reader) -> frozenset[str]:
        with self._lock:
            if snapshot.version != self._version:
                self._version = snapshot.version
                self._covering = {
                    name: self.permissions.covering(chat) for name, chat in snapshot.chats.items()
                }
                self._visible = {}
            found = self._visible.get(reader)
            if found is not None:
                return found
            members = snapshot.member_chats(reader.name) if reader.signed_in else frozenset()
            found = frozenset(
                name
                for name, allows in self._covering.items()
                if allows and admitted(reader, allows, lambda name=name: name in members)
            )
            if len(self._visible) >= REMEMBERED_READERS:
                self._visible.clear()
            self._visible[reader] = found
            return found
