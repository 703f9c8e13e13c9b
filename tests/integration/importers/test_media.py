"""An export's media, end to end on the real stack: imported with `chatchannels import`'s
library call into a fresh topic, processed into a fresh store and published. Pages and feeds
link the archived files relative to themselves through the site's `media` link, `serve`
returns their bytes (an image inline, anything else as a sandboxed download), and a file the
export lacked, or the store never heard of, is marked as not archived. The files come in a
second export after the messages were published, so the pages also show that a media row
arriving late still links the messages published before it."""

from __future__ import annotations

import hashlib
import html
import io
import json
import tarfile
import threading
import urllib.error
import urllib.request
import uuid
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from chatchannels.event_signing import IMPORTER
from chatchannels.ingest.importers.detect import EXPORT_TAR, Importable, sniff
from chatchannels.ingest.importers.job import Target, import_file
from chatchannels.kafka_auth import login
from chatchannels.processors.pg.migrate import migrate
from chatchannels.publishers.publishing import index_dir, publish
from chatchannels.publishers.search_index import WhooshBackend
from chatchannels.publishers.serve import make_server
from chatchannels.signing_secrets import importer_signer
from tests.support.open_site import OPEN_SITE
from tests.support.processor_harness import process_once
from tests.support.skype_files import CLOUD_ID, DOCID, MISSING_DOCID, T0, _activity, _message, _uri

pytestmark = pytest.mark.integration

PAGE_DOCID = "0-weu-d3-" + "ef" * 16
UNKNOWN_DOCID = "0-weu-d3-" + "01" * 16
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PAGE = b"<html><script>alert(document.cookie)</script></html>"
MONTH = "2020-07"


def _document(messages: list[dict[str, Any]]) -> dict[str, Any]:
    conversations = []
    if messages:
        conversations.append(
            {
                "id": CLOUD_ID,
                "displayName": "Falcon",
                "version": float(T0),
                "properties": {},
                "threadProperties": {"topic": "Falcon"},
                "MessageList": list(reversed(messages)),
            }
        )
    return {"userId": "8:alice", "exportDate": "2020-07-06T20:55", "conversations": conversations}


def _tar(path: Path, document: dict[str, Any], media: dict[str, bytes]) -> Path:
    members = {"messages.json": json.dumps(document).encode(), **media}
    with tarfile.open(path, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _import(path: Path, target: Target) -> None:
    found = sniff(path)
    assert isinstance(found, Importable) and found.kind == EXPORT_TAR, found
    report = import_file(found, target, session=uuid.uuid4().hex)
    assert not report.errors and report.pending == 0, report.as_json()


def _get(base: str, path: str) -> tuple[int, Message, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_pages_and_feeds_link_archived_media_and_serve_returns_it_safely(
    tmp_path, stack, kafka_topic, pg_dsn
) -> None:
    c = CLOUD_ID
    messages = [
        _message(c, 1, "RichText/UriObject", _uri("Picture.1", DOCID, "f.png"), sender="8:bob"),
        _message(c, 2, "RichText/Media_GenericFile", _uri("File.1", PAGE_DOCID, "page.html")),
        _message(c, 3, "RichText/Media_GenericFile", _uri("File.1", MISSING_DOCID, "report.pdf")),
        _message(c, 4, "RichText/Media_GenericFile", _uri("File.1", UNKNOWN_DOCID, "gone.zip")),
        _message(c, 5, "ThreadActivity/AddMember", _activity("addmember", "8:alice", "8:dave")),
        _message(
            c, 6, "ThreadActivity/DeleteMember", _activity("deletemember", "8:dave", "8:dave")
        ),
    ]
    media_root = tmp_path / "media"
    target = Target(
        tmp_path / "spool",
        media_root,
        stack.kafka_bootstrap,
        kafka_topic,
        importer_signer(stack),
        kafka_options=login(stack, IMPORTER).client_options(),
    )
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    site = tmp_path / "site"
    migrate(pg_dsn)

    # The messages first, without their files: every one is marked.
    _import(_tar(tmp_path / "messages.tar", _document(messages), {}), target)
    assert process_once(settings, kafka_topic).dead_letters == 0
    publish(pg_dsn, site, once=True, media_dir=media_root)
    page_path = next((site / "chats").glob(f"*/{MONTH}.html"))
    page = page_path.read_text()
    assert page.count("(file not archived)") == 4, page
    assert "<bdi>alice</bdi> added <bdi>dave</bdi>" in page
    assert "<bdi>dave</bdi> left" in page

    # Then an export with the files (one of them still without its content).
    media = {
        f"media/{DOCID}.json": json.dumps({"filename": "f.png"}).encode(),
        f"media/{DOCID}.1.png": PICTURE,
        f"media/{PAGE_DOCID}.json": json.dumps({"filename": "page.html"}).encode(),
        f"media/{PAGE_DOCID}.1.html": PAGE,
        f"media/{MISSING_DOCID}.json": json.dumps({"filename": "report.pdf"}).encode(),
    }
    _import(_tar(tmp_path / "media.tar", _document([]), media), target)
    assert process_once(settings, kafka_topic).dead_letters == 0
    publish(pg_dsn, site, once=True, media_dir=media_root)

    assert (site / "media").is_symlink() and (site / "media").resolve() == media_root.resolve()
    page = page_path.read_text()
    assert page.count("(file not archived)") == 2, page
    missing = [line for line in page.splitlines() if "(file not archived)" in line]
    assert any("report.pdf" in line for line in missing) and any(
        "gone.zip" in line for line in missing
    )
    links = {}
    for data in (PICTURE, PAGE):
        sha = hashlib.sha256(data).hexdigest()
        href = f"../../media/{sha[:2]}/{sha}"
        assert f'<a class="media" href="{href}"' in page, page
        # Relative to the page, through the site's link: the file share sees the file too.
        assert (page_path.parent / href).read_bytes() == data
        links[data] = f"/media/{sha[:2]}/{sha}"
    feed = next((site / "feeds").glob("*.atom")).read_text()
    assert html.escape(f'href="../{links[PICTURE][1:]}"', quote=False) in feed, feed
    assert "alice added dave" in feed  # an entry's title, as text
    backend = WhooshBackend(index_dir(site), create=False)
    try:
        assert [h.snippet for h in backend.search('"added dave"', limit=5).hits] == [
            (("alice ", False), ("added", True), (" ", False), ("dave", True))
        ]
    finally:
        backend.close()

    server = make_server(site, "127.0.0.1", 0, access=OPEN_SITE)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        status, headers, body = _get(base, links[PICTURE])
        assert (status, headers["Content-Type"], body) == (200, "image/png", PICTURE)
        assert "Content-Disposition" not in headers
        status, headers, body = _get(base, links[PAGE])
        assert (status, headers["Content-Type"], body) == (200, "application/octet-stream", PAGE)
        assert headers["Content-Disposition"] == "attachment"
        assert "sandbox" in headers["Content-Security-Policy"]
        assert "script-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        sha = links[PAGE].rsplit("/", 1)[1]
        for path in (f"/media/{sha[2:4]}/{sha}", "/media/", f"/media/{sha[:2]}/"):
            assert _get(base, path)[0] == 404, path
        status, headers, _ = _get(base, "/" + page_path.relative_to(site).as_posix())
        assert status == 200 and headers["Content-Type"].startswith("text/html")
    finally:
        server.shutdown()
        server.server_close()
