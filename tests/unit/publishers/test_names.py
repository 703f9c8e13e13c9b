"""Chat titles people recognise: topic, else the people, else the id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers.names import chat_title, handles_in_name, is_one_to_one

LEGACY_DIALOG = "#alice/$bob;a7ab206ec78060f1"
LEGACY_GROUP = "#alice/$;9d5d2a1f00000000"
THREAD = "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.skype"


def test_the_id_names_the_people_of_a_one_to_one_chat_and_the_creator_of_a_group():
    assert handles_in_name(LEGACY_DIALOG) == ("alice", "bob")
    assert handles_in_name("dialog:alice;live:bob") == ("alice", "live:bob")
    assert handles_in_name(LEGACY_GROUP) == ("alice",)
    assert handles_in_name(THREAD) == ()
    assert is_one_to_one(LEGACY_DIALOG) and not is_one_to_one(LEGACY_GROUP)


def test_a_topic_is_the_title():
    assert chat_title(THREAD, " Planning ", [("alice", "Alice")]) == "Planning"


def test_a_one_to_one_chat_is_titled_by_its_two_people():
    names = {"alice": "Alice Liddell", "bob": "Bob Builder"}
    assert chat_title(LEGACY_DIALOG, "", display_names=names) == "Alice Liddell & Bob Builder"
    assert chat_title(LEGACY_DIALOG, "") == "alice & bob"
    members = [("alice", "Alice Liddell"), ("bob", "")]
    assert chat_title("dialog:alice;bob", "", members) == "Alice Liddell & bob"


def test_an_untitled_group_names_its_first_members_and_counts_the_rest():
    three = [("a", "Ann"), ("b", "Ben"), ("c", "Cy")]
    assert chat_title(THREAD, "", three) == "Ann, Ben and Cy"
    five = [*three, ("d", "Di"), ("e", "")]
    assert chat_title(THREAD, "", five) == "Ann, Ben, Cy and 2 more"
    assert chat_title(THREAD, "", [("a", "Ann")]) == "Ann"


def test_a_chat_nobody_is_known_in_keeps_its_id():
    assert chat_title(THREAD, "") == THREAD


@given(
    name=st.sampled_from([LEGACY_DIALOG, LEGACY_GROUP, THREAD, "dialog:x;y", "bob"]),
    topic=st.text(max_size=20),
    members=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=6),
)
def test_every_chat_gets_a_title_that_is_not_blank(name, topic, members):
    title = chat_title(name, topic, members)
    assert title.strip()
    if topic.strip():
        assert title == topic.strip()
