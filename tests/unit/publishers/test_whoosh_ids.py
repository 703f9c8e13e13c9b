"""IndexedIds answers what asking the index for each id answers."""

from __future__ import annotations

import numpy as np
import pytest

from chatchannels.publishers import whoosh_ids
from chatchannels.publishers.search_index import WhooshBackend
from tests.support import search_contract as contract


@pytest.fixture
def backend(tmp_path):
    backend = WhooshBackend(tmp_path / "index")
    yield backend
    backend.close()


def asked_one_by_one(reader, ids):
    return [i for i in ids if ("id", i) in reader]


@pytest.mark.parametrize("collide", [False, True])
def test_the_existing_ids_are_those_the_index_has(backend, monkeypatch, collide):
    if collide:
        # Every hash the same: every id is looked up, and the lookups decide.
        monkeypatch.setattr(whoosh_ids, "_hashes", lambda terms: np.zeros(len(list(terms))))
    known = whoosh_ids.IndexedIds()
    asked = ["m0", "m3", "m4", "m9", "nope", "m7"]
    assert known.existing(backend.ix.reader(), asked) == []
    for batch in range(3):
        docs = [contract.doc(f"m{i}", "text") for i in range(batch * 3, batch * 3 + 3)]
        backend.write_batch(docs, ["m4"] if batch == 2 else [], watermark=batch + 1)
        reader = backend.ix.reader()
        assert known.existing(reader, asked) == asked_one_by_one(reader, asked)
        reader.close()
    # m4 was deleted: its segment still has its term, as Whoosh's own answer says.
    assert known.existing(backend.ix.reader(), asked) == ["m0", "m3", "m4", "m7"]


def test_merged_segments_are_forgotten(backend):
    known = whoosh_ids.IndexedIds()
    for batch in range(3):
        backend.write_batch([contract.doc(f"m{batch}", "text")], [], watermark=batch + 1)
        known.existing(backend.ix.reader(), ["m0"])
    assert len(known._segments) == 3
    backend.ix.optimize()
    assert known.existing(backend.ix.reader(), ["m0", "m2", "m3"]) == ["m0", "m2"]
    (segment,) = backend.ix._segments()
    assert list(known._segments) == [segment.segment_id()]
