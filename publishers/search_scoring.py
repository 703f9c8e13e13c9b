"""Scoring a Whoosh query over whole posting lists at once, with numpy.

Whoosh finds and scores hits one document at a time in Python, about 3.5 microseconds per
matching document: a word in a few percent of 200,000 messages took 16-25 ms, and its top-N
collector can rarely skip a block of postings, because short chat messages put a high BM25
score in nearly every block. Here each term's postings are read a block at a time, scored
with Whoosh's own scorer once per distinct (term frequency, field length) pair, and the query
tree is combined as arrays over the segment's documents: And adds scores where all parts
match, Or where any does, Not matches the rest with a score of 1 (what Whoosh's
InverseMatcher gives). Within an And the most selective part goes first and a term with far
more postings than documents left is looked up document by document. A phrase next to other
parts of an And is a filter checked last, on the stored text of the documents left; any other
node is matched by Whoosh itself. Without phrases, hits, scores and their order (score, then
document number) equal Whoosh's own search; with them, the hits do
(tests/unit/test_publishers_search_whoosh.py compares them). The total is always exact.

The field lengths and posting blocks are read through whoosh-reloaded 2.7.5's codec (W3),
whose attributes are not public: `SegmentArrays.length_bytes`, `_fixed_column` and
`_leaf_postings` are the only places that know them."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.matching.wrappers import FilterMatcher
from whoosh.scoring import WeightLengthScorer, WeightScorer
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

# A term is looked up document by document (skipping through its postings) when it has this
# many times more postings than there are documents left to check; else read whole. Reading a
# block costs about as much as 10-20 skips (pickled postings, positions included).
PROBE_RATIO = 8
# The encoded length (one byte, a logarithmic scale) of each document in a field.
_LENGTH_OF_BYTE = np.array([byte_to_length(b) for b in range(256)], dtype=np.int64)


class SegmentArrays:
    """One segment's per-document arrays: which documents are live, and, read once per
    segment and kept in `columns` (segments never change, only their deletions do), field
    lengths as Whoosh's one-byte codes and the `posted` times to sort by."""

    def __init__(self, reader, columns: dict[tuple[str, str], np.ndarray]) -> None:
        self.reader = reader
        self.segment = reader.segment().segment_id()
        self.size = reader.doc_count_all()
        self._columns = columns
        self.live = np.ones(self.size, dtype=bool)
        if reader.has_deletions():
            self.live[np.fromiter(reader.segment().deleted_docs(), dtype=np.int64)] = False

    def length_bytes(self, field: str) -> np.ndarray:
        def read() -> np.ndarray:
            column = self.reader._perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN)
            return _fixed_column(column, np.dtype(np.uint8), self.size)

        return self._column(f"length:{field}", read)

    def posted(self) -> np.ndarray:
        def read() -> np.ndarray:
            column = self.reader.column_reader("posted", translate=False)
            return _fixed_column(column, np.dtype(">i8"), self.size)

        return self._column("posted", read)

    def _column(self, name: str, read: Callable[[], np.ndarray]) -> np.ndarray:
        key = (self.segment, name)
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = read()
        return found


def _fixed_column(column, dtype: np.dtype, size: int) -> np.ndarray:
    """All values of a fixed-width Whoosh column; documents past the written ones have 0."""
    values = np.zeros(size, dtype=dtype)
    if column is None:
        return values
    count = column._count
    raw = column._dbfile.get(column._basepos, count * column._fixedlen)
    values[:count] = np.frombuffer(raw, dtype=dtype, count=count)
    return values


class Matches:
    """The documents of one segment a query node matches, and their scores."""

    __slots__ = ("mask", "score")

    def __init__(self, mask: np.ndarray, score: np.ndarray) -> None:
        self.mask, self.score = mask, score

    @classmethod
    def none(cls, size: int) -> Matches:
        return cls(np.zeros(size, dtype=bool), np.zeros(size))

    @classmethod
    def of(cls, size: int, ids: np.ndarray, scores: np.ndarray) -> Matches:
        found = cls.none(size)
        found.mask[ids] = True
        found.score[ids] = scores
        return found


