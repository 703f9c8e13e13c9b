"""Chat names as file names: safe, injective, reversible (design.md invariant 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers import paths
from chatchannels.publishers.paths import ChatNameError, decode_chat_name, encode_chat_name

# Characters Windows or a web server treat specially, besides the obvious.
UNSAFE_ON_SOME_FS = set('<>:"/\\|?*%#&;$ \t\n\x00')


def assert_safe_component(component: str) -> None:
    assert component and component not in (".", "..")
    assert not component.startswith(".") and not component.endswith(".")
    assert not (set(component) & UNSAFE_ON_SOME_FS)
    assert component.isascii() and component == component.strip()
    assert len(component.encode()) <= paths.MAX_COMPONENT
    assert component.split(".")[0].lower() not in paths.RESERVED


@given(st.text())
def test_encode_is_reversible_and_safe(name):
    component = encode_chat_name(name)
    assert_safe_component(component)
    if paths.DIGEST_MARK not in component:
        assert decode_chat_name(component) == name


@given(st.text(), st.text())
def test_encode_is_injective(a, b):
    if a != b:
        assert encode_chat_name(a) != encode_chat_name(b)


@given(st.text(), st.text())
def test_case_differences_survive_a_case_insensitive_file_share(a, b):
    if a != b:
        assert encode_chat_name(a).lower() != encode_chat_name(b).lower()


@pytest.mark.parametrize(
    ("name", "component"),
    [
        ("#alice/$bob;a7ab1234", "(alice)~24bob~3Ba7ab1234"),
        ("", "~"),
        ("..", "~2E~2E"),
        ("../../etc/passwd", "~2E.)..)etc)passwd"),
        ("all", "~61ll"),
        ("CON", "~43~4F~4E"),
        ("con.txt", "~63on.txt"),
        ("Ünï", "~C3~9Cn~C3~AF"),
        ("a~b(c)", "a~7Eb~28c~29"),
    ],
)
def test_known_encodings(name, component):
    assert encode_chat_name(name) == component
    assert decode_chat_name(component) == name


def test_overlong_names_are_shortened_with_a_digest():
    a, b = "#" + "x" * 300, "#" + "x" * 299 + "y"
    assert encode_chat_name(a) != encode_chat_name(b)
    for name in (a, b, "€" * 200):
        assert_safe_component(encode_chat_name(name))
    with pytest.raises(ChatNameError, match="shortened"):
        decode_chat_name(encode_chat_name(a))


@pytest.mark.parametrize("bad", ["~", "~4", "~zz", "a/b", "A", "~61", "x~FF", ".x", "~61ll~"])
def test_decode_rejects_what_encode_never_produces(bad):
    if bad == "~":
        assert decode_chat_name(bad) == ""
        return
    with pytest.raises(ChatNameError):
        decode_chat_name(bad)


def test_months_are_utc():
    eastern = timezone(timedelta(hours=-5))
    assert paths.month_of(datetime(2006, 5, 31, 22, 0, tzinfo=eastern)) == "2006-06"
    assert paths.month_bounds("2006-12") == (
        datetime(2006, 12, 1, tzinfo=UTC),
        datetime(2007, 1, 1, tzinfo=UTC),
    )


def test_links_are_relative():
    page = paths.month_page_path("#a/$b;1", "2006-05")
    assert page == "chats/(a)~24b~3B1/2006-05.html"
    assert paths.relative_link(page, "index.html") == "../../index.html"
    assert paths.relative_link(page, "") == "../../"
    assert paths.relative_link("feeds/x.atom", paths.message_link("#a/$b;1", "2006-05", "m1")) == (
        "../chats/(a)~24b~3B1/2006-05.html#m-m1"
    )
    assert paths.relative_link("index.html", "") == ""


@given(st.one_of(st.text(), st.from_regex(r"m[0-9a-z_.-]{0,210}", fullmatch=True)))
def test_a_message_anchor_is_its_id_encoded(message_id):
    assert paths.message_anchor(message_id) == "m-" + encode_chat_name(message_id)
