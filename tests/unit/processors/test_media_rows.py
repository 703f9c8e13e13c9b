"""The store's media rows and the docids a message's row keeps (processors/rows.py)."""

from __future__ import annotations

from chatchannels.processors.observations import ObjectObservation
from chatchannels.processors.rows import MediaRow, media_docids, media_row


def read(host: str, seq: int, at: float, **props: str) -> ObjectObservation:
    return ObjectObservation(
        host, seq, "MEDIA", "0-d", "import", at, tuple(sorted((p, v, at) for p, v in props.items()))
    )


def test_each_property_from_the_last_read_in_true_time():
    first = read(
        "file-a", 9, 100.0, SHA256="aa" * 32, SIZE="12", NAME="0-d.1.png", MIME="image/png"
    )
    # Read later, from an export without the content file: no SHA256, so the file stays.
    later = read("file-b", 3, 200.0, FILENAME="cat.png", MIME="image/gif")
    assert media_row([later, first], {}) == MediaRow("aa" * 32, "cat.png", 12, "image/gif")
    # file-b's clock is 150 s ahead: its read was made before file-a's.
    assert media_row([first, later], {"file-b": 150.0}) == MediaRow(
        "aa" * 32, "cat.png", 12, "image/png"
    )
    assert media_row([read("file-a", 1, 5.0, NAME="0-d.1.bin")], {}) == MediaRow(
        None, "0-d.1.bin", None, None
    )
    assert media_row([], {}) == MediaRow(None, "", None, None)


def test_docids_of_the_media_a_body_shows():
    picture = '<URIObject type="Picture.1" doc_id="0-a"><OriginalName v="a.png"/></URIObject>'
    quoted = f'<quote author="bob">look <b><URIObject doc_id="0-b"/></b></quote>{picture}'
    assert media_docids(f"{picture} and {quoted}", "skype-xml") == ("0-a", "0-b")
    assert media_docids('<URIObject type="File.1">no id</URIObject>', "skype-xml") == ()
    # A Desktop API body is text: a typed tag is characters, not media.
    assert media_docids(picture, "text") == ()
    assert media_docids("plain words", "skype-xml") == ()
