"""Full-text search: the backend interface, the Whoosh backend, and the search publisher.

`SearchBackend` is the one seam a search cluster would fill (design.md, "Scaling out"); every
backend passes tests/unit/test_publishers_search_contract.py. The Whoosh backend keeps:
- one document per live message: body stemmed (`body`) and exact (`body_exact`, for phrases
  and to rank exact words higher), author handle and display name, chat, UTC time, id, link;
- a deleted or removed message has no document; an edit replaces the document;
- one writer, one commit per batch without merging; small segments are merged by
  `maintain()`, which the change loop calls only when it is idle.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import psycopg
from whoosh import index, writing
from whoosh import query as wq
from whoosh.analysis import (
    LowercaseFilter,
    RegexTokenizer,
    StandardAnalyzer,
    StemFilter,
    StemmingAnalyzer,
)
from whoosh.fields import DATETIME, ID, STORED, TEXT, Schema

from chatchannels.publishers import paths
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
SORTS = ("relevance", "time")
# More small segments than this make searches slow; merge them when idle.
MAX_SEGMENTS = 8


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
            message.body,
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
    total_is_exact: bool = True

    def as_json(self) -> dict:
        return {
            "query": self.query,
            "sort": self.sort,
            "total": self.total,
            "total_is_exact": self.total_is_exact,
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


def _naive_utc(moment: datetime) -> datetime:
    # Whoosh's DATETIME stores naive datetimes; ours are all UTC.
    return moment.astimezone(UTC).replace(tzinfo=None)


def whoosh_schema() -> Schema:
    # Few analysed fields: each costs a tokenizer pass per message on the indexing path.
    # `who` holds the author's handle and display name, `chat_words` the chat's name; both
    # are matched word by word, which also matches a whole name (its words in any order).
    exact = StandardAnalyzer(stoplist=None, minsize=1)
    return Schema(
        id=ID(stored=True, unique=True),
        posted=DATETIME(stored=True, sortable=True),
        # Date filters look up these terms: far cheaper in Whoosh than a numeric range.
        month=ID,
        day=ID,
        body=TEXT(analyzer=StemmingAnalyzer(), stored=True, phrase=False),
        body_exact=TEXT(analyzer=exact, phrase=True),
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
        "posted": utc.replace(tzinfo=None),
        "month": utc.strftime("%Y-%m"),
        "day": utc.strftime("%Y-%m-%d"),
        "body": doc.body,
        "body_exact": doc.body,
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
        self._searcher = self.ix.searcher()
        self._lock = threading.Lock()

    def watermark(self) -> int:
        try:
            return int(json.loads((self.index_dir / STATE_FILE).read_text())["change_seq"])
        except FileNotFoundError:
            return 0

    def write_batch(
        self, documents: Sequence[SearchDocument], removed: Sequence[str], watermark: int
    ) -> None:
        fresh = self.ix.doc_count_all() == 0
        writer = self.ix.writer(limitmb=128)
        try:
            for doc_id in removed:
                writer.delete_by_term("id", doc_id)
            # Into an empty index nothing needs replacing: adding skips a lookup per document.
            put = writer.add_document if fresh else writer.update_document
            for doc in documents:
                put(**whoosh_fields(doc))
        except BaseException:
            writer.cancel()
            raise
        writer.commit(merge=False)
        temp = self.index_dir / f".{STATE_FILE}.tmp-{os.getpid()}"
        temp.write_text(json.dumps({"change_seq": watermark}) + "\n")
        os.replace(temp, self.index_dir / STATE_FILE)

    def maintain(self) -> None:
        # Merging small segments is cheap and usually enough. Many segments of equal size (a
        # rebuild commits one per batch) are not "small", and searching 20 segments takes
        # about twice as long as one (bench_publishers), so then the whole index is merged:
        # minutes for 200,000 messages, which is why this runs only when the loop is idle.
        if len(self.ix._segments()) > MAX_SEGMENTS:
            self.ix.writer().commit(mergetype=writing.MERGE_SMALL)
        if len(self.ix._segments()) > MAX_SEGMENTS:
            self.ix.optimize()

    def close(self) -> None:
        self._searcher.close()
        self.ix.close()

    # Translating the query tree.
    def _tokens(self, field: str, text: str) -> list[str]:
        return [t.text for t in self.ix.schema[field].analyzer(text)]

    def _terms(self, field: str, text: str) -> wq.Query | None:
        tokens = self._tokens(field, text)
        if not tokens:
            return None
        return (
            wq.And([wq.Term(field, t) for t in tokens])
            if len(tokens) > 1
            else wq.Term(field, tokens[0])
        )

    def _translate(self, clause: Clause, known_months: list[str]) -> wq.Query:
        if isinstance(clause, Words):
            if clause.phrase:
                exact = self._tokens("body_exact", clause.text)
                if len(exact) > 1:
                    return wq.Phrase("body_exact", exact)
                return wq.Term("body_exact", exact[0]) if exact else wq.Every()
            # Stop words are not in `body`; a query of only stop words looks them up exactly.
            found = self._terms("body", clause.text) or self._terms("body_exact", clause.text)
            return found or wq.Every()
        if isinstance(clause, Field):
            field = "who" if clause.name == "author" else "chat_words"
            return self._terms(field, clause.value) or wq.NullQuery
        if isinstance(clause, TimeRange):
            cover = cover_range(clause.start, clause.end, known_months)
            if cover is not None:
                months, days = cover
                terms = [wq.Term("month", m) for m in months] + [wq.Term("day", d) for d in days]
                return wq.Or(terms) if terms else wq.NullQuery
            start = _naive_utc(clause.start) if clause.start else None
            end = _naive_utc(clause.end) if clause.end else None
            return wq.DateRange("posted", start, end, endexcl=True)
        if isinstance(clause, Not):
            return wq.Not(self._translate(clause.clause, known_months))
        if isinstance(clause, AnyOf):
            return wq.Or([self._translate(c, known_months) for c in clause.clauses])
        parts = [self._translate(c, known_months) for c in clause.clauses]
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
        stemmed = RegexTokenizer() | LowercaseFilter() | StemFilter()
        lowered = RegexTokenizer() | LowercaseFilter()

        def spans(body: str) -> list[tuple[int, int]]:
            found = {(t.startchar, t.endchar) for t in stemmed(body, chars=True) if t.text in stems}
            found |= {
                (t.startchar, t.endchar) for t in lowered(body, chars=True) if t.text in exact
            }
            return sorted(found)

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
            known_months = [m.decode() for m in self._searcher.lexicon("month")]
            whoosh_query = self._translate(tree, known_months)
            if sort == "time":
                results = self._searcher.search(
                    whoosh_query, limit=limit, sortedby="posted", reverse=True
                )
            else:
                results = self._searcher.search(whoosh_query, limit=limit)
            hits = tuple(
                SearchHit(
                    id=hit["id"],
                    chat=hit["chat"],
                    author=hit["author"],
                    author_name=hit.get("author_name", ""),
                    posted_utc=hit["posted"].replace(tzinfo=UTC),
                    url=hit["url"],
                    score=float(hit.score or 0.0),
                    snippet=make_snippet(hit["body"], spans(hit["body"])),
                )
                for hit in results
            )
            # Counting every match costs as much as the search; when Whoosh cannot know the
            # count cheaply it gives an estimate, and says so.
            exact_total = results.has_exact_length()
            total = len(results) if exact_total else results.estimated_length()
        return SearchResults(query, sort, total, hits, exact_total)


class SearchPublisher:
    """Keeps a search backend current from the change stream (publishers/changes.py)."""

    name = "search"

    def __init__(self, backend: SearchBackend) -> None:
        self.backend = backend

    def watermark(self) -> int:
        return self.backend.watermark()

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
