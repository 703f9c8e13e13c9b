"""Full-text search: the backend interface, the Whoosh backend, and the search publisher.

`SearchBackend` is the one seam a search cluster would fill (design.md, "Scaling out"); every
backend passes tests/support/search_contract.py. The Whoosh backend keeps:
- one document per live message: body stemmed (`body`), exact (`body_exact`, for phrases and
  stop words), the pairs of adjacent words that hold a stop word (`body_pairs`, for
  phrases) and the parts of its URLs and identifiers (`parts`, search_words.py), author
  handle and display name, chat, UTC time, id, link; the chat and the author exactly
  (`chat_key`, `author_key`: facet counts, narrowing, and a hit's neighbours in its chat);
- the chats' titles (names.chat_title) in a file beside the index, kept by the publisher:
  a topic change does not rewrite the chat's messages;
- a deleted or removed message has no document; an edit replaces the document;
- one writer, one commit per batch without merging (a big batch is split between writer
  processes, each writing a segment); small segments are merged by `maintain()`, which the
  change loop calls only when it is idle.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import psycopg
from whoosh import index, writing
from whoosh import query as wq
from whoosh.analysis import (
    STOP_WORDS,
    Filter,
    RegexTokenizer,
    StandardAnalyzer,
    StemmingAnalyzer,
)
from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, STORED, TEXT, Schema
from whoosh.formats import Frequency, Positions
from whoosh.lang import porter
from whoosh.system import pack_uint

from chatchannels.publishers import paths, search_scoring, whoosh_fixes
from chatchannels.publishers.files import write_atomic
from chatchannels.publishers.markup import body_text
from chatchannels.publishers.model import Change, Message
from chatchannels.publishers.names import chat_title
from chatchannels.publishers.search_query import (
    AllOf,
    AnyOf,
    Clause,
    Field,
    Not,
    TimeRange,
    Words,
    cover_range,
    has_positive,
    highlight_words,
    make_snippet,
    parse_query,
)
from chatchannels.publishers.search_words import (
    PartsTokenizer,
    compound_parts,
    compounds,
    indexed_parts,
    pairs,
    without_compounds,
)
from chatchannels.publishers.store import chats_titled_by, read_chat_titles, read_messages
from chatchannels.publishers.whoosh_ids import IndexedIds

whoosh_fixes.apply()

STATE_FILE = ".chatchannels-index.json"
TITLES_FILE = ".chatchannels-titles.json"
# Facet values listed per field (the counts are exact; the rest are left off).
FACET_VALUES = 20
# A neighbour's text is cut to this many characters.
CONTEXT_CHARS = 160
FACETS = {"chat": "chat_key", "author": "author_key"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORTS = ("relevance", "time")
# More small segments than this make searches slow; merge them when idle.
MAX_SEGMENTS = 8
# A batch this big is split between processes, each writing its own segment; smaller ones
# are not worth starting processes for. The split costs a sixth more CPU (two pools, more
# segments), so it pays only where the publisher has the machine to itself (`publish
# --once`, a replay): following the store, it shares the cores with the processor and the
# site, and writes with one process (publishing.py).
PARALLEL_BATCH = 10_000
PROCS = max(1, min(2, len(os.sched_getaffinity(0))))
# Whoosh keeps postings in memory up to this size and sorts them on disk beyond it; the
# disk round trip (pickling every posting twice) costs a third of the build.
POOL_MB = 1024
# What the snippets mark: the body's words as the body fields' tokenizer cuts them, matched
# lowercased (`body_exact`) or stemmed (`body`, Whoosh's default Porter stemmer). One regex
# pass with a stem cache costs a third of the two analyzer pipelines it replaced.
WORDS = RegexTokenizer().expression
stem_word = functools.lru_cache(maxsize=50_000)(porter.stem)


@dataclass(frozen=True)
class SearchDocument:
    id: str
    chat: str
    author: str
    author_name: str
    posted_utc: datetime
    body: str
    url: str

    @classmethod
    def of(cls, message: Message) -> SearchDocument:
        month = paths.month_of(message.posted_utc)
        return cls(
            message.id,
            message.chat,
            message.author,
            message.author_name,
            message.posted_utc,
            # A member event's body is empty: its line ("alice added bob") is what it says.
            body_text(message),
            paths.message_link(message.chat, month, message.id),
        )


def _utc_json(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Neighbour:
    """The message just before or after a hit in its chat, its text cut short."""

    id: str
    author: str
    author_name: str
    posted_utc: datetime
    url: str
    text: str

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "author": self.author,
            "author_name": self.author_name,
            "posted_utc": _utc_json(self.posted_utc),
            "url": self.url,
            "text": self.text,
        }


@dataclass(frozen=True)
class SearchHit:
    id: str
    chat: str
    author: str
    author_name: str
    posted_utc: datetime
    url: str  # relative to the site root: opens the message in its month page
    score: float
    snippet: tuple[tuple[str, bool], ...]  # (text, highlighted) pieces, not escaped
    chat_title: str = ""
    before: Neighbour | None = None
    after: Neighbour | None = None

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "chat": self.chat,
            "chat_title": self.chat_title,
            "author": self.author,
            "author_name": self.author_name,
            "posted_utc": _utc_json(self.posted_utc),
            "url": self.url,
            "score": round(self.score, 4),
            "snippet": [{"text": text, "match": match} for text, match in self.snippet],
            "before": self.before.as_json() if self.before else None,
            "after": self.after.as_json() if self.after else None,
        }


@dataclass(frozen=True)
class FacetValue:
    """How many matches have this chat (value: its name, label: its title) or author
    (value: the handle, label: the display name)."""

    value: str
    label: str
    count: int

    def as_json(self) -> dict:
        return {"value": self.value, "label": self.label, "count": self.count}


@dataclass(frozen=True)
class SearchResults:
    query: str
    sort: str
    total: int
    hits: tuple[SearchHit, ...]
    offset: int = 0
    limit: int = 20
    # "chat" and "author": the values with most matches first, FACET_VALUES at most.
    facets: dict[str, tuple[FacetValue, ...]] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "query": self.query,
            "sort": self.sort,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "hits": [hit.as_json() for hit in self.hits],
            "facets": {
                name: [value.as_json() for value in self.facets.get(name, ())] for name in FACETS
            },
        }


class SearchBackend(Protocol):
    def watermark(self) -> int:
        """The change_seq of the last batch written (0 for a new index)."""

    def write_batch(
        self,
        documents: Sequence[SearchDocument],
        removed: Sequence[str],
        watermark: int,
        titles: Mapping[str, str] | None = None,
    ) -> None:
        """Add or replace `documents`, remove ids `removed`, set the chats' `titles` (chat
        name -> title), then record `watermark`; visible to searches together. Idempotent."""

    def titles(self) -> dict[str, str]:
        """The chats' titles written so far."""

    def search(
        self,
        query: str,
        sort: str = "relevance",
        limit: int = 20,
        offset: int = 0,
        chats: frozenset[str] | None = None,
    ) -> SearchResults:
        """Hits `offset` to `offset + limit` for the query language of search_query.py, each
        with its chat's title and its neighbours in the chat, and the facets of every match;
        raises QueryError for bad input. With `chats` (a reader's, gate.py; None: every
        chat), the search is that of an index holding only those chats' messages: the
        total, hits, facets and neighbours show nothing of any other."""

    def maintain(self) -> None:
        """Housekeeping off the hot path (merging segments)."""

    def close(self) -> None: ...


