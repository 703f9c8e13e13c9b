"""Who reads, against the real server and a real store, tried as an attacker would: sign-in
and its cookie, CSRF, guessing, sessions that must end, a forged proxy header, feed tokens,
nginx's auth_request. Two readers: alice (an administrator, reads everything) and bob."""

from __future__ import annotations

import logging
from urllib.parse import quote

import psycopg
import pytest

from chatchannels.publishers.access import identity as identity_module
from chatchannels.publishers.access import readers_store
from chatchannels.publishers.access.passwords import hash_password
from chatchannels.settings import Settings
from chatchannels.stack.processes import wait_for
from tests.support.reader_site import MEDIA_SHA, PASSWORDS, add_readers, serving, write_site
from tests.support.web_client import Browserless, raw_exchange

pytestmark = pytest.mark.integration
SECRET = "/chats/secret/index.html"
PRIVATE_PATHS = [
    SECRET,
    "/chats/secret/",
    "/chats/secret/2006-06.html",
    "/feeds/secret.atom",
    "/feeds/secret/2006-06.atom",
    f"/media/ab/{MEDIA_SHA}",
]


@pytest.fixture
def site(tmp_path):
    write_site(tmp_path / "site")
    return tmp_path / "site"


def settings_for(tmp_path, pg_dsn: str, **changes) -> Settings:
    base = Settings(
        stack_dir=tmp_path,
        secrets_dir=str(tmp_path / "secrets"),
        dsn=pg_dsn,
        login_max_failures=3,
        login_window_s=60,
    )
    return base.replace(**changes)


@pytest.fixture
def server(tmp_path, pg_dsn, site):
    add_readers(pg_dsn)
    with serving(settings_for(tmp_path, pg_dsn), site) as running:
        yield running


def client(server) -> Browserless:
    return Browserless("127.0.0.1", server.server_address[1])


def eventually(check, what: str, timeout: float = 10.0):
    """Poll `check` until it returns a true value; the last value is reported on timeout."""
    return wait_for(what, check, timeout, interval=0.05)


def without_path(answer, path: str) -> str:
    return answer.text.replace(quote(path, safe=""), "PATH")


def test_sign_in_sets_a_session_cookie_with_every_flag_and_opens_the_private_pages(server, caplog):
    caplog.set_level(logging.DEBUG)
    alice = client(server)
    assert alice.sign_in("alice", "a wrong password").status == 401
    for path in PRIVATE_PATHS:
        assert alice.get(path).status == 404, path
    answer = alice.sign_in("alice", PASSWORDS["alice"], next_path=SECRET)
    assert (answer.status, answer.header("Location")) == (303, SECRET)
    cookie = answer.set_cookies()["__Host-chatchannels"]
    flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path", "max-age", "samesite"} <= flags, cookie
    assert "SameSite=Lax" in cookie and "Path=/" in cookie and "Max-Age=43200" in cookie
    assert "Domain" not in cookie
    for path in PRIVATE_PATHS:
        assert alice.get(path).status == 200, path
    assert b"the secret chat" in alice.get(SECRET).body
    # Signing out: the cookie is removed, the pages close again.
    out = alice.sign_out()
    assert out.status == 303 and "Max-Age=0" in out.set_cookies()["__Host-chatchannels"]
    assert alice.get(SECRET).status == 404
    # The log tells who signed in, from where; never a password or a cookie.
    assert "alice signed in from 127.0.0.1" in caplog.text
    for secret in (PASSWORDS["alice"], "a wrong password", cookie.split(";")[0].split("=", 1)[1]):
        assert secret not in caplog.text


def test_a_reader_without_the_right_gets_a_404_exactly_like_a_missing_page(server):
    bob = client(server)
    assert bob.sign_in("bob", PASSWORDS["bob"]).status == 303
    # The index is bob's own: the chats he may read (none), never the static list of all.
    index = bob.get("/")
    assert index.status == 200 and b"every chat" not in index.body
    missing = "/chats/nosuch/index.html"
    for path in PRIVATE_PATHS:
        hidden = bob.get(path)
        absent = bob.get(missing)
        assert hidden.status == absent.status == 404, path
        assert without_path(hidden, path) == without_path(absent, missing), path
    assert bob.get("/style.css").status == 200
    # The 404 of an anonymous reader offers to sign in; it does not say the page exists.
    anonymous = client(server).get(SECRET)
    assert anonymous.status == 404 and 'href="/login?next=' in anonymous.text


