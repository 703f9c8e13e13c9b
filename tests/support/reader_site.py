"""A small site on disk and `serve` in front of it with the real identity (readers in a real
store), for the tests of who reads: the files are what a publish writes, by name."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers.access import readers_store
from chatchannels.publishers.access.passwords import hash_password
from chatchannels.publishers.access.wiring import reader_access
from chatchannels.publishers.serve import SiteServer, make_server
from chatchannels.settings import Settings

MEDIA_SHA = "ab" + "0123456789abcdef" * 3 + "0123456789abcd"
SITE_FILES = {
    "index.html": "<p>every chat</p>",
    "style.css": "body {}",
    "chats/secret/index.html": "<p>the secret chat</p>",
    "chats/secret/2006-06.html": "<p>June in the secret chat</p>",
    "feeds/secret.atom": "<feed>secret</feed>",
    "feeds/secret/2006-06.atom": "<feed>secret June</feed>",
    f"media/ab/{MEDIA_SHA}": "a file someone sent",
    ".chatchannels-site.json": "{}",
}
PASSWORDS = {"alice": "alice's long passphrase", "bob": "bob's long passphrase"}


def write_site(site: Path) -> None:
    for name, text in SITE_FILES.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def add_readers(dsn: str) -> None:
    """alice, an administrator; bob, not."""
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        readers_store.add_reader(conn, "alice", hash_password(PASSWORDS["alice"]), admin=True)
        readers_store.add_reader(conn, "bob", hash_password(PASSWORDS["bob"]), groups=["staff"])


@contextmanager
def serving(settings: Settings, site: Path) -> Iterator[SiteServer]:
    """`serve` as the command builds it: identity and the Gate of `settings.permissions`
    (none: administrators read everything, nobody else anything)."""
    server = make_server(site, "127.0.0.1", 0, access=reader_access(settings, site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