class SegmentQuery:
    """Evaluates queries in one segment. `stored_text` names, for a field searched by phrase,
    the stored field holding the same text (the index stores the body once)."""

    def __init__(
        self, searcher: Searcher, arrays: SegmentArrays, stored_text: Mapping[str, str]
    ) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.arrays = arrays
        self.size = arrays.size
        self.stored_text = stored_text

    def evaluate(self, query: wq.Query, within: np.ndarray | None = None) -> Matches:
        """Matches of `query`; with `within`, correct only inside those documents."""
        if query.boost == 1.0:
            if isinstance(query, wq.Term):
                return self._term(query, within)
            if isinstance(query, wq.Every) and query.fieldname in (None, "", "*"):
                return Matches(self.arrays.live.copy(), np.ones(self.size))
            if isinstance(query, wq.Not):
                inner = self.evaluate(query.query, within)
                return Matches(~inner.mask, np.ones(self.size))
            if isinstance(query, wq.And) and query.subqueries:
                return self._all_of(query.subqueries, within)
            if isinstance(query, wq.Or) and query.subqueries:
                found = Matches.none(self.size)
                for part in query.subqueries:
                    done = self.evaluate(part, within)
                    found.mask |= done.mask
                    # A part's scores count where it matches (an And's where all its parts do).
                    found.score += np.where(done.mask, done.score, 0.0)
                return found
        return self._by_whoosh(query, within)

    def _native(self, query: wq.Query) -> bool:
        """Whether `evaluate` takes the query apart itself (else Whoosh matches it)."""
        if query.boost != 1.0:
            return False
        if isinstance(query, wq.Term | wq.Every):
            return True
        if isinstance(query, wq.Not):
            return self._native(query.query)
        if isinstance(query, wq.And | wq.Or):
            return bool(query.subqueries) and all(self._native(q) for q in query.subqueries)
        return False

    def _checkable(self, query: wq.Query) -> bool:
        return (
            isinstance(query, wq.Phrase)
            and query.boost == 1.0
            and query.slop == 1
            and len(query.words) > 1
            and query.fieldname in self.stored_text
        )

    def _all_of(self, queries: Sequence[wq.Query], within: np.ndarray | None) -> Matches:
        """An And: the most selective parts first, so that the others only look at the
        documents those left. A phrase next to other parts is checked last, on the stored
        text of the few documents left, and adds nothing to the score: Whoosh's phrase
        matcher reads the positions of every document holding all its words (pickled
        posting blocks, the slowest thing to read), whatever else the query asks."""
        phrases = [q for q in queries if self._checkable(q)]
        parts = [q for q in queries if q not in phrases]
        if not parts:
            parts, phrases = phrases, []
        parts.sort(key=lambda q: (not self._native(q), q.estimate_size(self.reader)))
        found = Matches(
            np.ones(self.size, dtype=bool) if within is None else within.copy(),
            np.zeros(self.size),
        )
        for part in parts:
            done = self.evaluate(part, found.mask)
            found.mask &= done.mask
            found.score += done.score
        for phrase in phrases:
            candidates = np.flatnonzero(found.mask).tolist()
            found.mask[:] = False
            found.mask[[doc for doc in candidates if self._has_phrase(phrase, doc)]] = True
        return found

    def _has_phrase(self, phrase: wq.Phrase, doc: int) -> bool:
        text = self.searcher.stored_fields(doc).get(self.stored_text[phrase.fieldname], "")
        analyzer = self.searcher.schema[phrase.fieldname].analyzer
        tokens = [t.text for t in analyzer(text)]
        words = list(phrase.words)
        return any(tokens[i : i + len(words)] == words for i in range(len(tokens) - len(words) + 1))

    def _term(self, query: wq.Term, within: np.ndarray | None) -> Matches:
        if (query.fieldname, query.text) not in self.reader:
            return Matches.none(self.size)
        if within is not None:
            frequency = self.reader.doc_frequency(query.fieldname, query.text)
            if np.count_nonzero(within) * PROBE_RATIO < frequency:
                return self._by_whoosh(query, within)
        matcher = query.matcher(self.searcher, self.searcher.context())
        if isinstance(matcher, FilterMatcher):  # deleted documents: dropped by `live` later
            matcher = matcher.child
        if not isinstance(matcher, W3LeafMatcher):  # a short list kept in the term's entry
            return self._by_whoosh(query, None)
        ids, weights = _leaf_postings(matcher)
        scorer = matcher.scorer
        if isinstance(scorer, WeightLengthScorer):
            lengths = self.arrays.length_bytes(query.fieldname)[ids]
            scores = _weight_length_scores(scorer._score, weights, lengths)
        elif isinstance(scorer, WeightScorer):
            scores = weights.astype(np.float64)
        else:
            return self._by_whoosh(query, None)
        return Matches.of(self.size, ids, scores)

    def _by_whoosh(self, query: wq.Query, within: np.ndarray | None) -> Matches:
        """Matches found by Whoosh's matcher, one document at a time; with `within`, only
        those documents: the matcher and the candidates leapfrog, each skipping to the
        other."""
        matcher = query.matcher(self.searcher, self.searcher.context())
        ids: list[int] = []
        scores: list[float] = []
        candidates = None if within is None else np.flatnonzero(within).tolist()
        at = 0
        while matcher.is_active():
            doc = matcher.id()
            if candidates is not None:
                at = bisect_left(candidates, doc, at)
                if at == len(candidates):
                    break
                if candidates[at] != doc:
                    matcher.skip_to(candidates[at])
                    continue
            ids.append(doc)
            scores.append(matcher.score())
            matcher.next()
        return Matches.of(self.size, np.array(ids, dtype=np.int64), np.array(scores))


