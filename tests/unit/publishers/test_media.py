"""The site's link to the media archive and how `serve` types archived files."""

from __future__ import annotations

import os

import pytest

from chatchannels.publishers.markup import media_path
from chatchannels.publishers.serve import DOWNLOAD_TYPE, MEDIA_PATH, media_type
from chatchannels.publishers.site import SiteStateError, link_media

SHA = "0f" * 32


def test_the_media_link_is_made_once_moved_atomically_and_never_over_a_folder(tmp_path):
    site, media, other = tmp_path / "site", tmp_path / "media", tmp_path / "elsewhere"
    site.mkdir()
    link_media(site, media)
    assert os.readlink(site / "media") == str(media)
    made = (site / "media").lstat().st_mtime_ns
    link_media(site, media)
    assert (site / "media").lstat().st_mtime_ns == made
    link_media(site, other)
    assert os.readlink(site / "media") == str(other)
    assert sorted(p.name for p in site.iterdir()) == ["media"]
    (site / "media").unlink()
    (site / "media").mkdir()
    with pytest.raises(SiteStateError, match="not a symlink"):
        link_media(site, media)
    assert (site / "media").is_dir() and not (site / "media").is_symlink()


def test_links_to_media_are_relative_to_the_page():
    assert media_path(SHA, "../../") == f"../../media/0f/{SHA}"
    assert MEDIA_PATH.fullmatch(media_path(SHA, ""))
    assert not MEDIA_PATH.fullmatch(f"media/f0/{SHA}")
    assert not MEDIA_PATH.fullmatch(f"media/0f/{SHA}.html")


@pytest.mark.parametrize(
    ("head", "served"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0....", "image/jpeg"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", DOWNLOAD_TYPE),
        (b"<!DOCTYPE html><script>alert(1)</script>", DOWNLOAD_TYPE),
        (b"%PDF-1.7", DOWNLOAD_TYPE),
        (b"", DOWNLOAD_TYPE),
    ],
)
def test_only_a_few_image_formats_are_shown_inline(tmp_path, head, served):
    path = tmp_path / SHA
    path.write_bytes(head)
    assert media_type(str(path)) == served