class StopWordPairs(Filter):
    """Each pair of adjacent words of which one is a stop word, as one token ("the build").

    A phrase of `body_exact` walks the postings of all its words, and a stop word has postings
    for most messages, so "the build" is far slower than "please review". A pair is
    one short lookup. Pairs of other words would double the terms of the index (and its build
    time) for phrases that are already cheap; Lucene calls this filter CommonGrams.
    """

    def __call__(self, tokens):
        previous = None
        for token in tokens:
            word = token.text
            if previous is not None and (previous in STOP_WORDS or word in STOP_WORDS):
                token.text = f"{previous} {word}"
                yield token
            previous = word


class TermsText(TEXT):
    """A TEXT field that also takes its terms, as whoosh_fields makes them, and indexes a list
    of them without Whoosh's token objects (a third of the cost of adding a message); a string
    is analysed as in TEXT. The postings are those Whoosh makes of the list (test_search_whoosh
    checks): a term's frequency, weight (the frequency, as every token's boost is 1) and, in a
    field with phrases, its positions. An index's table of contents names this class (Whoosh
    pickles the schema): renamed or moved, it leaves the indexes written since unreadable."""

    def index(self, value, **kwargs):
        kind = type(self.format)
        if not isinstance(value, list) or kind not in (Frequency, Positions):
            return super().index(value, **kwargs)
        boost = self.format.field_boost
        if kind is Positions:
            places = defaultdict(list)
            for place, term in enumerate(value):
                places[term].append(place)
            return [
                (term.encode(), len(p), len(p) * boost, self.format.encode(p))
                for term, p in places.items()
            ]
        return [(term.encode(), n, n * boost, pack_uint(n)) for term, n in Counter(value).items()]


