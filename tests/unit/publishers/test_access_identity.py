"""The pieces of reader identity, pure: paths a URL may name, signed sessions and CSRF
fields, the failure limiter, tokens, passwords, redirects, proxies, and the order in which
a request's proofs count (with the readers table as a dictionary: no store here)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers.access import identity as identity_module
from chatchannels.publishers.access.csrf import CsrfSigner, new_nonce
from chatchannels.publishers.access.identity import (
    Identity,
    IdentityConfig,
    parse_networks,
)
from chatchannels.publishers.access.passwords import hash_password, verify_password
from chatchannels.publishers.access.ratelimit import FailureLimiter
from chatchannels.publishers.access.readers import ANONYMOUS, Reader
from chatchannels.publishers.access.readers_store import ReaderRecord
from chatchannels.publishers.access.sessions import SessionClaim, SessionSigner
from chatchannels.publishers.access.signin import safe_next
from chatchannels.publishers.access.tokens import looks_like_token, new_token, token_digest
from chatchannels.publishers.serve import SEGMENT, site_path_of
from chatchannels.settings import SettingsError, load_settings

KEY = b"k" * 32
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@given(st.text(max_size=80))
def test_a_url_path_names_a_site_file_inside_the_site_or_nothing(path):
    found = site_path_of(path)
    if found is None:
        return
    parts = found.split("/")
    assert all(SEGMENT.fullmatch(p) and not p.startswith(".") for p in parts), found
    root = Path("/srv/site")
    assert (root / found).resolve().is_relative_to(root)


@pytest.mark.parametrize(
    ("url", "site_path"),
    [
        ("/", "index.html"),
        ("/chats/(x)/", "chats/(x)/index.html"),
        ("/feeds/~7E.atom", "feeds/~7E.atom"),
        ("/media/ab/ab" + "0" * 62, "media/ab/ab" + "0" * 62),
        ("/media/ab/cd" + "0" * 62, None),
        ("/../etc/passwd", None),
        ("/.search-index/x", None),
        ("/a\x00b", None),
        ("/chats//x", None),
        ("relative", None),
        ("/a\\b", None),
    ],
)
def test_site_paths(url, site_path):
    assert site_path_of(url) == site_path


def test_a_session_is_valid_only_as_signed_and_while_young():
    signer = SessionSigner(KEY, max_age_s=60)
    claim = SessionClaim("alice", 3, CREATED.isoformat())
    cookie = signer.issue(claim)
    assert signer.read(cookie) == claim
    assert SessionSigner(b"another key" * 3, 60).read(cookie) is None
    assert signer.read(cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")) is None
    assert signer.read("") is None and signer.read("not.a.cookie") is None
    assert SessionSigner(KEY, max_age_s=-1).read(cookie) is None
    assert claim.matches(3, CREATED.isoformat()) and not claim.matches(4, CREATED.isoformat())


def test_a_csrf_field_verifies_only_with_its_own_cookie_nonce():
    signer = CsrfSigner(KEY)
    nonce, other = new_nonce(), new_nonce()
    field = signer.form_field(nonce)
    assert signer.verify(field, nonce)
    assert not signer.verify(field, other)
    assert not signer.verify(CsrfSigner(b"x" * 32).form_field(nonce), nonce)
    assert not signer.verify("", nonce) and not signer.verify(field, "")


def test_failures_are_limited_per_key_within_the_window():
    now = [0.0]
    limiter = FailureLimiter(3, 60, clock=lambda: now[0])
    keys = [("address", "10.0.0.1"), ("name", "bob")]
    for _ in range(3):
        assert limiter.retry_after(keys) == 0
        limiter.failed(keys)
    assert limiter.retry_after(keys) == 60
    assert limiter.retry_after([("name", "bob")]) == 60
    assert limiter.retry_after([("address", "10.0.0.2"), ("name", "carol")]) == 0
    now[0] = 30
    assert limiter.retry_after(keys) == 30
    limiter.succeeded(("name", "bob"))
    # The name is cleared; the guessing address is not.
    assert limiter.retry_after([("name", "bob")]) == 0
    assert limiter.retry_after(keys) == 30
    now[0] = 60
    assert limiter.retry_after(keys) == 0


def test_tokens_are_random_urlsafe_and_kept_as_digests():
    token = new_token()
    assert looks_like_token(token) and token != new_token()
    assert len(token_digest(token)) == 32 and token_digest(token) == token_digest(token)
    assert not looks_like_token(token + "x") and not looks_like_token("a b" * 15)


def test_passwords_are_argon2_hashes_and_unknown_names_never_match():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "correct horse")
    assert not verify_password("not a hash", "x")
    with pytest.raises(ValueError):
        hash_password("")


@pytest.mark.parametrize(
    ("target", "goes"),
    [
        ("/chats/x/", "/chats/x/"),
        ("/search?q=a", "/search?q=a"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\r\nSet-Cookie: x", "/"),
        (None, "/"),
    ],
)
def test_after_sign_in_only_a_path_of_this_site(target, goes):
    assert safe_next(target) == goes


def test_trusted_proxies_parse_and_bad_ones_are_a_settings_error():
    nets = parse_networks("10.0.0.0/8, ::1,192.168.1.7")
    assert identity_module._in(nets, "10.1.2.3") and identity_module._in(nets, "::1")
    assert identity_module._in(nets, "::ffff:192.168.1.7")
    assert not identity_module._in(nets, "192.168.1.8") and not identity_module._in(nets, None)
    assert not identity_module._in(nets, "not an address")
    with pytest.raises(SettingsError, match="trusted_proxies"):
        parse_networks("10.0.0.0/8, intranet")


def test_the_readers_settings_load_from_text(tmp_path):
    settings = load_settings(
        environ={
            "CHATCHANNELS_SESSION_COOKIE_SECURE": "off",
            "CHATCHANNELS_TRUSTED_PROXIES": "10.0.0.1",
        }
    )
    assert settings.session_cookie_secure is False and settings.trusted_proxies == "10.0.0.1"
    with pytest.raises(SettingsError, match="session_cookie_secure"):
        load_settings(environ={"CHATCHANNELS_SESSION_COOKIE_SECURE": "maybe"})
    config = IdentityConfig.from_settings(settings)
    assert config.session_cookie == "chatchannels" and config.trusted_proxies
    with pytest.raises(SettingsError, match="Lax or Strict"):
        IdentityConfig.from_settings(settings.replace(session_cookie_samesite="None"))


class Directory:
    """The readers table as a dictionary (unit tests only; the real one is tested live)."""

    def __init__(self, *records: ReaderRecord, tokens: dict[str, str] | None = None) -> None:
        self.records = {r.name: r for r in records}
        self.tokens = tokens or {}

    def reader(self, name):
        return self.records.get(name)

    def token_reader(self, token):
        return self.records.get(self.tokens.get(token, ""))


def record(name: str, admin: bool = False, epoch: int = 0) -> ReaderRecord:
    return ReaderRecord(name, "$argon2id$...", admin, frozenset({"staff"}), epoch, CREATED)


def test_the_order_of_proofs_and_who_may_give_them(caplog):
    token = new_token()
    directory = Directory(record("alice", admin=True), record("bob"), tokens={token: "bob"})
    config = IdentityConfig(trusted_proxies=parse_networks("10.0.0.9"))
    identity = Identity(config, directory, KEY)  # type: ignore[arg-type]
    session = identity.sessions.issue(identity.session_claim(record("bob")))
    cookies = {config.session_cookie: session}

    assert identity.resolve("10.0.0.9", {"Remote-User": "alice"}, cookies) == Reader(
        "alice", frozenset({"staff"}), True, "proxy"
    )
    assert identity.resolve("10.0.0.9", {"Remote-User": "carol"}, {}) == Reader(
        "carol", via="proxy"
    )
    with caplog.at_level(logging.WARNING):
        forged = identity.resolve("10.0.0.8", {"Remote-User": "alice"}, {})
        bad_name = identity.resolve("10.0.0.9", {"Remote-User": " alice\n"}, {})
    assert forged == ANONYMOUS and bad_name == ANONYMOUS
    assert "from 10.0.0.8: not a trusted proxy" in caplog.text
    assert identity.resolve("10.0.0.8", {"Remote-User": "alice"}, cookies).name == "bob"
    assert identity.resolve("10.0.0.8", {}, cookies).via == "session"
    assert identity.resolve("10.0.0.8", {}, {}, token=token) == Reader(
        "bob", frozenset({"staff"}), False, "token"
    )
    assert identity.resolve("10.0.0.8", {}, {}, token=token[:-1]) == ANONYMOUS
    # A session from before a password change (another epoch) is nobody's.
    directory.records["bob"] = record("bob", epoch=1)
    assert identity.resolve("10.0.0.8", {}, cookies) == ANONYMOUS


def test_the_client_address_is_the_trusted_proxys_last_forwarded_entry():
    config = IdentityConfig(trusted_proxies=parse_networks("10.0.0.9"))
    identity = Identity(config, Directory(), KEY)  # type: ignore[arg-type]
    # The client writes what it likes first; the proxy appends the address it saw.
    forwarded = {"X-Forwarded-For": "1.2.3.4, 192.168.5.5"}
    assert identity.client_address("10.0.0.9", forwarded) == "192.168.5.5"
    assert identity.client_address("10.0.0.8", forwarded) == "10.0.0.8"
    assert identity.client_address("10.0.0.9", {"X-Forwarded-For": "junk"}) == "10.0.0.9"
    assert identity.client_address("10.0.0.9", {}) == "10.0.0.9"
