"""`serve`'s access, built once from settings: the readers' store, the session key, the
sign-in's limits, and the Gate that decides what each reader sees."""

from __future__ import annotations

from pathlib import Path

from chatchannels.publishers.access.identity import Identity, IdentityConfig, ReaderDirectory
from chatchannels.publishers.access.ratelimit import FailureLimiter
from chatchannels.publishers.access.signin import SignIn
from chatchannels.publishers.pages import PageRenderer
from chatchannels.publishers.serve import Access, Gate, ReaderPages
from chatchannels.secret_files import ensure_secret
from chatchannels.settings import Settings
from chatchannels.store_contract import schema_dsn

SESSION_KEY = "session.key"


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies and CSRF fields, made on first use (0600)."""
    return ensure_secret(settings.secrets_root / SESSION_KEY).encode()


def build_identity(settings: Settings) -> tuple[Identity, SignIn]:
    key = session_key(settings)
    config = IdentityConfig.from_settings(settings)
    directory = ReaderDirectory(schema_dsn(settings.postgres_dsn, settings.schema))
    identity = Identity(config, directory, key)
    limiter = FailureLimiter(settings.login_max_failures, settings.login_window_s)
    signin = SignIn(identity, limiter, key, PageRenderer(settings.time_zone).env)
    return identity, signin


def build_access(
    settings: Settings, site_dir: Path, gate: Gate, pages: ReaderPages | None
) -> Access:
    identity, signin = build_identity(settings)
    return Access(gate=gate, identity=identity, pages=pages, signin=signin)


class AdminsOnly:
    """Until the permissions' Gate is wired: administrators read everything, everyone the
    stylesheet (private by default)."""

    def visible_chats(self, reader):  # type: ignore[no-untyped-def]
        return None if reader.admin else frozenset()

    def can_fetch(self, reader, site_path: str) -> bool:  # type: ignore[no-untyped-def]
        return reader.admin or site_path == "style.css"


def reader_access(settings: Settings, site_dir: Path) -> Access:
    return build_access(settings, site_dir, AdminsOnly(), None)
