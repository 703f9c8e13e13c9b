"""Scoring a Whoosh query over whole posting lists at once, with numpy.

Whoosh finds and scores hits one document at a time in Python, so a common word costs
time in proportion to its hits (bench_publishers shows how much), and its top-N collector
can rarely skip a block of postings, because short chat messages put a high BM25 score in
nearly every block. Here each term's postings are read a block at a time, scored
with Whoosh's own scorer once per distinct (term frequency, field length) pair, and the query
tree is combined as arrays over the segment's documents: And adds scores where all parts
match, Or where any does, Not matches the rest with a score of 1 (what Whoosh's
InverseMatcher gives). Within an And the most selective part goes first and the others read
only the blocks of postings that may hold a document left. A phrase next to other
parts of an And is a filter checked last, on the stored text of the documents left; any other
node is matched by Whoosh itself. Without phrases, hits, scores and their order (score, then
document number) equal Whoosh's own search; with them, the hits do
(tests/unit/publishers/test_search_whoosh.py compares them). The total is always exact.

The field lengths and posting blocks are read through whoosh-reloaded 2.7.5's codec (W3),
whose attributes are not public: `SegmentArrays.length_bytes`, `_fixed_column` and
`_leaf_postings` are the only places that know them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from math import log
from typing import NamedTuple

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25FScorer, WeightLengthScorer, WeightScorer
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

# The encoded length (one byte, a logarithmic scale) of each document in a field.
_LENGTH_OF_BYTE = np.array([byte_to_length(b) for b in range(256)], dtype=np.int64)
# Readers' sets of visible chats whose document masks a segment keeps.
VISIBLE_SETS = 64
# And the terms whose documents in such a set a segment keeps counted.
VISIBLE_TERMS = 4096


class SegmentArrays:
    """One segment's per-document arrays: which documents are live, and, read once per
    segment and kept in `columns` (segments never change, only their deletions do), field
    lengths as Whoosh's one-byte codes and the `posted` times to sort by."""

    def __init__(self, reader, columns: dict[tuple[str, str], object]) -> None:
        self.reader = reader
        self.segment = reader.segment().segment_id()
        self.size = reader.doc_count_all()
        self._columns = columns
        self.live = np.ones(self.size, dtype=bool)
        if reader.has_deletions():
            self.live[np.fromiter(reader.segment().deleted_docs(), dtype=np.int64)] = False
        self.live_ids = np.flatnonzero(self.live)
        self._timelines: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._chat_timelines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._visible: dict[frozenset[str], np.ndarray] = {}
        self._visible_lengths: dict[tuple[frozenset[str], str], tuple[int, int]] = {}
        self._visible_holding: dict[tuple[frozenset[str], str, str], int] = {}

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

    def keys(self, field: str) -> tuple[dict[str, int], np.ndarray]:
        """An ID field holding one value per document (`chat_key`, `author_key`): the
        segment's values with their numbers, and each document's number (-1 for none)."""

        def read() -> tuple[dict[str, int], np.ndarray]:
            numbers: dict[str, int] = {}
            of_doc = np.full(self.size, -1, dtype=np.int32)
            for term in self.reader.lexicon(field):
                of_doc[_all_postings(self.reader, field, term)] = len(numbers)
                numbers[term.decode("utf-8")] = len(numbers)
            return numbers, of_doc

        return self._column(f"keys:{field}", read)

    def visible(self, chats: frozenset[str]) -> np.ndarray:
        """Whether each document is of one of these chats (a reader's, gate.py); kept for
        the last few sets (the Gate hands each reader the same set while nothing changes)."""
        found = self._visible.get(chats)
        if found is None:
            numbers, of_doc = self.keys("chat_key")
            # One more slot, never set, for the documents without a chat (-1).
            wanted = np.zeros(len(numbers) + 1, dtype=bool)
            wanted[[numbers[c] for c in chats if c in numbers]] = True
            found = wanted[of_doc]
            if len(self._visible) >= VISIBLE_SETS:
                self._visible.clear()
            self._visible[chats] = found
        return found

    def visible_length(self, chats: frozenset[str], field: str) -> tuple[int, int]:
        """How many live documents these chats have here, and their total length in `field`
        (as Whoosh's length codes tell it); kept like `visible`."""
        key = (chats, field)
        found = self._visible_lengths.get(key)
        if found is None:
            mask = self.live & self.visible(chats)
            found = (int(mask.sum()), int(_LENGTH_OF_BYTE[self.length_bytes(field)[mask]].sum()))
            if len(self._visible_lengths) >= VISIBLE_SETS:
                self._visible_lengths.clear()
            self._visible_lengths[key] = found
        return found

    def visible_holding(self, chats: frozenset[str], field: str, text: str) -> int:
        """How many live documents of these chats here hold the term; kept for the last
        VISIBLE_TERMS terms asked (a reader paging through results asks the same again)."""
        key = (chats, field, text)
        found = self._visible_holding.get(key)
        if found is None:
            found = 0
            if (field, text) in self.reader:
                ids = _all_postings(self.reader, field, text)
                found = int(np.count_nonzero(self.live[ids] & self.visible(chats)[ids]))
            if len(self._visible_holding) >= VISIBLE_TERMS:
                self._visible_holding.clear()
            self._visible_holding[key] = found
        return found

    def timeline(self, chat: str) -> tuple[np.ndarray, np.ndarray]:
        """The chat's live documents in this segment by (time, number), and their times."""
        numbers, of_doc = self.keys("chat_key")
        if self._timelines is None:
            # By (chat, time, number) once per segment; the live ones once per searcher.
            order = self._column(
                "chat_order",
                lambda: np.lexsort((np.arange(self.size), self.posted(), of_doc)),
            )
            order = order[self.live[order]]
            self._timelines = (order, of_doc[order], self.posted()[order])
        found = self._chat_timelines.get(chat)
        if found is None:
            order, chats, times = self._timelines
            number = numbers.get(chat)
            lo, hi = np.searchsorted(chats, [number, number + 1]) if number is not None else (0, 0)
            found = self._chat_timelines[chat] = (order[lo:hi], times[lo:hi])
        return found

    def _column(self, name: str, read: Callable[[], object]):
        key = (self.segment, name)
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = read()
        return found


