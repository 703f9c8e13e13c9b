"""Which of a batch's message ids the Whoosh index has a document for.

Asking the index for each id looks it up in every segment: a rebuild commits a segment per
batch, so the 40th batch of 5,000 asked 200,000 lookups, most for new messages, and the
check cost a third of the build's last batches. Here each segment's id terms are read once,
as hashes; only an id whose hash a segment holds is looked up.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _hashes(terms: Iterable[bytes]) -> np.ndarray:
    return np.fromiter((hash(t) for t in terms), dtype=np.int64)


class IndexedIds:
    """Per-segment hashes of the `id` terms, kept while the segment exists. The hashes are
    Python's (of this process): an object of this class lives in one process."""

    def __init__(self) -> None:
        self._segments: dict[str, np.ndarray] = {}

    def existing(self, reader, ids: Iterable[str]) -> list[str]:
        """The `ids` that have an `id` term in the index `reader` reads (a deleted document
        keeps its terms until its segment is merged), in order."""
        ids = list(ids)
        known = []
        current = set()
        for leaf, _ in reader.leaf_readers():
            segment = leaf.segment()
            if segment is None:  # an empty index's reader
                continue
            key = segment.segment_id()
            current.add(key)
            if key not in self._segments:
                self._segments[key] = _hashes(leaf.lexicon("id"))
            known.append(self._segments[key])
        for key in self._segments.keys() - current:
            del self._segments[key]
        if not known or not ids:
            return []
        maybe = np.isin(_hashes(i.encode() for i in ids), np.concatenate(known))
        return [i for i, m in zip(ids, maybe, strict=True) if m and ("id", i) in reader]