def test_path_tricks_reach_nothing(server):
    bob = client(server)
    bob.sign_in("bob", PASSWORDS["bob"])
    tricks = [
        "/style.css/../chats/secret/index.html",
        "/chats/x/..%2fsecret/index.html",
        "/chats/%2e%2e/chats/secret/index.html",
        "/%2e%2e/site/chats/secret/index.html",
        "/chats/secret%2findex.html",
        "/chats//secret/index.html",
        "/chats/secret/index.html%00.css",
        "/chats/secret/index.html;.css",
        "/.chatchannels-site.json",
        "/chats/%252e%252e/secret/index.html",
        "/media/ab/../ab/" + MEDIA_SHA,
        "/CHATS/secret/index.html",
    ]
    for path in tricks:
        assert bob.get(path).status in (400, 404), path


def test_even_an_administrator_reaches_no_file_outside_the_site_nor_a_dot_file(server, site):
    (site.parent / "outside.txt").write_text("not the site's")
    alice = client(server)
    alice.sign_in("alice", PASSWORDS["alice"])
    cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
    for target in (
        b"/../outside.txt",
        b"/chats/../../outside.txt",
        b"/%2e%2e/outside.txt",
        b"/chats/%2e%2e%2f%2e%2e%2foutside.txt",
        b"/./index.html",
        b"/.chatchannels-site.json",
        b"/chats/secret/.hidden",
    ):
        request = b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nCookie: " + cookie.encode()
        reply = raw_exchange(alice.host, alice.port, request + b"\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 404 "), (target, reply[:100])
        assert b"not the site's" not in reply and b"{}" not in reply.split(b"\r\n\r\n", 1)[1]


def test_wrong_passwords_are_refused_then_limited_per_name_and_per_address(server):
    guesser = client(server)
    for _ in range(3):
        assert guesser.sign_in("bob", "guess").status == 401
    # The limit holds even for the right password, and says when to come back.
    limited = guesser.sign_in("bob", PASSWORDS["bob"])
    assert limited.status == 429 and 0 < int(limited.header("Retry-After")) <= 60
    assert "__Host-chatchannels" not in limited.set_cookies()
    # Per address: the same client guessing another name is limited too.
    assert guesser.sign_in("alice", PASSWORDS["alice"]).status == 429
    # An unknown name fails the same way as a wrong password.
    other = Browserless(guesser.host, guesser.port)
    assert other.sign_in("nobody", "x").status == 429  # same address: 127.0.0.1


def test_login_and_logout_need_the_forms_csrf_field(server):
    attacker = client(server)
    form = {"name": "alice", "password": PASSWORDS["alice"], "next": "/"}
    # A cross-site POST: no field, no cookie.
    assert attacker.request("POST", "/login", form=form).status == 400
    # A field from the attacker's own visit, with the victim's (different) cookie nonce.
    attacker.get("/login")
    stolen_field = "x" + "A" * 40
    assert attacker.request("POST", "/login", form={**form, "csrf": stolen_field}).status == 400
    victim = client(server)
    victim.sign_in("alice", PASSWORDS["alice"])
    their_form = attacker.get("/login").text
    field = their_form.split('name="csrf" value="')[1].split('"')[0]
    victim.cookies.pop("__Host-chatchannels-csrf")
    victim.get("/login")  # the victim's own nonce, which the attacker's field does not sign
    assert victim.request("POST", "/logout", form={"csrf": field}).status == 400
    assert victim.get(SECRET).status == 200
    # An open redirect is not on offer.
    answer = client(server).sign_in("alice", PASSWORDS["alice"], next_path="//evil.example/")
    assert answer.header("Location") == "/"


def test_a_password_change_or_a_removal_ends_the_readers_sessions(server, pg_dsn):
    alice = client(server)
    alice.sign_in("alice", PASSWORDS["alice"])
    assert alice.get(SECRET).status == 200
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        readers_store.set_password(conn, "alice", hash_password("a new passphrase"))
    eventually(lambda: alice.get(SECRET).status == 404, "the old session to end")
    assert alice.sign_in("alice", "a new passphrase").status == 303
    assert alice.get(SECRET).status == 200
    cookie = dict(alice.cookies)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        readers_store.remove_reader(conn, "alice")
        readers_store.add_reader(conn, "alice", hash_password("again"), admin=True)
    # Removed and added again: a new reader, whose old cookie opens nothing.
    later = client(server)
    later.cookies.update(cookie)
    eventually(lambda: later.get(SECRET).status == 404, "the removed reader's session to end")