def _all_postings(reader, field: str, term: bytes) -> np.ndarray:
    """Every document number of a term's postings, deleted ones too."""
    matcher = reader.postings(field, term)
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    if isinstance(matcher, W3LeafMatcher):
        return _leaf_postings(matcher, None)[0]
    return np.fromiter(matcher.all_ids(), dtype=np.int64)


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
    """The documents of one segment a query node matches (sorted numbers) and their scores."""

    __slots__ = ("ids", "score")

    def __init__(self, ids: np.ndarray, score: np.ndarray) -> None:
        self.ids, self.score = ids, score

    @classmethod
    def none(cls) -> Matches:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0))

    def both(self, other: Matches) -> Matches:
        common, mine, theirs = np.intersect1d(
            self.ids, other.ids, assume_unique=True, return_indices=True
        )
        return Matches(common, self.score[mine] + other.score[theirs])

    def without(self, other: Matches) -> Matches:
        keep = ~np.isin(self.ids, other.ids, assume_unique=True)
        return Matches(self.ids[keep], self.score[keep])

    def only(self, keep: np.ndarray) -> Matches:
        return Matches(self.ids[keep], self.score[keep])

    @staticmethod
    def any_of(parts: Sequence[Matches]) -> Matches:
        found = [p for p in parts if len(p.ids)]
        if len(found) <= 1:  # a word's parts that no compound holds, most often
            return found[0] if found else Matches.none()
        ids, where = np.unique(np.concatenate([p.ids for p in found]), return_inverse=True)
        scores = np.bincount(where, weights=np.concatenate([p.score for p in found]))
        return Matches(ids, scores)


class VisibleStatistics:
    """BM25's statistics of some chats' documents alone (a reader's, gate.py): how many live
    documents there are, how many hold a term, and their average field length. Scored with
    these, a reader's hits, and so their order, depend on nothing in the chats they cannot
    read (the whole index's statistics would tell how often a word is used there)."""

    def __init__(
        self,
        searcher: Searcher,
        arrays_of: Callable[[object], SegmentArrays],
        chats: frozenset[str],
    ) -> None:
        self._chats = chats
        self._segments = [
            arrays_of(sub.reader()) for sub, _ in searcher.subsearchers or [(searcher, 0)]
        ]

    def idf(self, field: str, text: str) -> float:
        """Whoosh's idf (WeightingModel.idf) over these documents."""
        held = count = 0
        for arrays in self._segments:
            count += arrays.visible_length(self._chats, field)[0]
            held += arrays.visible_holding(self._chats, field, text)
        return log(max(count, 1) / (held + 1)) + 1

    def average_length(self, field: str) -> float:
        count = total = 0
        for arrays in self._segments:
            found, length = arrays.visible_length(self._chats, field)
            count, total = count + found, total + length
        return total / count if total and count else 1.0


