"""The replay's pure helpers: naming archive differences, interleaving hosts' records."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.replay.archive import ArchivedCopy, ArchivedMessage, ArchivedRevision
from chatchannels.processors.replay.diff import diff_archives
from chatchannels.processors.replay.topic_copy import CopiedRecord, interleave_hosts


def message(mid: str, posted: float, body: str = "hello") -> ArchivedMessage:
    return ArchivedMessage(
        id=mid,
        chat="#alice/$bob;1",
        author="bob",
        author_name="Bob",
        posted_utc=posted,
        type="SAID",
        body_markup=body,
        edited_utc=None,
        edited_by=None,
        deleted=False,
        revisions=(ArchivedRevision(0, body, None, None, False),),
        copies=(ArchivedCopy("alice-pc", "100", int(posted), posted, 3600),),
    )


def test_equal_archives_have_no_differences() -> None:
    archive = [message("a", 1.0), message("b", 2.0)]
    assert diff_archives(archive, list(archive)) == []


def test_differences_name_the_message_the_side_and_the_field() -> None:
    live = [
        message("a", 1.0),
        replace(message("b", 2.0), body_markup="tampered"),
        message("c", 3.0),
    ]
    rebuilt = [message("a", 1.0), message("b", 2.0), message("d", 4.0)]
    found = [str(d) for d in diff_archives(live, rebuilt)]
    assert found == [
        "message b (posted 2.0): body_markup differs: live 'tampered', replay 'hello'",
        "message c (posted 3.0): only in live",
        "message d (posted 4.0): only in replay",
    ]


def test_long_values_are_cut_and_the_count_is_limited() -> None:
    live = [message(str(i), float(i), "x" * 500) for i in range(20)]
    rebuilt = [replace(m, author_name="Robert") for m in live]
    found = diff_archives(live, rebuilt, limit=3)
    assert len(found) == 3
    assert all(len(str(d)) < 200 for d in found)


@given(
    st.dictionaries(st.sampled_from([b"alice", b"bob", b"carol"]), st.integers(0, 8)),
    st.integers(0, 1000),
)
def test_interleaving_keeps_every_hosts_own_order(sizes: dict[bytes, int], seed: int) -> None:
    records = [CopiedRecord(key, b"%d" % i, i) for key, n in sizes.items() for i in range(n)]
    mixed = interleave_hosts(records, seed)
    assert sorted(mixed, key=lambda r: (r.key, r.timestamp_ms)) == sorted(
        records, key=lambda r: (r.key, r.timestamp_ms)
    )
    for key in sizes:
        assert [r for r in mixed if r.key == key] == [r for r in records if r.key == key]