def whoosh_schema() -> Schema:
    # Few analysed fields: each adds its postings and a length to every message indexed.
    # `who` holds the author's handle and display name, `chat_words` the chat's name; both
    # are matched word by word, which also matches a whole name (its words in any order).
    exact = StandardAnalyzer(stoplist=None, minsize=1)
    return Schema(
        id=ID(stored=True, unique=True),
        # Microseconds since the epoch, only to sort by: date filters look up month and day
        # terms instead, far cheaper in Whoosh than a numeric range, so the time is not
        # indexed (a DATETIME field would add eight terms to every message).
        posted=COLUMN(NumericColumn("q")),
        posted_utc=STORED,
        month=ID,
        day=ID,
        body=TermsText(analyzer=StemmingAnalyzer(), stored=True, phrase=False),
        body_exact=TermsText(analyzer=exact, phrase=True),
        body_pairs=TermsText(analyzer=exact | StopWordPairs(), phrase=False),
        parts=TermsText(analyzer=PartsTokenizer(), phrase=False),
        chat_key=ID,
        author_key=ID,
        who=TermsText(analyzer=exact, phrase=False),
        chat_words=TermsText(analyzer=exact, phrase=False),
        chat=STORED,
        author=STORED,
        author_name=STORED,
        url=STORED,
    )


def _words(text: str) -> list[str]:
    """What the `exact` analyzer makes of `text` (RegexTokenizer | LowercaseFilter)."""
    return [match.group().lower() for match in WORDS.finditer(text)]


def whoosh_fields(doc: SearchDocument) -> dict[str, object]:
    """The Whoosh document of a message (whoosh_schema's fields).

    The analysed fields are given as their terms (Whoosh indexes a list of strings as it is),
    made from one tokenizer pass over the body instead of one analyzer pipeline per field,
    which cost a quarter of the build: the same terms as the fields' analyzers make
    (test_search_whoosh checks), which still analyse the queries."""
    utc = doc.posted_utc.astimezone(UTC)
    words = _words(doc.body)
    return {
        "id": doc.id,
        "posted": (utc - EPOCH) // timedelta(microseconds=1),
        "posted_utc": utc,
        "month": utc.strftime("%Y-%m"),
        "day": utc.strftime("%Y-%m-%d"),
        # StemmingAnalyzer: stop words and single letters out, Porter stems.
        "body": [stem_word(w) for w in words if len(w) > 1 and w not in STOP_WORDS],
        "_stored_body": doc.body,
        "body_exact": words,
        "body_pairs": [
            f"{a} {b}" for a, b in itertools.pairwise(words) if a in STOP_WORDS or b in STOP_WORDS
        ],
        "parts": indexed_parts(doc.body),
        "chat_key": doc.chat,
        "author_key": doc.author,
        "who": _words(f"{doc.author} {doc.author_name}"),
        "chat_words": _words(doc.chat),
        "chat": doc.chat,
        "author": doc.author,
        "author_name": doc.author_name,
        "url": doc.url,
    }