class Scoring:
    """What the segments share while one query is evaluated: each term's Whoosh scorer (BM25's
    idf and average length are statistics of the whole index, or with `visible` of the
    documents searched, so one scorer serves every segment) and its scores by (term
    frequency, length code), and the parts' sizes."""

    def __init__(self, searcher: Searcher, visible: VisibleStatistics | None = None) -> None:
        self.searcher = searcher
        self.visible = visible
        self._scorers: dict[tuple[str, str], object] = {}
        self._tables: dict[tuple[str, str, float], np.ndarray] = {}
        self._sizes: dict[wq.Query, int] = {}

    def size(self, query: wq.Query) -> int:
        found = self._sizes.get(query)
        if found is None:
            found = self._sizes[query] = query.estimate_size(self.searcher.reader())
        return found

    def scores(
        self, term: wq.Term, weights: np.ndarray, length_codes: Callable[[], np.ndarray]
    ) -> np.ndarray | None:
        """Whoosh's score of each posting, from its weight and its document's length code;
        None for a scorer that needs more than that."""
        key = (term.fieldname, term.text)
        scorer = self._scorers.get(key)
        if scorer is None:
            scorer = self._scorers[key] = self.searcher.weighting.scorer(self.searcher, *key)
            if self.visible is not None and isinstance(scorer, BM25FScorer):
                scorer.idf = self.visible.idf(*key)
                scorer.avgfl = self.visible.average_length(term.fieldname)
        if isinstance(scorer, WeightScorer):
            return weights.astype(np.float64)
        if not isinstance(scorer, WeightLengthScorer):
            return None
        scores = np.zeros(len(weights))
        if not len(weights):
            return scores
        codes = length_codes()
        distinct = weights[:1] if weights.min() == weights.max() else np.unique(weights)
        # A term has few distinct frequencies (most often only 1), lengths one of 256 codes.
        for weight in distinct.tolist():
            chosen = weights == np.float32(weight)
            table = self._tables.get((*key, weight))
            if table is None:
                table = self._tables[(*key, weight)] = np.full(256, np.nan)
            used = np.bincount(codes[chosen], minlength=256) > 0
            for code in np.flatnonzero(used & np.isnan(table)).tolist():
                table[code] = scorer._score(weight, int(_LENGTH_OF_BYTE[code]))
            scores[chosen] = table[codes[chosen]]
        return scores


