"""The demo's verdict must be able to fail: each way an archive can be wrong is caught."""

from dataclasses import replace

from chatchannels.emulator.scoring import score_archive
from chatchannels.emulator.truth import Revision, TruthMessage
from chatchannels.processors.replay.archive import ArchivedCopy, ArchivedMessage, ArchivedRevision

T0 = 1_700_000_000.0
HOSTS = ("a-pc", "b-pc")


def truth(msg, body, at, revisions=()):
    return TruthMessage(msg, "#a/$b;1", "bob", "", body, T0 + at, HOSTS, tuple(revisions))


def archived(mid, body, at, *, hosts=HOSTS, edits=(), deleted=False):
    revisions = [ArchivedRevision(0, body, None, None, False)]
    for n, (text, when) in enumerate(edits, 1):
        revisions.append(ArchivedRevision(n, text, "bob", T0 + when, text == ""))
    current = revisions[-1].body_markup
    return ArchivedMessage(
        id=mid,
        chat="#a/$b;1",
        author="bob",
        author_name="Bob",
        posted_utc=T0 + at,
        type="SAID",
        body_markup=current,
        edited_utc=None,
        edited_by=None,
        deleted=deleted,
        revisions=tuple(revisions),
        copies=tuple(
            ArchivedCopy(h, str(i), int(T0 + at), T0 + at, 0) for i, h in enumerate(hosts)
        ),
    )


TRUTH = [
    truth("t1", "hi", 0),
    truth("t2", "hi", 4),
    truth("t3", "typo", 10, [Revision("fixed", "bob", T0 + 20)]),
    truth("t4", "oops", 30, [Revision("", "bob", T0 + 40)]),
]
GOOD = [
    archived("m1", "hi", 0.4),
    archived("m2", "hi", 4.2),
    archived("m3", "typo", 10, edits=[("fixed", 20)]),
    archived("m4", "oops", 30, edits=[("", 40)], deleted=True),
]


def test_a_faithful_archive_is_perfect():
    score = score_archive(TRUTH, GOOD, HOSTS)
    assert score.perfect, score.problems
    assert (score.expected, score.archived, score.merged_across_hosts) == (4, 4, 4)


def test_two_identical_posts_merged_into_one_is_caught():
    score = score_archive(TRUTH, [GOOD[0], *GOOD[2:]], HOSTS)
    assert not score.perfect
    assert any("2 expected, 1 archived" in p for p in score.problems)


def test_one_message_split_per_host_is_caught():
    split = [
        archived("m3a", "typo", 10, hosts=("a-pc",), edits=[("fixed", 20)]),
        archived("m3b", "typo", 10, hosts=("b-pc",), edits=[("fixed", 20)]),
    ]
    score = score_archive(TRUTH, [*GOOD[:2], *split, GOOD[3]], HOSTS)
    assert not score.perfect


def test_lost_deletion_and_wrong_time_are_caught():
    wrong = [GOOD[0], GOOD[1], replace(GOOD[2], posted_utc=T0 + 57), archived("m4", "oops", 30)]
    problems = " | ".join(score_archive(TRUTH, wrong, HOSTS).problems)
    assert "off by +47.0 s" in problems
    assert "revisions" in problems
    assert "deleted=False, truth True" in problems


def test_messages_no_capturing_host_held_are_not_expected():
    score = score_archive(TRUTH, [], ["c-pc"])
    assert score.expected == 0 and score.perfect
