"""Who a request is: the Reader that identity hands to the permissions (readers.py).

Three ways, tried in this order:
1. the single-sign-on proxy's header (`remote_user_header`, default `Remote-User`), believed
   only when the request comes from an address in `trusted_proxies`: from anywhere else it
   is ignored, and logged with the address it came from;
2. the session cookie of the built-in sign-in (sessions.py), while its reader still exists
   in the same generation;
3. a feed token (`?token=` on feed URLs only; Atom readers cannot sign in), while it is not
   revoked.
Anything else is ANONYMOUS. A reader's groups and admin flag come from the readers table;
a proxy user without a row is a plain signed-in reader.

The table is read through a cache of `CACHE_S`: a password change, a removal or a revoked
token takes effect within that time, and a busy page (its stylesheet, thumbnails) costs one
query a second per reader rather than one a file.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

import psycopg

from chatchannels.publishers.access import readers_store
from chatchannels.publishers.access.connection import KeptConnection
from chatchannels.publishers.access.readers import ANONYMOUS, Reader
from chatchannels.publishers.access.readers_store import ReaderRecord
from chatchannels.publishers.access.sessions import SessionClaim, SessionSigner
from chatchannels.publishers.access.tokens import looks_like_token, token_digest
from chatchannels.settings import Settings, SettingsError

log = logging.getLogger(__name__)
CACHE_S = 1.0
_CACHE_MAX = 10_000
# A proxy's user name: printable, one line, of a sane length; anything else is not a name.
MAX_NAME = 200

Network = IPv4Network | IPv6Network


def parse_networks(text: str, setting: str = "trusted_proxies") -> tuple[Network, ...]:
    """`10.0.0.1, 192.168.0.0/24, ::1` -> networks; a bad entry is a settings error."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise SettingsError(
                f"setting {setting!r}: {entry!r} is not an address or CIDR network ({exc})"
            ) from exc
    return tuple(networks)


def _in(networks: tuple[Network, ...], address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _plausible_name(value: str) -> bool:
    return 0 < len(value) <= MAX_NAME and value.isprintable() and value == value.strip()


@dataclass(frozen=True)
class IdentityConfig:
    trusted_proxies: tuple[Network, ...] = ()
    remote_user_header: str = "Remote-User"
    session_max_age_s: int = 12 * 3600
    cookie_secure: bool = True
    cookie_samesite: str = "Lax"

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityConfig:
        if settings.session_cookie_samesite not in ("Lax", "Strict"):
            raise SettingsError(
                "setting 'session_cookie_samesite': Lax or Strict,"
                f" not {settings.session_cookie_samesite!r}"
            )
        return cls(
            trusted_proxies=parse_networks(settings.trusted_proxies),
            remote_user_header=settings.remote_user_header,
            session_max_age_s=settings.session_max_age_s,
            cookie_secure=settings.session_cookie_secure,
            cookie_samesite=settings.session_cookie_samesite,
        )

    @property
    def session_cookie(self) -> str:
        # `__Host-`: the browser keeps it only if Secure, Path=/ and no Domain, so no other
        # host of the intranet's domain can plant one.
        return "__Host-chatchannels" if self.cookie_secure else "chatchannels"

    @property
    def csrf_cookie(self) -> str:
        return "__Host-chatchannels-csrf" if self.cookie_secure else "chatchannels-csrf"


class ReaderDirectory:
    """The readers table as `serve` reads it: through the server's one kept connection
    (shared with the permissions' catalog), behind a short cache (see the module doc).
    Thread-safe."""

    def __init__(self, conn: KeptConnection, clock: Callable[[], float] = time.monotonic) -> None:
        self.conn = conn
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, object], tuple[float, ReaderRecord | None]] = {}

    def reader(self, name: str) -> ReaderRecord | None:
        return self._cached(("name", name), lambda c: readers_store.read_reader(c, name))

    def token_reader(self, token: str) -> ReaderRecord | None:
        digest = token_digest(token)
        return self._cached(("token", digest), lambda c: readers_store.read_token_reader(c, digest))

    def fresh_reader(self, name: str) -> ReaderRecord | None:
        """Not from the cache: signing in checks the password as it is now."""
        return self.conn.run(lambda c: readers_store.read_reader(c, name))

    def _cached(
        self, key: tuple[str, object], read: Callable[[psycopg.Connection], ReaderRecord | None]
    ) -> ReaderRecord | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        value = self.conn.run(read)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now, value)
        return value

    def close(self) -> None:
        self.conn.close()


class Identity:
    def __init__(self, config: IdentityConfig, directory: ReaderDirectory, key: bytes) -> None:
        self.config = config
        self.directory = directory
        self.sessions = SessionSigner(key, config.session_max_age_s)

    def client_address(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address: a trusted proxy's `X-Forwarded-For` (its last entry, the
        one the proxy added itself: earlier ones are the client's to write), else the peer.
        Failed sign-ins are limited per this address; behind nginx, the peer is nginx."""
        forwarded = headers.get("X-Forwarded-For")
        if forwarded and _in(self.config.trusted_proxies, peer):
            last = forwarded.rsplit(",", 1)[-1].strip()
            try:
                return str(ipaddress.ip_address(last))
            except ValueError:
                pass
        return peer or ""

    def resolve(
        self,
        peer: str | None,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        token: str | None = None,
    ) -> Reader:
        """The reader of a request from `peer` with these headers and cookies; `token` only
        where feed tokens count (feed URLs)."""
        proxied = headers.get(self.config.remote_user_header)
        if proxied is not None:
            if not _in(self.config.trusted_proxies, peer):
                log.warning(
                    "ignored the %s header from %s: not a trusted proxy (trusted_proxies)",
                    self.config.remote_user_header,
                    peer,
                )
            elif _plausible_name(proxied):
                record = self.directory.reader(proxied)
                if record is None:
                    return Reader(proxied, via="proxy")
                return _reader(record, "proxy")
            else:
                log.warning(
                    "ignored a %s header from %s: not a user name",
                    self.config.remote_user_header,
                    peer,
                )
        cookie = cookies.get(self.config.session_cookie)
        if cookie:
            reader = self._session_reader(cookie)
            if reader is not None:
                return reader
        if token and looks_like_token(token):
            record = self.directory.token_reader(token)
            if record is not None:
                return _reader(record, "token")
        return ANONYMOUS

    def session_claim(self, record: ReaderRecord) -> SessionClaim:
        return SessionClaim(record.name, record.epoch, record.created_utc.isoformat())

    def _session_reader(self, cookie: str) -> Reader | None:
        claim = self.sessions.read(cookie)
        if claim is None:
            return None
        record = self.directory.reader(claim.name)
        if record is None or record.password_hash is None:
            return None
        if not claim.matches(record.epoch, record.created_utc.isoformat()):
            return None
        return _reader(record, "session")


def _reader(record: ReaderRecord, via: str) -> Reader:
    return Reader(record.name, record.groups, record.admin, via)