class SegmentQuery:
    """Evaluates queries in one segment. `stored_text` names, for a field searched by phrase,
    the stored field holding the same text (the index stores the body once)."""

    def __init__(
        self,
        searcher: Searcher,
        arrays: SegmentArrays,
        scoring: Scoring,
        stored_text: Mapping[str, str],
    ) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.arrays = arrays
        self.scoring = scoring
        self.stored_text = stored_text

    def evaluate(self, query: wq.Query, within: np.ndarray | None = None) -> Matches:
        """Matches of `query`; with `within` (sorted document numbers), correct only inside
        those documents."""
        if query.boost == 1.0:
            if isinstance(query, wq.Term):
                return self._term(query, within)
            if isinstance(query, wq.Every) and query.fieldname in (None, "", "*"):
                return self._everything()
            if isinstance(query, wq.Not):
                return self._everything().without(self.evaluate(query.query, within))
            if isinstance(query, wq.And) and query.subqueries:
                return self._all_of(query.subqueries, within)
            if isinstance(query, wq.Or) and query.subqueries:
                return Matches.any_of([self.evaluate(q, within) for q in query.subqueries])
        return self._by_whoosh(query, within)

    def _everything(self) -> Matches:
        """Every live document, scored 1 (as Whoosh's Every and InverseMatcher score)."""
        return Matches(self.arrays.live_ids, np.ones(len(self.arrays.live_ids)))

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
        documents those left; Not parts then remove theirs (each adding 1 to the score, as
        Whoosh's InverseMatcher does). A phrase next to other parts is checked last, on the
        stored text of the few documents left, and adds nothing to the score: Whoosh's
        phrase matcher reads the positions of every document holding all its words (pickled
        posting blocks, the slowest thing to read), whatever else the query asks."""
        queries = list(_flattened(queries))
        phrases = [q for q in queries if self._checkable(q)]
        rest = [q for q in queries if q not in phrases]
        if not rest:  # phrases alone: Whoosh finds them
            rest, phrases = phrases, []
        negative = [q.query for q in rest if isinstance(q, wq.Not) and q.boost == 1.0]
        positive = [q for q in rest if not (isinstance(q, wq.Not) and q.boost == 1.0)]
        positive.sort(key=lambda q: (not self._native(q), self.scoring.size(q)))
        found = None
        for part in positive:
            done = self.evaluate(part, within if found is None else found.ids)
            found = done if found is None else found.both(done)
        if found is None:
            found = Matches(self.arrays.live_ids, np.zeros(len(self.arrays.live_ids)))
        for part in negative:
            found = found.without(self.evaluate(part, found.ids))
            found.score = found.score + 1.0
        for phrase in phrases:
            found = found.only(self._holding(phrase, found.ids))
        return found

    def _holding(self, phrase: wq.Phrase, ids: np.ndarray) -> np.ndarray:
        """Which of the documents `ids` have the phrase's words next to each other, in order,
        in their stored text as the phrase's field analyses it."""
        stored = self.stored_text[phrase.fieldname]
        analyzer = self.searcher.schema[phrase.fieldname].analyzer
        words = list(phrase.words)
        n = len(words)

        def holds(doc: int) -> bool:
            text = self.searcher.stored_fields(doc).get(stored, "")
            tokens = [t.text for t in analyzer(text)]
            return any(tokens[i : i + n] == words for i in range(len(tokens) - n + 1))

        return np.array([holds(doc) for doc in ids.tolist()], dtype=bool)

    def _term(self, query: wq.Term, within: np.ndarray | None) -> Matches:
        try:
            matcher = self.reader.postings(query.fieldname, query.text)
        except TermNotFound:
            return Matches.none()
        if isinstance(matcher, FilterMatcher):  # deleted documents: dropped by `live` later
            matcher = matcher.child
        if isinstance(matcher, W3LeafMatcher):
            ids, weights = _leaf_postings(matcher, within)
        else:  # a short list kept in the term's entry
            ids, weights = _listed_postings(matcher)
        scores = self.scoring.scores(
            query, weights, lambda: self.arrays.length_bytes(query.fieldname)[ids]
        )
        if scores is None:
            return self._by_whoosh(query, within)
        return Matches(ids, scores)

    def _by_whoosh(self, query: wq.Query, within: np.ndarray | None) -> Matches:
        """Matches found by Whoosh's matcher, one document at a time; with `within`, only
        those documents: the matcher and the candidates leapfrog, each skipping to the
        other."""
        matcher = query.matcher(self.searcher, self.searcher.context())
        ids: list[int] = []
        scores: list[float] = []
        candidates = None if within is None else within.tolist()
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
        return Matches(np.array(ids, dtype=np.int64), np.array(scores))


def _flattened(queries: Iterable[wq.Query]) -> Iterator[wq.Query]:
    """The parts of nested Ands as the parts of one (a phrase inside waits for them all)."""
    for query in queries:
        if isinstance(query, wq.And) and query.boost == 1.0:
            yield from _flattened(query.subqueries)
        else:
            yield query


def _listed_postings(matcher) -> tuple[np.ndarray, np.ndarray]:
    """Document numbers and weights of a term's few postings kept in its entry."""
    ids: list[int] = []
    weights: list[float] = []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float32)


