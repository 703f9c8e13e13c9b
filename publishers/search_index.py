"""Full-text search: the backend interface, the Whoosh backend, and the search publisher.

`SearchBackend` is the one seam a search cluster would fill (design.md, "Scaling out"); every
backend passes tests/support/search_contract.py. The Whoosh backend keeps:
- one document per live message: body stemmed (`body`), exact (`body_exact`, for phrases and
  stop words) and the pairs of adjacent words that hold a stop word (`body_pairs`, for
  phrases), author handle and display name, chat, UTC time, id, link;
- a deleted or removed message has no document; an edit replaces the document;
- one writer, one commit per batch without merging (a big batch is split between writer
  processes, each writing a segment); small segments are merged by `maintain()`, which the
  change loop calls only when it is idle.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

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
from whoosh.lang import porter

from chatchannels.publishers import paths, search_scoring
from chatchannels.publishers.files import write_atomic
from chatchannels.publishers.markup import body_text
from chatchannels.publishers.model import Change, Message
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
from chatchannels.publishers.store import read_messages

STATE_FILE = ".chatchannels-index.json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORTS = ("relevance", "time")
# More small segments than this make searches slow; merge them when idle.
MAX_SEGMENTS = 8
# A batch this big is split between processes, each writing its own segment; smaller ones
# are not worth starting processes for.
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

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "chat": self.chat,
            "author": self.author,
            "author_name": self.author_name,
            "posted_utc": self.posted_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "url": self.url,
            "score": round(self.score, 4),
            "snippet": [{"text": text, "match": match} for text, match in self.snippet],
        }


@dataclass(frozen=True)
class SearchResults:
    query: str
    sort: str
    total: int
    hits: tuple[SearchHit, ...]

    def as_json(self) -> dict:
        return {
            "query": self.query,
            "sort": self.sort,
            "total": self.total,
            "hits": [hit.as_json() for hit in self.hits],
        }


class SearchBackend(Protocol):
    def watermark(self) -> int:
        """The change_seq of the last batch written (0 for a new index)."""

    def write_batch(
        self, documents: Sequence[SearchDocument], removed: Sequence[str], watermark: int
    ) -> None:
        """Add or replace `documents`, remove ids `removed`, then record `watermark`; visible
        to searches together. Idempotent."""

    def search(self, query: str, sort: str = "relevance", limit: int = 20) -> SearchResults:
        """Hits for the query language of search_query.py; raises QueryError for bad input."""

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


def whoosh_schema() -> Schema:
    # Few analysed fields: each costs a tokenizer pass per message on the indexing path.
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
        body=TEXT(analyzer=StemmingAnalyzer(), stored=True, phrase=False),
        body_exact=TEXT(analyzer=exact, phrase=True),
        body_pairs=TEXT(analyzer=exact | StopWordPairs(), phrase=False),
        who=TEXT(analyzer=exact, phrase=False),
        chat_words=TEXT(analyzer=exact, phrase=False),
        chat=STORED,
        author=STORED,
        author_name=STORED,
        url=STORED,
    )


def whoosh_fields(doc: SearchDocument) -> dict[str, object]:
    """The Whoosh document of a message (whoosh_schema's fields)."""
    utc = doc.posted_utc.astimezone(UTC)
    return {
        "id": doc.id,
        "posted": (utc - EPOCH) // timedelta(microseconds=1),
        "posted_utc": utc,
        "month": utc.strftime("%Y-%m"),
        "day": utc.strftime("%Y-%m-%d"),
        "body": doc.body,
        "body_exact": doc.body,
        "body_pairs": doc.body,
        "who": f"{doc.author} {doc.author_name}",
        "chat_words": doc.chat,
        "chat": doc.chat,
        "author": doc.author,
        "author_name": doc.author_name,
        "url": doc.url,
    }


class IndexMissingError(LookupError):
    """There is no index where one was expected."""


class WhooshBackend:
    def __init__(self, index_dir: Path, create: bool = True) -> None:
        self.index_dir = index_dir
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

    def write_batch(
        self, documents: Sequence[SearchDocument], removed: Sequence[str], watermark: int
    ) -> None:
        parallel = {}
        if PROCS > 1 and len(documents) >= PARALLEL_BATCH:
            parallel = {"procs": PROCS, "multisegment": True}
        writer = self.ix.writer(limitmb=POOL_MB, **parallel)
        try:
            # Deleting what exists and then adding is Whoosh's advice for batches: an
            # update_document runs a query per document, for the new ones (most) too.
            existing = writer.searcher().reader()
            for doc_id in (*removed, *(d.id for d in documents)):
                if ("id", doc_id) in existing:
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

    def _translate(self, clause: Clause) -> wq.Query:
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
            # Stop words are not in `body`; a query of only stop words looks them up exactly.
            found = self._terms("body", clause.text) or self._terms("body_exact", clause.text)
            return found or wq.Every()
        if isinstance(clause, Field):
            field = "who" if clause.name == "author" else "chat_words"
            return self._terms(field, clause.value) or wq.NullQuery
        if isinstance(clause, TimeRange):
            months, days = cover_range(clause.start, clause.end, self._known_months())
            terms = [wq.Term("month", m) for m in months] + [wq.Term("day", d) for d in days]
            return wq.Or(terms) if terms else wq.NullQuery
        if isinstance(clause, Not):
            return wq.Not(self._translate(clause.clause))
        if isinstance(clause, AnyOf):
            return wq.Or([self._translate(c) for c in clause.clauses])
        parts = [self._translate(c) for c in clause.clauses]
        if not has_positive(clause):
            parts.insert(0, wq.Every())
        return wq.And(parts)

    def _marker(self, tree: AllOf):
        """Where a hit's body shows the query's words: the spans of the tokens whose stem or
        exact form the query asked for (two tokenizer passes over each hit's body)."""
        stems, exact = set(), set()
        for text in highlight_words(tree):
            stems.update(self._tokens("body", text))
            exact.update(self._tokens("body_exact", text))

        def spans(body: str) -> list[tuple[int, int]]:
            found = []
            for match in WORDS.finditer(body):
                word = match.group().lower()
                if word in exact or stem_word(word) in stems:
                    found.append(match.span())
            return found

        return spans

    def search(self, query: str, sort: str = "relevance", limit: int = 20) -> SearchResults:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        tree = parse_query(query)
        if not tree.clauses:
            return SearchResults(query, sort, 0, ())
        spans = self._marker(tree)
        with self._lock:
            if not self._searcher.up_to_date():
                # Searcher.refresh() fails on an index that was empty when opened
                # (whoosh-reloaded 2.7.5 reuses an EmptyReader); reopening always works.
                self._searcher.close()
                self._searcher = self.ix.searcher()
                self._months = None
                self._forget_segments()
            whoosh_query = self._translate(tree)
            total, best = search_scoring.top(
                whoosh_query,
                self._searcher,
                self._segment_arrays,
                limit,
                by_time=sort == "time",
                stored_text={"body_exact": "body"},
            )
            hits = tuple(
                self._hit(self._searcher.stored_fields(docnum), score, spans)
                for docnum, score in best
            )
        return SearchResults(query, sort, total, hits)

    def _segment_arrays(self, reader) -> search_scoring.SegmentArrays:
        segment = reader.segment().segment_id()
        found = self._segments.get(segment)
        if found is None:
            found = self._segments[segment] = search_scoring.SegmentArrays(reader, self._columns)
        return found

    @staticmethod
    def _hit(fields: dict, score: float, spans) -> SearchHit:
        return SearchHit(
            id=fields["id"],
            chat=fields["chat"],
            author=fields["author"],
            author_name=fields.get("author_name", ""),
            posted_utc=fields["posted_utc"],
            url=fields["url"],
            score=score,
            snippet=make_snippet(fields["body"], spans(fields["body"])),
        )


class SearchPublisher:
    """Keeps a search backend current from the change stream (publishers/changes.py)."""

    name = "search"

    def __init__(self, backend: SearchBackend) -> None:
        self.backend = backend

    def watermark(self) -> int:
        return self.backend.watermark()

    def caught_up(self, conn: psycopg.Connection) -> None:
        pass  # every batch is committed to the index as it comes

    def idle(self) -> None:
        self.backend.maintain()

    def close(self) -> None:
        self.backend.close()

    def apply(self, conn: psycopg.Connection, changes: Sequence[Change]) -> None:
        ids = sorted({c.key for c in changes if c.kind == "message"})
        messages = read_messages(conn, ids)
        live = [SearchDocument.of(m) for m in messages if not m.deleted]
        live_ids = {d.id for d in live}
        self.backend.write_batch(live, [i for i in ids if i not in live_ids], changes[-1].seq)
