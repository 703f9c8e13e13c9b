"""The Whoosh backend's shortcuts answer exactly what plain Whoosh answers.

Phrases look up pairs of adjacent words and check the stored text instead of walking
positions, queries are scored over whole posting lists with numpy (search_scoring.py), and big
batches are written by several processes; each is checked here against the slow way on random
messages.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from whoosh import index
from whoosh import query as wq
from whoosh.fields import ID, TEXT, Schema

from chatchannels.publishers import search_index, search_scoring
from chatchannels.publishers.search_index import WhooshBackend
from chatchannels.publishers.search_query import parse_query
from tests.support import search_contract as contract

# "x" is too short for the stemmed field: a phrase of such words is found by its exact words.
WORDS = ["the", "build", "broke", "again", "please", "review", "it", "x"]
texts = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
corpora = st.lists(st.tuples(texts, st.sampled_from(["alice", "bob"])), max_size=40)


def write(backend, bodies):
    docs = [
        contract.doc(f"m{i:04d}", body, author, author.title(), when=(2006, 1 + i % 12, 1))
        for i, (body, author) in enumerate(bodies)
    ]
    # Three batches, three segments: the top N carries over from one segment to the next.
    for part in range(3):
        backend.write_batch(docs[part::3], [], watermark=part + 1)


@pytest.fixture
def make_backend(tmp_path_factory):
    made = []

    def make():
        made.append(WhooshBackend(tmp_path_factory.mktemp("index")))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(corpora, st.lists(st.sampled_from(WORDS), min_size=2, max_size=4))
def test_phrases_match_exactly_the_messages_with_the_words_adjacent(make_backend, bodies, words):
    backend = make_backend()
    write(backend, bodies)
    found = {hit.id for hit in backend.search(f'"{" ".join(words)}"', limit=100).hits}
    with backend.ix.searcher() as searcher:
        positional = searcher.search(wq.Phrase("body_exact", words), limit=None)
        assert found == {hit["id"] for hit in positional}


def test_a_phrase_ranks_by_how_often_the_phrase_occurs(make_backend):
    # Positions ranked by the phrase's words wherever they stood: "the" elsewhere put alice's
    # message first. Now it is the phrase that counts, then the length, as for a word.
    backend = make_backend()
    write(backend, [("the build the the the", "alice"), ("the build broke", "bob")])
    assert [hit.author for hit in backend.search('"the build"').hits] == ["bob", "alice"]
    twice = make_backend()
    write(twice, [("the build the build", "alice"), ("the build broke it", "bob")])
    assert [hit.author for hit in twice.search('"the build"').hits] == ["alice", "bob"]


def random_bodies(rng: random.Random, n: int) -> list[tuple[str, str]]:
    return [
        (" ".join(rng.choices(WORDS, k=rng.randint(0, 12))), rng.choice(["alice", "bob"]))
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(3))
def test_the_top_hits_are_whooshs_top_hits(make_backend, seed):
    # Enough messages for many blocks of postings, and edits and removals, so that segments
    # have deleted documents.
    rng = random.Random(seed)
    backend = make_backend()
    write(backend, random_bodies(rng, 1500))
    edits = [
        contract.doc(f"m{i:04d}", "please review the build again", "bob", "Bob", when=(2007, 1, 1))
        for i in range(0, 1500, 7)
    ]
    backend.write_batch(edits, [f"m{i:04d}" for i in range(3, 1500, 11)], watermark=4)
    for query in [
        "author:alice",
        "date:2006-03",
        "build",
        "please -it",
        '"the build"',
        "build OR review -again",
        "-broke",
        "review author:bob before:2006-06-01",
        "again again broke",
    ]:
        top, newest, total = whoosh_answers(backend, query)
        assert top_hits(backend, query) == top, query
        assert backend.search(query).total == total, query
        assert time_hits(backend, query) == newest, query


def top_hits(backend, query):
    return [(hit.id, round(hit.score, 9)) for hit in backend.search(query, limit=20).hits]


def time_hits(backend, query):
    return [hit.id for hit in backend.search(query, sort="time", limit=20).hits]


def whoosh_answers(backend, query):
    """Plain Whoosh's top 20 (id, score), its 20 newest and its count. Newest first, messages
    of one time in index order, as search_scoring breaks ties."""
    backend.search(query)  # the translation looks exact names up in the current index
    whoosh_query = backend._translate(parse_query(query))
    with backend.ix.searcher() as searcher:
        top = [(hit["id"], round(hit.score, 9)) for hit in searcher.search(whoosh_query, limit=20)]
        every = searcher.search(whoosh_query, limit=None)
        newest = sorted(every, key=lambda hit: (-hit["posted_utc"].timestamp(), hit.docnum))
        return top, [hit["id"] for hit in newest[:20]], len(every)


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """1,500 random messages in three segments, some of them deleted."""
    backend = WhooshBackend(tmp_path_factory.mktemp("segmented"))
    write(backend, random_bodies(random.Random(7), 1500))
    backend.write_batch([], [f"m{i:04d}" for i in range(0, 1500, 9)], watermark=4)
    yield backend
    backend.close()


terms = st.builds(
    wq.Term,
    st.sampled_from(["body_exact", "body_pairs", "who"]),
    st.sampled_from([*WORDS, "alice", "bob", "the build", "nowhere"]),
)
queries = st.recursive(
    terms | st.just(wq.Every()),
    lambda inner: (
        st.builds(wq.And, st.lists(inner, min_size=1, max_size=3))
        | st.builds(wq.Or, st.lists(inner, min_size=1, max_size=3))
        | st.builds(wq.Not, inner)
    ),
    max_leaves=6,
)


def _nested_not(query, inside_not: bool = False) -> bool:
    if isinstance(query, wq.Not):
        return inside_not or _nested_not(query.query, True)
    return any(_nested_not(q, inside_not) for q in getattr(query, "subqueries", ()))


@settings(max_examples=150, deadline=None)
@given(query=queries)
def test_scoring_whole_posting_lists_gives_whooshs_scores_and_order(segmented, query):
    # Whoosh answers a Not inside a Not wrongly: Not(Or([a, Not(a)])) matches a document
    # without `a` (its inverse matcher, whoosh/matching/combo.py), where we match none.
    assume(not _nested_not(query))
    columns = {}
    with segmented.ix.searcher() as searcher:
        total, best, facets = search_scoring.top(
            query,
            searcher,
            lambda reader: search_scoring.SegmentArrays(reader, columns),
            2000,
            facets=["author_key"],
        )
        # Whoosh's Not can match a deleted first document of a segment; we never do.
        expected = [
            hit
            for hit in searcher.search(query, limit=None)
            if not searcher.reader().is_deleted(hit.docnum)
        ]
        assert total == len(expected)
        # The facet counts are exact, and each names one of its matches.
        assert {a: n for a, (n, _) in facets["author_key"].items()} == Counter(
            hit["author"] for hit in expected
        )
        for author, (_, holder) in facets["author_key"].items():
            assert searcher.stored_fields(holder)["author"] == author
        # Sums taken in another order may differ in the last bit, which can swap equal hits.
        assert sorted((round(score, 9), doc) for doc, score in best) == sorted(
            (round(hit.score, 9), hit.docnum) for hit in expected
        )
        assert [round(score, 9) for _, score in best] == [round(h.score, 9) for h in expected]


def test_an_index_of_other_fields_asks_for_a_rebuild(tmp_path):
    index.create_in(str(tmp_path), Schema(id=ID(stored=True, unique=True))).close()
    with pytest.raises(search_index.IndexMissingError, match="publish --rebuild"):
        WhooshBackend(tmp_path)


def test_an_index_of_plain_text_fields_takes_the_term_lists(tmp_path):
    # An index written before TermsText holds plain TEXT fields, which index whoosh_fields'
    # term lists through their token objects: the same postings, so the same answers.
    schema = search_index.whoosh_schema()
    for _, field in schema.items():
        if isinstance(field, search_index.TermsText):
            field.__class__ = TEXT
    (tmp_path / "plain").mkdir()
    index.create_in(str(tmp_path / "plain"), schema).close()
    plain, fresh = WhooshBackend(tmp_path / "plain"), WhooshBackend(tmp_path / "fresh")
    assert type(plain.schema["body"]) is TEXT
    for backend in (plain, fresh):
        backend.write_batch(contract.CORPUS + contract.PASTED, [], watermark=1)
    for query in ["meeting", '"the meeting"', "author:bob", "example", "chat:carol lunch"]:
        assert plain.search(query).as_json() == fresh.search(query).as_json()
        assert plain.search(query).total
    plain.close()
    fresh.close()


class TestWhooshBackend(contract.SearchBackendContract):
    def create_backend(self, path):
        return WhooshBackend(path)


class TestWhooshBackendInProcesses(TestWhooshBackend):
    """The whole contract again, with every batch written by worker processes."""

    @pytest.fixture(autouse=True)
    def every_batch_in_parallel(self, monkeypatch):
        monkeypatch.setattr(search_index, "PARALLEL_BATCH", 1)
        monkeypatch.setattr(search_index, "PROCS", 2)


@settings(max_examples=200, deadline=None)
@given(
    body=st.lists(
        st.sampled_from(
            ["Build", "builds", "BUILT", "review", "reviewing", "x", "É", " ", ".", "*", "org"]
        ),
        max_size=12,
    ).map("".join)
    | st.text(max_size=40),
    query=st.sampled_from(
        ["build", "reviews", '"the build"', "builds -x", "É", "x.y", "build.org", "reviewBuild"]
    ),
)
def test_snippet_marks_are_the_analyzers_tokens(body, query):
    # The marker's single regex pass finds exactly the tokens the body fields' analyzers make
    # whose stem or lowercase form the query asked for, and the parts of compounds the query
    # named; a token marked whole covers the parts inside it.
    from whoosh.analysis import LowercaseFilter, RegexTokenizer, StemFilter

    from chatchannels.publishers.search_query import highlight_words
    from chatchannels.publishers.search_words import PartsTokenizer, compound_parts

    backend = WhooshBackend.__new__(WhooshBackend)
    backend.schema = search_index.whoosh_schema()
    tree = parse_query(query)
    stems, exact = set(), set()
    for text in highlight_words(tree):
        stems.update(backend._tokens("body", text))
        exact.update(backend._tokens("body_exact", text))
    stemmed = RegexTokenizer() | LowercaseFilter() | StemFilter()
    lowered = RegexTokenizer() | LowercaseFilter()
    expected = {(t.startchar, t.endchar) for t in stemmed(body, chars=True) if t.text in stems}
    expected |= {(t.startchar, t.endchar) for t in lowered(body, chars=True) if t.text in exact}
    parts = exact | {p for text in highlight_words(tree) for c in compound_parts(text) for p in c}
    inside = {(t.startchar, t.endchar) for t in PartsTokenizer()(body, chars=True)}
    expected |= {
        (a, b)
        for a, b in inside
        if body[a:b].lower() in parts and not any(x <= a and b <= y for x, y in expected)
    }
    assert backend._marker(tree)(body) == sorted(expected)


def test_a_block_of_postings_is_read_when_its_last_document_is_wanted(make_backend):
    # Whoosh writes postings in blocks of 128: "build" is in every message, so its blocks end
    # at documents 127 and 255, the only two that also hold "zebra".
    backend = make_backend()
    docs = [
        contract.doc(f"m{i:04d}", "build zebra" if i in (127, 255) else "build", "bob", "Bob")
        for i in range(300)
    ]
    backend.write_batch(docs, [], watermark=1)
    assert {hit.id for hit in backend.search("zebra build").hits} == {"m0127", "m0255"}


def test_a_hits_neighbours_are_the_messages_next_to_it_in_its_chat(segmented):
    # Three segments with deletions, and a month's messages all at one time: neighbours go by
    # (time, document number) across segments, as a brute-force sort of the chat finds them.
    hits = segmented.search("-nowhere", sort="time", limit=2000).hits
    with segmented.ix.searcher() as searcher:
        reader = searcher.reader()
        ordered = sorted(
            (fields["posted_utc"], docnum, fields["id"])
            for docnum in reader.all_doc_ids()
            for fields in [searcher.stored_fields(docnum)]
        )
    ids = [id for _, _, id in ordered]
    assert sorted(hit.id for hit in hits) == sorted(ids)
    at = {id: n for n, id in enumerate(ids)}
    for hit in hits:
        n = at[hit.id]
        assert (hit.before.id if hit.before else None) == (ids[n - 1] if n else None)
        assert (hit.after.id if hit.after else None) == (ids[n + 1] if n + 1 < len(ids) else None)


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(
        st.sampled_from(
            ["The", "build", "Builds", "a", "x", "İ", "É", "ß", " ", ".", "-", "/", "_", "org", "1"]
        ),
        max_size=16,
    ).map("".join)
    | st.text(max_size=40),
    name=st.text(max_size=12),
)
def test_the_documents_terms_are_the_analyzers_terms(body, name):
    # whoosh_fields hands Whoosh the terms of the analysed fields, made in one pass over the
    # body: they are what each field's analyzer makes of the text (the postings, with their
    # frequencies, weights and positions, and the field lengths are those of the text).
    schema = search_index.whoosh_schema()
    doc = contract.doc("m1", body, author=name, name=name, chat=f"#{name}/$x;1")
    fields = search_index.whoosh_fields(doc)
    texts = {
        "body": body,
        "body_exact": body,
        "body_pairs": body,
        "parts": body,
        "who": f"{name} {name}",
        "chat_words": doc.chat,
    }
    assert {name for name, field in schema.items() if isinstance(field, TEXT)} == set(texts)
    for field, text in texts.items():
        assert sorted(schema[field].index(fields[field])) == sorted(schema[field].index(text))
    assert fields["_stored_body"] == body


@pytest.mark.parametrize("procs", [1, 2])
def test_a_big_batch_is_split_between_writer_processes_only_when_asked(
    tmp_path, monkeypatch, procs
):
    # Whoosh hands its writer processes 100 documents at a time.
    monkeypatch.setattr(search_index, "PARALLEL_BATCH", 100)
    backend = WhooshBackend(tmp_path, procs=procs)
    try:
        docs = [
            contract.doc(f"m{i:04d}", body, author, author.title(), when=(2006, 1, 1))
            for i, (body, author) in enumerate(random_bodies(random.Random(3), 400))
        ]
        backend.write_batch(docs, [], watermark=1)
        assert len(backend.ix._segments()) == procs
        assert backend.ix.doc_count() == 400
    finally:
        backend.close()