def _leaf_postings(matcher: W3LeafMatcher) -> tuple[np.ndarray, np.ndarray]:
    """Document numbers and weights of a term's postings, a block at a time."""
    ids: list[int] = []
    weights: list[float] = []
    while matcher.is_active():
        matcher._read_ids()
        matcher._read_weights()
        at = matcher._i
        ids.extend(matcher._ids[at:])
        weights.extend(matcher._weights[at:])
        if matcher._lastblock:
            break
        matcher._next_block()
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float32)


def _weight_length_scores(
    score: Callable[[float, int], float], weights: np.ndarray, length_bytes: np.ndarray
) -> np.ndarray:
    """`score(weight, length)` per posting, called once per distinct pair: a term has few
    distinct frequencies, and lengths are one of 256 codes."""
    if not len(weights):
        return np.zeros(0)
    distinct_weights, weight_index = np.unique(weights, return_inverse=True)
    pairs, pair_index = np.unique(
        weight_index.astype(np.int64) * 256 + length_bytes, return_inverse=True
    )
    values = np.array(
        [
            score(float(distinct_weights[pair // 256]), int(_LENGTH_OF_BYTE[pair % 256]))
            for pair in pairs.tolist()
        ]
    )
    return values[pair_index]


def top(
    query: wq.Query,
    searcher: Searcher,
    arrays_of: Callable[[object], SegmentArrays],
    limit: int,
    by_time: bool = False,
    stored_text: Mapping[str, str] | None = None,
) -> tuple[int, list[tuple[int, float]]]:
    """(number of matches, the best `limit` as (document number, score)): by score, ties by
    document number, as Whoosh orders them; or, `by_time`, newest first."""
    if not searcher.doc_count_all():
        return 0, []
    subsearchers = searcher.subsearchers or [(searcher, 0)]
    total = 0
    docs: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for sub, offset in subsearchers:
        arrays = arrays_of(sub.reader())
        found = SegmentQuery(sub, arrays, stored_text or {}).evaluate(query)
        ids = np.flatnonzero(found.mask & arrays.live)
        total += len(ids)
        key = -arrays.posted()[ids] if by_time else -found.score[ids]
        if len(ids) > limit:
            # Only documents at least as good as this segment's limit-th best can make it.
            cut = np.partition(key, limit - 1)[limit - 1]
            ids = ids[key <= cut]
            key = key[key <= cut]
        docs.append(ids + offset)
        scores.append(found.score[ids])
        keys.append(key)
    if not docs or limit <= 0:
        return total, []
    all_docs, all_scores, all_keys = (np.concatenate(a) for a in (docs, scores, keys))
    order = np.lexsort((all_docs, all_keys))[:limit]
    return total, [(int(all_docs[i]), float(all_scores[i])) for i in order]