class IndexMissingError(LookupError):
    """There is no index where one was expected."""


class WhooshBackend:
    def __init__(self, index_dir: Path, create: bool = True, procs: int = PROCS) -> None:
        self.index_dir = index_dir
        self.procs = procs
        if index.exists_in(str(index_dir)):
            self.ix = index.open_dir(str(index_dir))
        elif create:
            index_dir.mkdir(parents=True, exist_ok=True)
            self.ix = index.create_in(str(index_dir), whoosh_schema())
        else:
            raise IndexMissingError(
                f"no search index in {index_dir}; build it with `chatchannels publish --once`"
            )
        # Index.schema reads the table of contents from disk on every use.
        self.schema = self.ix.schema
        if sorted(self.schema.names()) != sorted(whoosh_schema().names()):
            self.ix.close()
            raise IndexMissingError(
                f"the search index in {index_dir} has other fields than this version writes;"
                " rebuild it with `chatchannels publish --rebuild`"
            )
        self._searcher = self.ix.searcher()
        self._months: list[str] | None = None
        # Per-segment arrays for search_scoring: columns by (segment, column), kept while
        # the segment exists; live documents per segment of the current searcher.
        self._columns: dict[tuple[str, str], object] = {}
        self._segments: dict[str, search_scoring.SegmentArrays] = {}
        self._lock = threading.Lock()
        self._titles: tuple[float, dict[str, str]] | None = None  # (file's mtime, titles)
        self._labels: dict[int, str] = {}  # document -> its author's display name, per searcher
        self._ids = IndexedIds()

    def _forget_segments(self) -> None:
        current = {segment.segment_id() for segment in self.ix._segments()}
        self._segments.clear()
        for key in [k for k in self._columns if k[0] not in current]:
            del self._columns[key]

    def watermark(self) -> int:
        try:
            return int(json.loads((self.index_dir / STATE_FILE).read_text())["change_seq"])
        except FileNotFoundError:
            return 0

    def titles(self) -> dict[str, str]:
        path = self.index_dir / TITLES_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._titles is None or self._titles[0] != mtime:
            self._titles = (mtime, json.loads(path.read_text()))
        return self._titles[1]

    def write_batch(
        self,
        documents: Sequence[SearchDocument],
        removed: Sequence[str],
        watermark: int,
        titles: Mapping[str, str] | None = None,
    ) -> None:
        parallel = {}
        if self.procs > 1 and len(documents) >= PARALLEL_BATCH:
            parallel = {"procs": self.procs, "multisegment": True}
        writer = self.ix.writer(limitmb=POOL_MB, **parallel)
        try:
            # Deleting what exists and then adding is Whoosh's advice for batches: an
            # update_document runs a query per document, for the new ones (most) too.
            reader = writer.searcher().reader()
            for doc_id in self._ids.existing(reader, (*removed, *(d.id for d in documents))):
                writer.delete_by_term("id", doc_id)
            for doc in documents:
                writer.add_document(**whoosh_fields(doc))
            writer.commit(merge=False)
        except BaseException:
            # A commit that failed (a full disk) still holds the write lock: every later
            # writer of this process would find the index locked.
            if not writer.is_closed:
                writer.cancel()
            raise
        if titles:
            known = json.dumps({**self.titles(), **titles}, ensure_ascii=False, sort_keys=True)
            write_atomic(self.index_dir, TITLES_FILE, known.encode() + b"\n")
        write_atomic(
            self.index_dir, STATE_FILE, json.dumps({"change_seq": watermark}).encode() + b"\n"
        )

    def maintain(self) -> None:
        # Merging small segments is cheap and usually enough. Many segments of equal size (a
        # rebuild commits one per batch) are not "small", and searching 20 segments takes
        # about twice as long as one (bench_publishers), so then the whole index is merged:
        # minutes for 200,000 messages, which is why this runs only when the loop is idle.
        if len(self.ix._segments()) > MAX_SEGMENTS:
            self.ix.writer().commit(mergetype=writing.MERGE_SMALL)
        if len(self.ix._segments()) > MAX_SEGMENTS:
            self.ix.optimize(limitmb=POOL_MB)

    def close(self) -> None:
        self._searcher.close()
        self.ix.close()

    # Translating the query tree.
    def _tokens(self, field: str, text: str) -> list[str]:
        return [t.text for t in self.schema[field].analyzer(text)]

    def _terms(self, field: str, text: str) -> wq.Query | None:
        tokens = self._tokens(field, text)
        if not tokens:
            return None
        return (
            wq.And([wq.Term(field, t) for t in tokens])
            if len(tokens) > 1
            else wq.Term(field, tokens[0])
        )

    def _known_months(self) -> list[str]:
        """The months that have messages (the `month` terms), read once per searcher."""
        if self._months is None:
            self._months = [m.decode() for m in self._searcher.lexicon("month")]
        return self._months

    def _translate(self, clause: Clause, chats: frozenset[str] | None = None) -> wq.Query:
        if isinstance(clause, Words):
            if clause.phrase:
                exact = self._tokens("body_exact", clause.text)
                if len(exact) < 2:
                    return wq.Term("body_exact", exact[0]) if exact else wq.Every()
                pairs = [wq.Term("body_pairs", p) for p in self._tokens("body_pairs", clause.text)]
                if len(exact) == 2 and pairs:
                    return pairs[0]
                # The pairs and the stems (or the words, when there are neither) find the
                # few messages whose text is checked for the phrase.
                finders = pairs + [wq.Term("body", s) for s in self._tokens("body", clause.text)]
                if not finders:
                    finders = [wq.Term("body_exact", w) for w in dict.fromkeys(exact)]
                return wq.And([*finders, wq.Phrase("body_exact", exact)])
            return self._words(clause.text)
        if isinstance(clause, Field):
            # An exact chat name or handle (a facet's link) is that chat or person alone.
            key = FACETS[clause.name]
            if self._has_key(key, clause.value, chats):
                return wq.Term(key, clause.value)
            words = "who" if clause.name == "author" else "chat_words"
            return self._terms(words, clause.value) or wq.NullQuery
        if isinstance(clause, TimeRange):
            months, days = cover_range(clause.start, clause.end, self._known_months())
            terms = [wq.Term("month", m) for m in months] + [wq.Term("day", d) for d in days]
            return wq.Or(terms) if terms else wq.NullQuery
        if isinstance(clause, Not):
            return wq.Not(self._translate(clause.clause, chats))
        if isinstance(clause, AnyOf):
            return wq.Or([self._translate(c, chats) for c in clause.clauses])
        parts = [self._translate(c, chats) for c in clause.clauses]
        if not has_positive(clause):
            parts.insert(0, wq.Every())
        return wq.And(parts)

    def _has_key(self, key: str, value: str, chats: frozenset[str] | None) -> bool:
        """Whether a chat or author of that exact name has messages (in `chats`): whether an
        author exists only in chats the reader cannot see must not change what the query
        finds in those they can."""
        if (key, value) not in self._searcher.reader():
            return False
        if chats is None or (key == "chat_key" and value in chats):
            return True
        if key == "chat_key":
            return False
        for sub, _ in self._searcher.subsearchers or [(self._searcher, 0)]:
            arrays = self._segment_arrays(sub.reader())
            numbers, of_doc = arrays.keys(key)
            number = numbers.get(value)
            if number is not None and np.any((of_doc == number) & arrays.visible(chats)):
                return True
        return False

    def _words(self, text: str) -> wq.Query:
        """Words outside quotes: a compound (`example.org`, `fooBar`, `ABC-123`) is its pairs
        of adjacent parts, each within one compound; any other word is its stem in the body or
        a part of a compound ("example" finds `https://example.com/`)."""
        found: list[wq.Query] = [
            wq.Term("parts", pair) for parts in compound_parts(text) for pair in pairs(parts)
        ]
        plain = without_compounds(text)
        for word in self._tokens("body_exact", plain):
            stems = self._tokens("body", word)
            if stems:
                found.append(wq.Or([*(wq.Term("body", s) for s in stems), wq.Term("parts", word)]))
        if not found:
            # Stop words and single letters are not in `body`; a query of only those looks
            # them up exactly.
            found = [
                wq.Or([wq.Term("body_exact", word), wq.Term("parts", word)])
                for word in self._tokens("body_exact", plain)
            ]
        if not found:
            return wq.Every()
        return found[0] if len(found) == 1 else wq.And(found)

    def _marker(self, tree: AllOf):
        """Where a hit's body shows the query's words: the spans of the tokens whose stem or
        exact form the query asked for (two tokenizer passes over each hit's body)."""
        stems, exact, parts = set(), set(), set()
        for text in highlight_words(tree):
            stems.update(self._tokens("body", text))
            exact.update(self._tokens("body_exact", text))
            parts.update(p for found in compound_parts(text) for p in found)
        parts.update(exact)

        def spans(body: str) -> list[tuple[int, int]]:
            found = []
            for match in WORDS.finditer(body):
                word = match.group().lower()
                if word in exact or stem_word(word) in stems:
                    found.append(match.span())
            for _, part_spans in compounds(body):
                found.extend((a, b) for a, b in part_spans if body[a:b].lower() in parts)
            # A word marked whole covers its parts.
            kept: list[tuple[int, int]] = []
            for start, end in sorted(found, key=lambda span: (span[0], -span[1])):
                if not kept or start >= kept[-1][1]:
                    kept.append((start, end))
            return kept

        return spans

    def search(
        self,
        query: str,
        sort: str = "relevance",
        limit: int = 20,
        offset: int = 0,
        chats: frozenset[str] | None = None,
    ) -> SearchResults:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be at least 1 and offset at least 0 ({limit}, {offset})")
        tree = parse_query(query)
        if not tree.clauses:
            return SearchResults(query, sort, 0, (), offset, limit)
        spans = self._marker(tree)
        titles = self.titles()
        with self._lock:
            if not self._searcher.up_to_date():
                # Searcher.refresh() fails on an index that was empty when opened
                # (whoosh-reloaded 2.7.5 reuses an EmptyReader); reopening always works.
                self._searcher.close()
                self._searcher = self.ix.searcher()
                self._months = None
                self._labels.clear()
                self._forget_segments()
            ranked = search_scoring.top(
                self._translate(tree, chats),
                self._searcher,
                self._segment_arrays,
                offset + limit,
                by_time=sort == "time",
                stored_text={"body_exact": "body"},
                facets=list(FACETS.values()),
                chats=chats,
            )
            hits = tuple(
                self._hit(docnum, score, spans, titles) for docnum, score in ranked.best[offset:]
            )
            facets = {
                name: self._facet(name, ranked.facets[key], titles) for name, key in FACETS.items()
            }
        return SearchResults(query, sort, ranked.total, hits, offset, limit, facets)

    def _facet(
        self, name: str, counted: dict[str, tuple[int, int]], titles: Mapping[str, str]
    ) -> tuple[FacetValue, ...]:
        most = sorted(counted.items(), key=lambda item: (-item[1][0], item[0]))[:FACET_VALUES]
        if name == "chat":
            return tuple(FacetValue(v, _title(v, titles), n) for v, (n, _) in most)
        return tuple(FacetValue(v, self._author_label(v, doc), n) for v, (n, doc) in most)

    def _author_label(self, handle: str, doc: int) -> str:
        """The display name on one of the author's matching messages (`doc`, in the chats
        searched: a name from another chat would tell of it), read once per searcher."""
        found = self._labels.get(doc)
        if found is None:
            found = self._labels[doc] = self._searcher.stored_fields(doc).get("author_name")
        return found or handle

    def _segment_arrays(self, reader) -> search_scoring.SegmentArrays:
        segment = reader.segment().segment_id()
        found = self._segments.get(segment)
        if found is None:
            found = self._segments[segment] = search_scoring.SegmentArrays(reader, self._columns)
        return found

    def _hit(self, docnum: int, score: float, spans, titles: Mapping[str, str]) -> SearchHit:
        fields = self._searcher.stored_fields(docnum)
        posted = (fields["posted_utc"] - EPOCH) // timedelta(microseconds=1)
        before, after = search_scoring.neighbours(
            self._searcher, self._segment_arrays, docnum, fields["chat"], posted
        )
        return SearchHit(
            id=fields["id"],
            chat=fields["chat"],
            author=fields["author"],
            author_name=fields.get("author_name", ""),
            posted_utc=fields["posted_utc"],
            url=fields["url"],
            score=score,
            snippet=make_snippet(fields["body"], spans(fields["body"])),
            chat_title=_title(fields["chat"], titles),
            before=self._neighbour(before),
            after=self._neighbour(after),
        )

    def _neighbour(self, docnum: int | None) -> Neighbour | None:
        if docnum is None:
            return None
        fields = self._searcher.stored_fields(docnum)
        text = " ".join(fields["body"].split())
        if len(text) > CONTEXT_CHARS:
            text = text[: text.rfind(" ", 0, CONTEXT_CHARS) + 1 or CONTEXT_CHARS].rstrip() + "…"
        return Neighbour(
            fields["id"],
            fields["author"],
            fields.get("author_name", ""),
            fields["posted_utc"],
            fields["url"],
            text,
        )


