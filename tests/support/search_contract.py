"""The search backend contract: every backend (Whoosh today, a cluster tomorrow) passes it.

`SearchBackendContract` holds the tests; a backend's test class (Test*, in a test module)
fills in `create_backend`.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatchannels.publishers.search_index import SearchDocument
from chatchannels.publishers.search_query import QueryError
from chatchannels.publishers.search_words import compound_parts

CHAT = "#alice/$bob;a7ab"


def doc(id, body, author="alice", name="Alice Liddell", chat=CHAT, when=(2006, 5, 1)):
    posted = datetime(*when, 12, 0, tzinfo=UTC)
    return SearchDocument(id, chat, author, name, posted, body, f"chats/x/{id}.html#m-{id}")


CORPUS = [
    doc("m1", "The meeting moved to Tuesday", when=(2006, 5, 1)),
    doc(
        "m2",
        "Meetings are boring, said nobody",
        author="bob",
        name="Bob Builder",
        when=(2006, 5, 20),
    ),
    doc("m3", "tuesday the meeting", author="bob", name="Bob Builder", when=(2006, 6, 2)),
    doc(
        "m4",
        "lunch at noon?",
        chat="#carol/$dave;ff",
        author="carol",
        name="Carol",
        when=(2006, 7, 4),
    ),
    doc(
        "m5",
        "spam spam lunch",
        chat="#carol/$dave;ff",
        author="dave",
        name="Dave",
        when=(2006, 7, 5),
    ),
]


# Words inside what people paste (publishers/search_words.py).
PASTED = [
    doc("p1", "see https://example.com/a?b=1 for details", when=(2007, 1, 1)),
    doc("p2", "mirror at www.example.org/x", when=(2007, 1, 2)),
    doc("p3", "call fooBar_baz then HTTPServer.start()", when=(2007, 1, 3)),
    doc("p4", "ticket ABC-123 is fixed", when=(2007, 1, 4)),
    doc("p5", "an example of org charts, abc and 123", when=(2007, 1, 5)),
    doc("p6", "from alpha.beta gamma.x and beta.gamma", when=(2007, 1, 6)),
]


# Three chats, and an author (carol.smith, "Carol Smith") whose words match another author's
# handle (carol, in a chat of her own).
SPLIT = [
    *CORPUS,
    doc(
        "s1",
        "meeting notes for the lunch",
        chat="19:ops@thread.skype",
        author="carol.smith",
        name="Carol Smith",
        when=(2006, 5, 3),
    ),
    doc("s2", "Tuesday noon then", chat="19:ops@thread.skype", author="erin", when=(2006, 7, 9)),
]
SPLIT_CHATS = sorted({d.chat for d in SPLIT})
SPLIT_WORDS = [
    "meeting",
    "tuesday",
    "lunch",
    "noon",
    "spam",
    "-meeting",
    "OR",
    '"the meeting"',
    "author:carol",
    "author:bob",
    "author:erin",
    "chat:carol",
    'chat:"#carol/$dave;ff"',
    "date:2006-07",
    "after:2006-05-02",
]


class SearchBackendContract:
    def create_backend(self, path):
        raise NotImplementedError

    @pytest.fixture
    def backend(self, tmp_path):
        backend = self.create_backend(tmp_path / "index")
        backend.write_batch(CORPUS, [], watermark=5)
        yield backend
        backend.close()

    def ids(self, backend, query, sort="relevance", limit=50):
        return [hit.id for hit in backend.search(query, sort=sort, limit=limit).hits]

    def test_words_are_stemmed_and_all_required(self, backend):
        assert sorted(self.ids(backend, "meeting")) == ["m1", "m2", "m3"]
        assert sorted(self.ids(backend, "meeting tuesday")) == ["m1", "m3"]

    def test_phrases_keep_order_and_exact_words(self, backend):
        assert self.ids(backend, '"meeting moved"') == ["m1"]
        assert self.ids(backend, '"moved meeting"') == []
        assert sorted(self.ids(backend, '"the meeting"')) == ["m1", "m3"]

    def test_or_and_not(self, backend):
        assert sorted(self.ids(backend, "boring OR noon")) == ["m2", "m4"]
        assert sorted(self.ids(backend, "meeting -tuesday")) == ["m2"]
        assert sorted(self.ids(backend, "meeting NOT tuesday")) == ["m2"]
        assert sorted(self.ids(backend, "-meeting")) == ["m4", "m5"]

    def test_author_by_handle_or_name(self, backend):
        assert sorted(self.ids(backend, "author:bob")) == ["m2", "m3"]
        assert sorted(self.ids(backend, "author:BOB meeting")) == ["m2", "m3"]
        assert sorted(self.ids(backend, "author:builder")) == ["m2", "m3"]

    def test_chat_by_exact_name_or_word(self, backend):
        assert sorted(self.ids(backend, 'chat:"#carol/$dave;ff"')) == ["m4", "m5"]
        assert sorted(self.ids(backend, "chat:carol")) == ["m4", "m5"]

    def test_date_ranges(self, backend):
        assert sorted(self.ids(backend, "date:2006-05")) == ["m1", "m2"]
        assert sorted(self.ids(backend, "date:2006-07-04")) == ["m4"]
        assert sorted(self.ids(backend, "after:2006-06-02")) == ["m3", "m4", "m5"]
        assert sorted(self.ids(backend, "before:2006-06-02")) == ["m1", "m2"]
        assert sorted(self.ids(backend, "meeting after:2006-05-02 before:2006-07")) == ["m2", "m3"]
        with pytest.raises(QueryError, match="date:2006-13"):
            backend.search("date:2006-13")

    def test_time_order_is_newest_first(self, backend):
        assert self.ids(backend, "meeting OR lunch", sort="time") == ["m5", "m4", "m3", "m2", "m1"]

    def test_hits_carry_link_time_and_highlighted_snippet(self, backend):
        [hit] = backend.search('"meeting moved"').hits
        assert hit.url == "chats/x/m1.html#m-m1"
        assert hit.posted_utc == datetime(2006, 5, 1, 12, tzinfo=UTC)
        assert hit.author == "alice" and hit.author_name == "Alice Liddell" and hit.chat == CHAT
        assert ("meeting", True) in hit.snippet and ("moved", True) in hit.snippet
        assert "".join(text for text, _ in hit.snippet) == "The meeting moved to Tuesday"

    def test_an_edit_replaces_and_a_removal_removes(self, backend):
        backend.write_batch([doc("m1", "The gathering moved")], ["m4"], watermark=7)
        assert "m1" not in self.ids(backend, "meeting")
        assert self.ids(backend, "gathering") == ["m1"]
        assert self.ids(backend, "noon") == []
        assert backend.watermark() == 7

    def test_writing_a_batch_twice_changes_nothing(self, backend):
        backend.write_batch(CORPUS, [], watermark=5)
        assert sorted(self.ids(backend, "meeting")) == ["m1", "m2", "m3"]
        answer = backend.search("meeting")
        assert answer.total == 3

    def test_empty_and_useless_queries(self, backend):
        assert backend.search("").total == 0
        assert backend.search('"" - OR NOT').total == 0
        assert backend.watermark() == 5

    def test_state_survives_reopening(self, backend, tmp_path):
        backend.maintain()
        reopened = self.create_backend(tmp_path / "index")
        try:
            assert reopened.watermark() == 5
            assert sorted(self.ids(reopened, "lunch")) == ["m4", "m5"]
        finally:
            reopened.close()

    # Every backend's class runs this same test: the executors differ by design.
    @settings(
        max_examples=60,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(st.text(max_size=40))
    def test_any_query_gives_results_or_a_query_error(self, backend, text):
        try:
            results = backend.search(text)
        except QueryError:
            return
        assert results.total >= 0

    @pytest.fixture
    def pasted(self, backend):
        backend.write_batch(PASTED, [], watermark=6)
        return backend

    def test_words_inside_urls_hosts_and_identifiers_are_found(self, pasted):
        assert sorted(self.ids(pasted, "example")) == ["p1", "p2", "p5"]
        assert self.ids(pasted, "example.org") == ["p2"]
        assert self.ids(pasted, "https://example.com/a?b=1") == ["p1"]
        assert sorted(self.ids(pasted, "com")) == ["p1"]
        assert self.ids(pasted, "bar") == ["p3"]
        # An identifier in another style has the same parts; order counts.
        assert self.ids(pasted, "foo_bar") == ["p3"]
        assert self.ids(pasted, "bar_foo") == []
        assert self.ids(pasted, "fooBar") == ["p3"]
        assert self.ids(pasted, "baz server") == ["p3"]
        assert sorted(self.ids(pasted, "http")) == ["p1", "p3"]  # "https" stems to "http"
        assert self.ids(pasted, "ABC-123") == ["p4"]
        assert self.ids(pasted, "abc-123") == ["p4"]
        assert sorted(self.ids(pasted, "abc 123")) == ["p4", "p5"]
        # Adjacent parts within one compound, not across two.
        assert self.ids(pasted, "alpha.beta") == ["p6"]
        assert self.ids(pasted, "gamma.x") == ["p6"]
        assert self.ids(pasted, "beta.gamma") == ["p6"]
        assert self.ids(pasted, "x.beta") == []

    def test_a_quoted_phrase_still_matches_exactly(self, pasted):
        assert self.ids(pasted, '"example.org"') == []
        assert self.ids(pasted, '"www.example.org"') == ["p2"]
        assert self.ids(pasted, '"example of org"') == ["p5"]
        assert self.ids(pasted, '"abc 123"') == ["p4"]

    def test_the_parts_found_are_marked_in_the_snippet(self, pasted):
        [hit] = pasted.search("example.org").hits
        assert [text for text, marked in hit.snippet if marked] == ["example", "org"]
        [hit] = pasted.search("bar").hits
        assert [text for text, marked in hit.snippet if marked] == ["Bar"]

    def test_every_part_of_an_identifier_finds_it(self, backend):
        # Random identifiers, one message each. An empty join glues two words: a case change
        # ("deployQueue") or not ("apiapi"). (Not Hypothesis: it seeds `random`, so Whoosh
        # would name every example's segment alike.)
        rng = random.Random(19)
        words, joins = (
            ["deploy", "Queue", "v2", "HTTP", "api", "Node"],
            [*list("./_-?=#"), "://", ""],
        )
        idents = {}
        for n in range(60):
            picked = rng.choices(words, k=rng.randint(2, 4))
            glue = [*rng.choices(joins, k=len(picked) - 1), ""]
            idents[f"z{n}"] = "".join(w + j for w, j in zip(picked, glue, strict=True))
        backend.write_batch(
            [doc(i, f"look: {ident} ok", when=(2008, 1, 1)) for i, ident in idents.items()],
            [],
            watermark=9,
        )
        for i, ident in idents.items():
            assert i in self.ids(backend, ident), ident
            for parts in compound_parts(ident):
                for part in parts:
                    assert i in self.ids(backend, part, limit=100), (ident, part)

    # What each hit and the results carry.
    def test_hits_carry_the_chats_title(self, backend):
        backend.write_batch([], [], watermark=6, titles={"#carol/$dave;ff": "Lunch club"})
        [hit] = backend.search("noon").hits
        assert hit.chat_title == "Lunch club"
        # No title written: the people the chat's id names.
        [hit] = backend.search('"meeting moved"').hits
        assert hit.chat_title == "alice & bob"
        assert backend.titles() == {"#carol/$dave;ff": "Lunch club"}

    def test_hits_carry_the_messages_before_and_after_in_their_chat(self, backend):
        [hit] = backend.search("boring").hits
        assert (hit.before.id, hit.after.id) == ("m1", "m3")
        assert hit.before.text == "The meeting moved to Tuesday"
        assert (
            hit.before.url == "chats/x/m1.html#m-m1" and hit.before.author_name == "Alice Liddell"
        )
        [hit] = backend.search("noon").hits
        assert hit.before is None and hit.after.id == "m5"
        # Not across chats, and not to a removed message.
        backend.write_batch([], ["m2"], watermark=6)
        [hit] = backend.search('"tuesday the meeting"').hits
        assert hit.before.id == "m1" and hit.after is None

    def test_facets_count_every_match_by_chat_and_author(self, backend):
        backend.write_batch([], [], watermark=6, titles={"#carol/$dave;ff": "Lunch club"})
        results = backend.search("meeting OR lunch", limit=1)
        chats = {f.value: (f.label, f.count) for f in results.facets["chat"]}
        assert chats == {CHAT: ("alice & bob", 3), "#carol/$dave;ff": ("Lunch club", 2)}
        authors = [(f.value, f.label, f.count) for f in results.facets["author"]]
        assert authors[0] == ("bob", "Bob Builder", 2)
        assert sorted(authors[1:]) == [
            ("alice", "Alice Liddell", 1),
            ("carol", "Carol", 1),
            ("dave", "Dave", 1),
        ]
        # A facet's value narrows the query to exactly its count.
        for field in ("chat", "author"):
            for facet in results.facets[field]:
                narrowed = backend.search(f'meeting OR lunch {field}:"{facet.value}"')
                assert narrowed.total == facet.count, (field, facet.value)

    def test_results_are_paged(self, backend):
        every = self.ids(backend, "meeting OR lunch", sort="time")
        pages = [
            backend.search("meeting OR lunch", sort="time", limit=2, offset=o) for o in (0, 2, 4)
        ]
        assert [hit.id for page in pages for hit in page.hits] == every
        assert {(p.total, p.offset, p.limit) for p in pages} == {(5, 0, 2), (5, 2, 2), (5, 4, 2)}
        assert backend.search("meeting", offset=10).hits == ()
        answer = pages[1].as_json()
        assert (answer["offset"], answer["limit"], answer["total"]) == (2, 2, 5)
        assert {f["value"]: f["count"] for f in answer["facets"]["chat"]} == {
            CHAT: 3,
            "#carol/$dave;ff": 2,
        }
        assert answer["hits"][0]["before"]["id"] and "chat_title" in answer["hits"][0]

    # A reader's search (publishers/access/gate.py): only the chats they may read.
    def test_a_reader_finds_nothing_of_the_chats_they_cannot_read(self, backend):
        mine = frozenset({CHAT})
        results = backend.search("meeting OR lunch", chats=mine)
        assert sorted(hit.id for hit in results.hits) == ["m1", "m2", "m3"]
        assert results.total == 3
        assert [f.value for f in results.facets["chat"]] == [CHAT]
        assert {f.value for f in results.facets["author"]} == {"alice", "bob"}
        for query in ("lunch", "noon", 'chat:"#carol/$dave;ff"', "author:dave"):
            nothing = backend.search(query, chats=mine)
            assert (nothing.total, nothing.hits, nothing.facets) == (
                0,
                (),
                {"chat": (), "author": ()},
            ), query
        assert backend.search("meeting", chats=frozenset()).total == 0
        assert backend.search("meeting", chats=None).total == 3

    @pytest.fixture
    def split(self, tmp_path):
        """The whole SPLIT corpus in one index, and each set of its chats alone in another."""
        made = {}
        for size in range(len(SPLIT_CHATS) + 1):
            for chats in itertools.combinations(SPLIT_CHATS, size):
                backend = self.create_backend(tmp_path / f"only-{len(made)}")
                backend.write_batch([d for d in SPLIT if d.chat in chats], [], watermark=1)
                made[frozenset(chats)] = backend
        whole = self.create_backend(tmp_path / "whole")
        whole.write_batch(SPLIT, [], watermark=1)
        yield whole, made
        for backend in (whole, *made.values()):
            backend.close()

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        st.lists(st.sampled_from(SPLIT_WORDS), min_size=1, max_size=3).map(" ".join),
        st.sets(st.sampled_from(SPLIT_CHATS)),
        st.sampled_from(("time", "relevance")),
    )
    def test_a_readers_search_is_that_of_an_index_of_their_chats_alone(
        self, split, query, chats, sort
    ):
        """Totals, hits, their scores, snippets, neighbours, facets and errors: nothing tells
        of another chat. (Hits of equal score may be ordered otherwise in relevance order:
        ties go by document number, which differs between the two indexes.)"""
        whole, alone = split
        chats = frozenset(chats)
        try:
            expected = alone[chats].search(query, sort=sort, limit=50)
        except QueryError:
            with pytest.raises(QueryError):
                whole.search(query, sort=sort, limit=50, chats=chats)
            return
        found = whole.search(query, sort=sort, limit=50, chats=chats)
        assert _seen(found, sort) == _seen(expected, sort)


def _seen(results, sort):
    def neighbour(n):
        return n and (n.id, n.text)

    hits = [
        (
            h.id,
            round(h.score, 6),
            h.chat,
            h.chat_title,
            h.snippet,
            neighbour(h.before),
            neighbour(h.after),
        )
        for h in results.hits
    ]
    facets = {
        name: [(f.value, f.label, f.count) for f in values]
        for name, values in results.facets.items()
    }
    return results.total, hits if sort == "time" else sorted(hits), facets