def _leaf_postings(
    matcher: W3LeafMatcher, within: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Document numbers and weights of a term's postings, whole blocks at a time (a matcher
    that skipped deleted documents at the start of its first block gets them back; `live`
    drops them); with `within`, only the blocks that may hold one of those documents are
    read: a block's header tells its last document, and decoding it costs as much as a
    hundred postings. The block is decoded here as W3LeafMatcher._read_ids/_read_weights do,
    without their per-posting Python loops."""
    ids: list[int] = []
    weights: list[np.ndarray] = []
    wanted = None if within is None else within.tolist()
    at, last = 0, -1
    while matcher.is_active():
        if wanted is not None:
            at = bisect_right(wanted, last, at)
            if at == len(wanted):
                break
            last = matcher.block_max_id()
        if wanted is None or wanted[at] <= last:
            if matcher._data is None:
                matcher._read_data()
            deltas, block_weights = matcher._data[0], matcher._data[1]
            ids.extend(accumulate(deltas))
            if block_weights is None or isinstance(block_weights, float):
                one = 1.0 if block_weights is None else block_weights
                weights.append(np.full(matcher._blocklength, one, dtype=np.float32))
            else:
                weights.append(np.array(block_weights, dtype=np.float32))
        if matcher._lastblock:
            break
        matcher._next_block()
    found = np.array(ids, dtype=np.int64)
    return found, (np.concatenate(weights) if weights else np.zeros(0, dtype=np.float32))


class Ranked(NamedTuple):
    total: int  # every match
    best: list[tuple[int, float]]  # (document number, score), best first
    # Per facet field, per value: (matches, the document number of one of them).
    facets: dict[str, dict[str, tuple[int, int]]]


def top(
    query: wq.Query,
    searcher: Searcher,
    arrays_of: Callable[[object], SegmentArrays],
    limit: int,
    by_time: bool = False,
    stored_text: Mapping[str, str] | None = None,
    facets: Sequence[str] = (),
    chats: frozenset[str] | None = None,
) -> Ranked:
    """The number of matches and the best `limit` as (document number, score): by score,
    ties by document number, as Whoosh orders them; or, `by_time`, newest first. With
    `facets` (ID fields of one value per document), how many matches have each value. With
    `chats`, only the documents of those chats match: the total, the best and the facets
    count nothing else."""
    counted: dict[str, dict[str, tuple[int, int]]] = {field: {} for field in facets}
    if not searcher.doc_count_all():
        return Ranked(0, [], counted)
    subsearchers = searcher.subsearchers or [(searcher, 0)]
    total = 0
    docs: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    scoring = Scoring(
        searcher, None if chats is None else VisibleStatistics(searcher, arrays_of, chats)
    )
    for sub, offset in subsearchers:
        arrays = arrays_of(sub.reader())
        found = SegmentQuery(sub, arrays, scoring, stored_text or {}).evaluate(query)
        found = found.only(arrays.live[found.ids])
        if chats is not None:
            found = found.only(arrays.visible(chats)[found.ids])
        ids, score = found.ids, found.score
        total += len(ids)
        for field in facets:
            _count(arrays, field, ids, offset, counted[field])
        key = -arrays.posted()[ids] if by_time else -score
        if len(ids) > limit:
            # Only documents at least as good as this segment's limit-th best can make it.
            best = key <= np.partition(key, limit - 1)[limit - 1]
            ids, score, key = ids[best], score[best], key[best]
        docs.append(ids + offset)
        scores.append(score)
        keys.append(key)
    if not docs or limit <= 0:
        return Ranked(total, [], counted)
    all_docs, all_scores, all_keys = (np.concatenate(a) for a in (docs, scores, keys))
    order = np.lexsort((all_docs, all_keys))[:limit]
    return Ranked(total, [(int(all_docs[i]), float(all_scores[i])) for i in order], counted)


def _count(
    arrays: SegmentArrays,
    field: str,
    ids: np.ndarray,
    offset: int,
    into: dict[str, tuple[int, int]],
) -> None:
    numbers, of_doc = arrays.keys(field)
    values = list(numbers)
    found = of_doc[ids]
    kept = found >= 0
    present, first, counts = np.unique(found[kept], return_index=True, return_counts=True)
    holders = ids[kept][first] + offset
    for number, count, holder in zip(
        present.tolist(), counts.tolist(), holders.tolist(), strict=True
    ):
        value = values[number]
        before = into.get(value)
        into[value] = (count + before[0], before[1]) if before else (count, holder)


def neighbours(
    searcher: Searcher,
    arrays_of: Callable[[object], SegmentArrays],
    docnum: int,
    chat: str,
    posted: int,
) -> tuple[int | None, int | None]:
    """The document numbers of the live messages just before and just after document
    `docnum` (of `chat`, at `posted`) in its chat, by (time, document number)."""
    before: tuple[int, int] | None = None
    after: tuple[int, int] | None = None
    for sub, offset in searcher.subsearchers or [(searcher, 0)]:
        docs, times = arrays_of(sub.reader()).timeline(chat)
        if not len(docs):
            continue
        numbers = docs + offset
        lo, hi = np.searchsorted(times, [posted, posted + 1])
        at = int(lo + np.searchsorted(numbers[lo:hi], docnum))
        if at > 0:
            before = max(before or (-(2**63), -1), (int(times[at - 1]), int(numbers[at - 1])))
        at += at < len(numbers) and numbers[at] == docnum
        if at < len(numbers):
            after = min(after or (2**63, 2**63), (int(times[at]), int(numbers[at])))
    return (before[1] if before else None), (after[1] if after else None)