def _title(chat: str, titles: Mapping[str, str]) -> str:
    # A chat the store had no row for when its messages were indexed is named by its id.
    return titles.get(chat) or chat_title(chat, "")


class SearchPublisher:
    """Keeps a search backend current from the change stream (publishers/changes.py)."""

    name = "search"

    def __init__(self, backend: SearchBackend) -> None:
        self.backend = backend

    def watermark(self) -> int:
        return self.backend.watermark()

    def caught_up(self, conn: psycopg.Connection, finish: bool = True) -> float | None:
        return None  # every batch is committed to the index as it comes

    def idle(self) -> None:
        self.backend.maintain()

    def close(self) -> None:
        self.backend.close()

    def apply(self, conn: psycopg.Connection, changes: Sequence[Change]) -> None:
        ids = sorted({c.key for c in changes if c.kind == "message"})
        messages = read_messages(conn, ids)
        live = [SearchDocument.of(m) for m in messages if not m.deleted]
        live_ids = {d.id for d in live}
        titles = read_chat_titles(conn, sorted(self._retitled(conn, changes, messages)))
        self.backend.write_batch(
            live, [i for i in ids if i not in live_ids], changes[-1].seq, titles
        )

    def _retitled(
        self, conn: psycopg.Connection, changes: Sequence[Change], messages: Sequence[Message]
    ) -> set[str]:
        """The chats whose title may differ from the one the backend has: changed chats,
        chats first seen, and the chats of people whose display name changed."""
        known = self.backend.titles()
        chats = {c.key for c in changes if c.kind == "chat"}
        chats.update(m.chat for m in messages if m.chat not in known)
        chats.update(chats_titled_by(conn, {c.key for c in changes if c.kind == "user"}))
        return chats
