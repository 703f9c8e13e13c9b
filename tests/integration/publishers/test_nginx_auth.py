"""deploy/nginx's template for real: nginx serves the static files only after serve's
/_auth said this reader may, answers a refusal as serve's own 404, and passes sign-in, the
per-reader pages, search and media to serve. Tried as an attacker would, through nginx."""

from __future__ import annotations

import psycopg
import pytest

from chatchannels.publishers.access import readers_store
from chatchannels.settings import Settings
from chatchannels.stack.processes import wait_for
from tests.support.nginx import running_nginx
from tests.support.reader_site import MEDIA_SHA, PASSWORDS, add_readers, serving, write_site
from tests.support.web_client import Browserless, raw_exchange

pytestmark = pytest.mark.integration
SECRET = "/chats/secret/index.html"


@pytest.fixture
def front(tmp_path, pg_dsn):
    site = tmp_path / "site"
    write_site(site)
    add_readers(pg_dsn)
    settings = Settings(
        stack_dir=tmp_path,
        secrets_dir=str(tmp_path / "secrets"),
        dsn=pg_dsn,
        trusted_proxies="127.0.0.1",
    )
    with serving(settings, site) as server:
        address = f"127.0.0.1:{server.server_address[1]}"
        with running_nginx(tmp_path / "nginx", site, address) as port:
            yield port, tmp_path / "nginx"


def test_nginx_serves_a_reader_only_what_serve_allows(front, pg_dsn):
    port, _ = front
    anonymous = Browserless("127.0.0.1", port)
    hidden = anonymous.get(SECRET)
    assert hidden.status == 404 and 'href="/login?next=' in hidden.text
    missing = anonymous.get("/chats/nosuch/index.html")
    assert missing.status == 404 and "Not found" in missing.text
    assert anonymous.get("/style.css").status == 200
    # A forged Remote-User: nginx replaces it, serve believes nothing.
    assert anonymous.get(SECRET, headers={"Remote-User": "alice"}).status == 404
    # The index is per reader (serve's), never the static list of every chat.
    index = anonymous.get("/", headers={"Remote-User": "alice"})
    assert index.status == 200 and b"every chat" not in index.body

    alice = Browserless("127.0.0.1", port)
    assert alice.sign_in("alice", PASSWORDS["alice"], next_path=SECRET).status == 303
    for path in (SECRET, "/chats/secret/", "/feeds/secret/2006-06.atom", f"/media/ab/{MEDIA_SHA}"):
        assert alice.get(path).status == 200, path
    assert alice.get("/").status == 200 and b"Chat Channels" in alice.get("/").body

    bob = Browserless("127.0.0.1", port)
    bob.sign_in("bob", PASSWORDS["bob"])
    for path in (
        SECRET,
        "/chats/secret/",
        "/chats/secret",
        "/chats/secret/2006-06.html",
        "/feeds/secret.atom",
        f"/media/ab/{MEDIA_SHA}",
        "/chats/x/..%2fsecret/index.html",
        "/chats/%2e%2e/chats/secret/index.html",
        "/style.css/../chats/secret/index.html",
        "/chats//secret/index.html",
        "/.chatchannels-site.json",
    ):
        assert bob.get(path).status in (400, 404), path
    raw = raw_exchange(
        "127.0.0.1",
        port,
        b"GET /chats/../chats/secret/index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        half_close=False,
    )
    assert raw.split(b" ", 2)[1] in (b"400", b"404") and b"the secret chat" not in raw


def test_feed_tokens_through_nginx_and_never_in_its_log(front, pg_dsn):
    port, nginx_dir = front
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        record, token = readers_store.add_token(conn, "alice")
    reader = Browserless("127.0.0.1", port)
    assert reader.get(f"/feeds/secret.atom?token={token}").status == 200
    assert reader.get(f"{SECRET}?token={token}").status == 404
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        readers_store.revoke_token(conn, record.id)
    # serve's cache lets a revocation wait up to a second.
    wait_for(
        "the revoked token to stop opening the feed",
        lambda: reader.get(f"/feeds/secret.atom?token={token}").status == 404,
        10,
    )
    log = (nginx_dir / "access.log").read_text()
    assert "/feeds/secret.atom" in log and token not in log
