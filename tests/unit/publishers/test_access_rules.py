"""The permission rules (publishers/access/rules.py): what they promise, whatever the rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers.access.readers import ANONYMOUS, Reader
from chatchannels.publishers.access.rules import (
    Allow,
    ChatFacts,
    Permissions,
    Rule,
    RulesError,
    parse_permissions,
)

HANDLES = {"ann.skype": "ann", "bob.skype": "bob"}

readers = st.builds(
    Reader,
    st.sampled_from([None, "ann", "bob", "carol"]),
    st.frozensets(st.sampled_from(["staff", "ops"])),
    st.booleans(),
    st.just("session"),
).map(lambda r: r if r.name else ANONYMOUS)
chats = st.builds(
    ChatFacts,
    st.sampled_from(["dialog:ann.skype;bob.skype", "#ann.skype/$;11", "19:abc@thread.skype", ""]),
    st.sampled_from(["Design review", "design REVIEW", "Lunch", ""]),
    st.frozensets(st.sampled_from(["ann.skype", "bob.skype", "carl.skype"])),
)
allows = st.one_of(
    st.builds(Allow, everyone=st.booleans()),
    st.builds(
        Allow,
        ids=st.frozensets(st.sampled_from(["ann", "bob", "*"])),
        groups=st.frozensets(st.sampled_from(["staff", "*"])),
        members=st.booleans(),
        unauthenticated=st.booleans(),
    ),
)
rules = st.builds(
    Rule,
    st.lists(st.sampled_from(["*", "dialog:*", "#ann*", "19:*", "[d]ialog:*"]), max_size=2).map(
        tuple
    ),
    st.lists(st.sampled_from(["*", "design*", "lunch", "?"]), max_size=2).map(tuple),
    allows,
)
permissions = st.lists(rules, max_size=4).map(lambda found: Permissions(tuple(found)))


def reads(perms: Permissions, reader: Reader, chat: ChatFacts) -> bool:
    return perms.may_read(reader, chat, HANDLES)


@given(permissions, readers, chats)
def test_administrators_read_every_chat(perms, reader, chat):
    assert reads(perms, Reader(reader.name or "root", reader.groups, admin=True), chat)


@given(readers, chats)
def test_private_by_default_no_rule_means_administrators_only(reader, chat):
    assert reads(Permissions(), reader, chat) == reader.admin


@given(permissions, rules, readers, chats)
def test_a_rule_only_ever_adds_readers_and_their_order_does_not_matter(perms, rule, reader, chat):
    before = reads(perms, reader, chat)
    more = Permissions((*perms.rules, rule))
    assert reads(more, reader, chat) >= before
    assert reads(Permissions(tuple(reversed(more.rules))), reader, chat) == reads(
        more, reader, chat
    )


@given(permissions, chats)
def test_anonymous_readers_need_a_public_rule(perms, chat):
    public = any(
        r.allow.everyone or r.allow.unauthenticated for r in perms.rules if r.selects(chat)
    )
    assert reads(perms, ANONYMOUS, chat) == public


@given(readers, chats)
def test_members_are_the_chats_handles_mapped_to_the_reader(reader, chat):
    perms = Permissions((Rule(allow=Allow(members=True)),))
    mapped = {HANDLES[h] for h in chat.handles if h in HANDLES}
    assert reads(perms, reader, chat) == (reader.admin or reader.name in mapped)


@given(readers, chats)
def test_false_covers_a_chat_for_nobody_but_administrators(reader, chat):
    assert reads(Permissions((Rule(allow=Allow()),)), reader, chat) == reader.admin


def test_selection_by_id_glob_and_title_glob_both_must_match():
    rule = Rule(chats=("dialog:*",), titles=("design*",), allow=Allow(everyone=True))
    assert rule.selects(ChatFacts("dialog:a;b", "Design review"))
    assert not rule.selects(ChatFacts("dialog:a;b", "Lunch"))
    assert not rule.selects(ChatFacts("#a/$b;1", "Design review"))
    # Glob metacharacters in a chat id are matched literally by `[...]`.
    assert Rule(chats=("#a/$b;[1]",)).selects(ChatFacts("#a/$b;1", ""))
    assert not Rule(chats=("#a/$b;1",)).selects(ChatFacts("#a/$b;12", ""))


def test_ids_groups_and_star():
    chat = ChatFacts("19:x@thread.skype", "Ops")
    perms = parse_permissions({"rules": [{"allow": {"id": "ann", "groups": ["ops"]}}]})
    assert reads(perms, Reader("ann"), chat)
    assert reads(perms, Reader("zed", frozenset({"ops"})), chat)
    assert not reads(perms, Reader("zed", frozenset({"staff"})), chat)
    anyone = parse_permissions({"rules": [{"allow": {"id": "*"}}]})
    assert reads(anyone, Reader("zed"), chat) and not reads(anyone, ANONYMOUS, chat)
    grouped = parse_permissions({"rules": [{"allow": {"groups": "*"}}]})
    assert reads(grouped, Reader("zed", frozenset({"x"})), chat)
    assert not reads(grouped, Reader("zed"), chat)


def test_a_json_text_reads_as_the_table():
    assert parse_permissions('{"rules": [{"allow": true}]}') == parse_permissions(
        {"rules": [{"allow": True}]}
    )
    assert parse_permissions("") == Permissions()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"rule": []}, "unknown key 'rule'"),
        ({"rules": {"allow": True}}, "`rules` must be a list"),
        ({"rules": [{"chats": "*"}]}, "permissions rule 1 from f.toml: has no `allow`"),
        ({"rules": [{"allow": True}, {"alow": True}]}, "rule 2 from f.toml: unknown key 'alow'"),
        ({"rules": [{"allow": {"member": True}}]}, "unknown key 'member' in `allow`"),
        ({"rules": [{"allow": {"members": "yes"}}]}, "`allow.members` must be true or false"),
        ({"rules": [{"allow": {"id": 3}}]}, "`allow.id` must be a string or a list"),
        ({"rules": [{"chats": [""], "allow": True}]}, "`chats` must be a string or a list"),
        ({"rules": [{"allow": "everyone"}]}, "`allow` must be true, false or a table"),
        ("{nope", "not a JSON object"),
    ],
)
def test_errors_name_the_rule_and_the_key(raw, message):
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace("`", "`")):
        parse_permissions(raw, "f.toml")
