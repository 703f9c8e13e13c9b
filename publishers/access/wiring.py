"""`serve`'s access, built once from settings: the readers' store, the session key, the
sign-in's limits, the Gate that decides what each reader sees and the per-reader pages."""

from __future__ import annotations

from pathlib import Path

from chatchannels.publishers.access.catalog import Catalog
from chatchannels.publishers.access.connection import KeptConnection
from chatchannels.publishers.access.gate import Gate
from chatchannels.publishers.access.identity import Identity, IdentityConfig, ReaderDirectory
from chatchannels.publishers.access.ratelimit import FailureLimiter
from chatchannels.publishers.access.reader_pages import ReaderPages
from chatchannels.publishers.access.signin import SignIn
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.serve import Access
from chatchannels.secret_files import ensure_secret
from chatchannels.settings import Settings
from chatchannels.store_contract import schema_dsn

SESSION_KEY = "session.key"


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies and CSRF fields, made on first use (0600)."""
    return ensure_secret(settings.secrets_root / SESSION_KEY).encode()


def build_identity(settings: Settings, conn: KeptConnection) -> tuple[Identity, SignIn]:
    key = session_key(settings)
    identity = Identity(IdentityConfig.from_settings(settings), ReaderDirectory(conn), key)
    limiter = FailureLimiter(settings.login_max_failures, settings.login_window_s)
    signin = SignIn(identity, limiter, key, PageRenderer(settings.time_zone).env)
    return identity, signin


def reader_access(settings: Settings, site_dir: Path) -> Access:
    """Identity and permissions over one kept connection to the store (read-only use)."""
    conn = KeptConnection.of_dsn(schema_dsn(settings.reader_postgres_dsn, settings.schema))
    gate = Gate(settings.permissions, Catalog(conn))
    pages = ReaderPages(gate, conn, site_dir, settings.time_zone)
    identity, signin = build_identity(settings, conn)
    return Access(gate=gate, identity=identity, pages=pages, signin=signin)