def test_a_tampered_or_foreign_cookie_is_nobody(server, tmp_path, pg_dsn, site):
    alice, bob = client(server), client(server)
    alice.sign_in("alice", PASSWORDS["alice"])
    bob.sign_in("bob", PASSWORDS["bob"])
    alice_claim = alice.cookies["__Host-chatchannels"].split(".")[0]
    _, stamp, signature = bob.cookies["__Host-chatchannels"].split(".")
    # bob's signature on alice's claim (an administrator's name, epoch and creation time).
    bob.cookies["__Host-chatchannels"] = f"{alice_claim}.{stamp}.{signature}"
    assert bob.get(SECRET).status == 404
    bob.cookies["__Host-chatchannels"] = f"{alice_claim}.{stamp}.{'A' * len(signature)}"
    assert bob.get(SECRET).status == 404
    # A cookie signed by another server's key (another install, an old key) is nobody's.
    with serving(settings_for(tmp_path / "other", pg_dsn), site) as other:
        elsewhere = client(other)
        assert elsewhere.sign_in("alice", PASSWORDS["alice"]).status == 303
    bob.cookies = dict(elsewhere.cookies)
    assert bob.get(SECRET).status == 404


def test_a_forged_remote_user_from_a_non_proxy_address_gets_nothing(server, caplog):
    forger = client(server)
    with caplog.at_level(logging.WARNING, logger=identity_module.__name__):
        for path in PRIVATE_PATHS:
            assert forger.get(path, headers={"Remote-User": "alice"}).status == 404, path
    assert "ignored the Remote-User header from 127.0.0.1" in caplog.text


def test_the_trusted_proxys_header_names_the_reader(tmp_path, pg_dsn, site):
    add_readers(pg_dsn)
    settings = settings_for(tmp_path, pg_dsn, trusted_proxies="10.0.0.0/8, 127.0.0.1")
    with serving(settings, site) as running:
        proxy = client(running)
        assert proxy.get(SECRET, headers={"Remote-User": "alice"}).status == 200
        assert proxy.get(SECRET, headers={"Remote-User": "bob"}).status == 404
        # A name unknown to the readers table is a plain reader, no administrator.
        assert proxy.get(SECRET, headers={"Remote-User": "mallory"}).status == 404
        assert proxy.get(SECRET).status == 404
        # Behind the proxy, failed sign-ins are limited per forwarded client address.
        guesser = {"X-Forwarded-For": "192.168.7.7"}
        form = proxy.get("/login", headers=guesser).text.split('name="csrf" value="')[1]
        attempt = {"csrf": form.split('"')[0], "name": "bob", "password": "guess"}
        for _ in range(3):
            assert proxy.request("POST", "/login", guesser, attempt).status == 401
        assert proxy.request("POST", "/login", guesser, attempt).status == 429
        honest = client(running)
        honest_ip = {"X-Forwarded-For": "192.168.7.8"}
        form = honest.get("/login", headers=honest_ip).text.split('name="csrf" value="')[1]
        signing_in = {"csrf": form.split('"')[0], "name": "alice", "password": PASSWORDS["alice"]}
        assert honest.request("POST", "/login", honest_ip, signing_in).status == 303


def test_feed_tokens_open_feeds_only_until_revoked_and_never_reach_the_log(server, pg_dsn, caplog):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        record, token = readers_store.add_token(conn, "alice", "feed reader")
    reader = client(server)
    with caplog.at_level(logging.DEBUG):
        feed = reader.get(f"/feeds/secret.atom?token={token}")
        assert feed.status == 200 and b"secret" in feed.body
        assert reader.get(f"/feeds/secret/2006-06.atom?token={token}").status == 200
        # Only feeds: the token opens no page, no media.
        assert reader.get(f"{SECRET}?token={token}").status == 404
        assert reader.get(f"/media/ab/{MEDIA_SHA}?token={token}").status == 404
        assert reader.get(f"/feeds/secret.atom?token={token[:-1]}x").status == 404
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            readers_store.revoke_token(conn, record.id)
        eventually(
            lambda: reader.get(f"/feeds/secret.atom?token={token}").status == 404,
            "the revoked token to stop working",
        )
    assert token not in caplog.text
    assert "/feeds/secret.atom 200" in caplog.text


def test_nginx_auth_request_answers_as_serving_would(server):
    alice = client(server)
    alice.sign_in("alice", PASSWORDS["alice"])
    bob = client(server)
    bob.sign_in("bob", PASSWORDS["bob"])

    def auth(who: Browserless, uri: str) -> int:
        return who.get("/_auth", headers={"X-Original-URI": uri}).status

    for path in PRIVATE_PATHS:
        assert (auth(alice, path), auth(bob, path)) == (204, 403), path
    assert auth(bob, "/style.css") == 204
    for trick in ("/chats/x/..%2fsecret/index.html", "/chats/%2e%2e/secret/", "/%00", "/%ff"):
        assert auth(alice, trick) == 403, trick
    # The site-wide pages never come from the static files behind nginx.
    assert auth(alice, "/index.html") == 403
    assert alice.get("/_auth").status == 403
