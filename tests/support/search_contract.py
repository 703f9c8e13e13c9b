"""The search backend contract: every backend (Whoosh today, a cluster tomorrow) passes it.

`SearchBackendContract` holds the tests; a backend's test class (Test*, in a test module)
fills in `create_backend`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatchannels.publishers.search_index import SearchDocument
from chatchannels.publishers.search_query import QueryError

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


class SearchBackendContract:
    def create_backend(self, path):
        raise NotImplementedError

    @pytest.fixture
    def backend(self, tmp_path):
        backend = self.create_backend(tmp_path / "index")
        backend.write_batch(CORPUS, [], watermark=5)
        yield backend
        backend.close()

    def ids(self, backend, query, sort="relevance"):
        return [hit.id for hit in backend.search(query, sort=sort, limit=50).hits]

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
