"""Thumbnails of archived pictures: made with Pillow from the archived file, once, the same
bytes every time, and none for what is not a picture."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from chatchannels.publishers.markup import thumbnail_path
from chatchannels.publishers.thumbnails import BOX, ensure_thumbnails, make_thumbnail


def archive(media_dir, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    (media_dir / sha[:2]).mkdir(parents=True, exist_ok=True)
    (media_dir / sha[:2] / sha).write_bytes(data)
    return sha


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 30, 90, 128)).save(out, "PNG")
    return out.getvalue()


def test_a_picture_gets_a_small_jpeg_made_once(tmp_path):
    media, site = tmp_path / "media", tmp_path / "site"
    picture = archive(media, png(1200, 600))
    text = archive(media, b"not a picture at all")
    damaged = archive(media, png(40, 40)[:60] + bytes(range(256)) * 4)
    made = ensure_thumbnails(site, media, [picture, text, damaged, "0" * 64])
    assert made == {picture}
    thumb = site / thumbnail_path(picture)
    with Image.open(thumb) as image:
        assert image.format == "JPEG" and image.size == (BOX[0], 160)
    assert not (site / thumbnail_path(text)).exists()
    # Content-addressed: the same picture gives the same bytes, and an existing one is kept.
    assert make_thumbnail(media / picture[:2] / picture) == thumb.read_bytes()
    before = thumb.stat().st_mtime_ns
    assert ensure_thumbnails(site, media, [picture]) == {picture}
    assert thumb.stat().st_mtime_ns == before
