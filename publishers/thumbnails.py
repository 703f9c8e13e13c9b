"""Thumbnails of archived pictures, made on the server when the site is published.

A month page shows a picture someone shared as a small image that links to the archived
file (markup.py). The thumbnail is made from the file in the site's `media` link (the
archive of imported media, content-addressed) and named by the file's sha256, so it is made
once, whichever page shows it first, and a rebuild makes the same bytes. A file the site
cannot read, or that is not a picture Pillow decodes, gets no thumbnail: the page shows its
name and a link, as for any other file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from chatchannels.publishers.files import write_atomic
from chatchannels.publishers.markup import thumbnail_path

# Thumbnails fit in this box (CSS shows them at most 320 px wide).
BOX = (320, 320)
# Decoding a picture larger than this is refused (a decompression bomb is not a picture).
MAX_PIXELS = 64_000_000


def make_thumbnail(source: Path) -> bytes | None:
    """The JPEG thumbnail of a picture, or None when `source` is missing or not a picture."""
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            image.thumbnail(BOX)
            shown = image.convert("RGB")
    except (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError):
        # Pillow's ways of saying "not a picture I can read" (UnidentifiedImageError is an
        # OSError; a damaged file can fail in its decoder with any of these).
        return None
    out = io.BytesIO()
    # No metadata (EXIF, ICC) and fixed settings: the same picture gives the same bytes.
    shown.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()


def ensure_thumbnails(site_dir: Path, media_dir: Path, sha256s: Iterable[str]) -> set[str]:
    """Make the missing thumbnails of these archived files; return those that have one."""
    made: set[str] = set()
    for sha256 in sorted(set(sha256s)):
        if (site_dir / thumbnail_path(sha256)).is_file():
            made.add(sha256)
            continue
        data = make_thumbnail(media_dir / sha256[:2] / sha256)
        if data is not None:
            write_atomic(site_dir, thumbnail_path(sha256), data)
            made.add(sha256)
    return made
