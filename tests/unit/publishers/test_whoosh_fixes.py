"""The fix of whoosh_fixes.py writes the segments Whoosh writes, and is checked against the
code it was written for (whoosh-reloaded 2.7.5): a new version must be looked at again."""

from __future__ import annotations

import hashlib
import inspect

import pytest
from whoosh import columns, index
from whoosh.codec import base, whoosh3
from whoosh.fields import ID, TEXT, Schema

from chatchannels.publishers import whoosh_fixes

SCHEMA = Schema(id=ID(stored=True), text=TEXT, never=TEXT, words=TEXT(phrase=False))
# Empty values have no length; `never` has no length column at all; one document's text is
# long enough for a rounded length byte.
DOCS = [
    {"id": "a", "text": "one two three", "words": "alpha"},
    {"id": "b", "text": "", "words": "alpha beta"},
    {"id": "c", "text": " ".join(["word"] * 300), "words": ""},
    {"id": "d", "words": "alpha beta gamma"},
]


def segment_files(directory, monkeypatch, fixed: bool) -> dict[str, bytes]:
    """The files of a segment of DOCS (by extension) written with or without the fix."""
    with monkeypatch.context() as patch:
        if not fixed:
            patch.setattr(base.FieldWriter, "add_postings", whoosh_fixes._add_postings)
        directory.mkdir()
        ix = index.create_in(str(directory), SCHEMA)
        writer = ix.writer(compound=False)
        for doc in DOCS:
            writer.add_document(**doc)
        writer.commit()
        ix.close()
    # Named by the segment's random id: MAIN_<id>.<what>
    return {p.name.split(".", 1)[1]: p.read_bytes() for p in directory.glob("MAIN_*.*")}


def test_the_fix_writes_the_segment_whoosh_writes(tmp_path, monkeypatch):
    whoosh_fixes.apply()
    fixed = segment_files(tmp_path / "fixed", monkeypatch, fixed=True)
    assert base.FieldWriter.add_postings is whoosh_fixes._add_postings_with_loaded_lengths
    assert fixed == segment_files(tmp_path / "plain", monkeypatch, fixed=False)
    assert {"pst", "_text_len.col", "_words_len.col"} <= fixed.keys()


@pytest.mark.parametrize("multi", [False, True])
def test_loaded_lengths_are_whooshs_lengths(tmp_path, multi):
    ix = index.create_in(str(tmp_path), SCHEMA)
    with ix.writer(compound=False) as writer:
        for doc in DOCS:
            writer.add_document(**doc)
    (segment,) = ix._segments()
    reader = segment.codec().per_document_reader(ix.storage, segment)
    if multi:
        reader = base.MultiPerDocumentReader([reader])
    loaded = whoosh_fixes._LoadedLengths(reader)
    answers = {
        (d, field): reader.doc_field_length(d, field)
        for field in SCHEMA.names()
        for d in range(len(DOCS) + 1)
    }
    assert {key: loaded.doc_field_length(*key) for key in answers} == answers
    # The cases: a length, no length (None), no length column (0), a rounded length.
    assert (answers[0, "text"], answers[1, "text"], answers[0, "never"]) == (3, None, 0)
    assert 280 < answers[2, "text"] < 320
    reader.close()
    ix.close()


# sha256 of the source of the Whoosh code the fix wraps (its original) or relies on.
PINNED = {
    whoosh_fixes._add_postings: "fea6bedbce63a1347afc075b69e7f7e0712031168e23138d8468b3b51623b2f5",
    whoosh3.W3PerDocReader.doc_field_length: (
        "6f6c39c338eb61dc4fb9782d24f125efe3750eeea713ba7ed52a1a4c4a9e76da"
    ),
    whoosh3.W3PerDocReader._cached_reader: (
        "2e27976f892aee8fe9c2619408ca295432d5fdd10f94a3bbbbd8d89bd7f304f7"
    ),
    whoosh3._lenfield: "efa07a8a57fa9ce94a2787141af81f88c0d6a9ca2b6221c888b55afeb44f10a0",
    columns.NumericColumn.Reader.__getitem__: (
        "1a73e7cfb90f04d57b49c92883b0c8ae94096215ccb1df2e43793cccb412f3e3"
    ),
    columns.FixedBytesColumn.Reader.__iter__: (
        "c1d04ed6570c8f20dca31f41c90a3ecf94c4407f8cb244ce097af757192c1cd4"
    ),
}


def test_the_code_the_fix_relies_on_is_the_pinned_versions():
    # If this fails, Whoosh changed: check that whoosh_fixes.py still answers what the new
    # code answers (and is still needed), then record the new hashes.
    sources = {
        f"{f.__module__}.{f.__qualname__}": hashlib.sha256(
            inspect.getsource(f).encode()
        ).hexdigest()
        for f in PINNED
    }
    assert sources == {f"{f.__module__}.{f.__qualname__}": h for f, h in PINNED.items()}
