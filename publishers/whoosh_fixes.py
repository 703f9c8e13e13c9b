"""A narrow fix of a slow path of whoosh-reloaded 2.7.5 (pinned in pyproject.toml), which
search_index.py applies.

Writing a segment's postings asks the new segment's per-document reader for the document's
field length once per posting (8 million times for 200,000 messages), and each answer
passes four layers of calls; for a field without lengths (the ID fields) it checks that the
column file exists, every time, as a missing column is not cached. That was a third of the
commit. Here each field's lengths are read once per segment, in a list.
tests/unit/publishers/test_whoosh_fixes.py compares the answers with Whoosh's own and fails
when the code this relies on changes.
"""

from __future__ import annotations

from whoosh.codec import base, whoosh3
from whoosh.util.numeric import byte_to_length

# W3PerDocReader.doc_field_length: a length byte of 0 (no length stored) answers None.
_BYTE_LENGTHS = [None] + [byte_to_length(b) for b in range(1, 256)]


class _LoadedLengths:
    """The doc_field_length of a per-document reader, each field's lengths read at once."""

    def __init__(self, reader) -> None:
        self._reader = reader
        self._fields: dict[str, list[int | None]] = {}

    def doc_field_length(self, docnum: int, fieldname: str) -> int | None:
        lengths = self._fields.get(fieldname)
        if lengths is None:
            lengths = self._fields[fieldname] = self._load(fieldname)
        return lengths[docnum]

    def _load(self, fieldname: str) -> list[int | None]:
        reader = self._reader
        count = reader.doc_count_all()
        if not isinstance(reader, whoosh3.W3PerDocReader):
            return [reader.doc_field_length(d, fieldname) for d in range(count + 1)]
        column = reader._cached_reader(whoosh3._lenfield(fieldname), whoosh3.LENGTHS_COLUMN)
        if column is None:
            return [0] * (count + 1)
        # The column yields a byte per document (0 past its end); document `count` is past
        # it too, as in Whoosh's reader.
        return [_BYTE_LENGTHS[b] for b in column] + [None]


_add_postings = base.FieldWriter.add_postings


def _add_postings_with_loaded_lengths(self, schema, lengths, items):
    return _add_postings(self, schema, _LoadedLengths(lengths) if lengths else lengths, items)


def apply() -> None:
    """Install the fix (again: no change)."""
    base.FieldWriter.add_postings = _add_postings_with_loaded_lengths
