"""The Gate's answer for every kind of site path, tried as an attacker would: another chat's
pages, feeds and archives, its media and thumbnails, spellings of the same path, and what
the site keeps beside its pages."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.publishers import paths
from chatchannels.publishers.access.catalog import Snapshot
from chatchannels.publishers.access.gate import Gate
from chatchannels.publishers.access.readers import ANONYMOUS, Reader
from chatchannels.publishers.access.rules import ChatFacts, parse_permissions
from chatchannels.publishers.markup import thumbnail_path

MINE = "dialog:ann.skype;bob.skype"
THEIRS = "#carol.skype/$dave.skype;ff01"
LONG = "19:" + "x" * 400 + "@thread.skype"  # its file name is shortened (paths.py)
PUBLIC = "19:news@thread.skype"
SHA_MINE = "ab" + "0" * 62
SHA_THEIRS = "cd" + "1" * 62
SHA_BOTH = "ef" + "2" * 62


class Catalog:
    """A fixed catalog (catalog.py reads the real one from PostgreSQL)."""

    def __init__(self) -> None:
        chats = {
            MINE: ChatFacts(MINE, "Ann & Bob", frozenset({"ann.skype", "bob.skype"})),
            THEIRS: ChatFacts(THEIRS, "Carol & Dave", frozenset({"carol.skype", "dave.skype"})),
            LONG: ChatFacts(LONG, "Long", frozenset({"carol.skype"})),
            PUBLIC: ChatFacts(PUBLIC, "News", frozenset()),
        }
        self.snapshot = Snapshot(
            (1, None),
            chats,
            {"ann.skype": "ann", "carol.skype": "carol"},
            {paths.encode_chat_name(LONG): LONG},
        )
        self.files = {
            SHA_MINE: frozenset({MINE}),
            SHA_THEIRS: frozenset({THEIRS}),
            SHA_BOTH: frozenset({MINE, THEIRS}),
        }

    def current(self) -> Snapshot:
        return self.snapshot

    def media_chats(self, sha256: str) -> frozenset[str]:
        return self.files.get(sha256, frozenset())


PERMISSIONS = parse_permissions(
    {
        "rules": [
            {"allow": {"members": True}},
            {"titles": ["news"], "allow": True},
        ]
    }
)
ANN = Reader("ann", via="session")
CAROL = Reader("carol", via="session")
ADMIN = Reader("root", admin=True, via="session")


def gate() -> Gate:
    return Gate(PERMISSIONS, Catalog())


def chat_paths(chat: str, month: str = "2026-12") -> list[str]:
    enc = paths.encode_chat_name(chat)
    return [
        paths.chat_index_path(chat),
        paths.chat_stats_path(chat),
        paths.month_page_path(chat, month),
        paths.month_manifest_path(chat, month),
        paths.chat_feed_path(chat),
        paths.archive_feed_path(chat, month),
        f"chats/{enc}",
        f"chats/{enc}/",
    ]


def test_visible_chats():
    g = gate()
    assert g.visible_chats(ANN) == {MINE, PUBLIC}
    assert g.visible_chats(CAROL) == {THEIRS, LONG, PUBLIC}
    assert g.visible_chats(ANONYMOUS) == {PUBLIC}
    assert g.visible_chats(Reader("bob")) == {PUBLIC}  # bob.skype is mapped to nobody
    assert g.visible_chats(ADMIN) is None
    assert g.can_read_chat(ANN, MINE) and not g.can_read_chat(ANN, THEIRS)
    assert g.can_read_chat(ADMIN, "no such chat") and not g.can_read_chat(ANN, "no such chat")


def test_every_path_of_a_chat_follows_the_chat():
    g = gate()
    for chat, readers in ((MINE, {ANN}), (THEIRS, {CAROL}), (LONG, {CAROL})):
        for path in chat_paths(chat):
            for reader in (ANN, CAROL, ANONYMOUS, ADMIN):
                assert g.can_fetch(reader, path) == (reader in readers or reader is ADMIN), (
                    reader,
                    path,
                )
    for path in chat_paths(PUBLIC):
        assert g.can_fetch(ANONYMOUS, path)


def test_media_and_thumbnails_follow_the_chats_that_show_them():
    g = gate()
    for sha, ann, carol in (
        (SHA_MINE, True, False),
        (SHA_THEIRS, False, True),
        (SHA_BOTH, True, True),
    ):
        for path in (f"media/{sha[:2]}/{sha}", thumbnail_path(sha)):
            assert g.can_fetch(ANN, path) == ann and g.can_fetch(CAROL, path) == carol, path
            assert g.can_fetch(ADMIN, path) and not g.can_fetch(ANONYMOUS, path)
    orphan = "99" + "9" * 62
    assert not g.can_fetch(ANN, f"media/99/{orphan}") and g.can_fetch(ADMIN, f"media/99/{orphan}")


def test_the_site_wide_pages_are_the_static_files_for_administrators_only():
    g = gate()
    for path in ("", "index.html", "feeds/all.atom", "stats.html"):
        assert g.can_fetch(ADMIN, path) and not g.can_fetch(ANN, path)
        assert not g.can_fetch(ANONYMOUS, path)
    assert g.can_fetch(ANONYMOUS, "style.css")


def test_tricks_get_nothing():
    g = gate()
    theirs = paths.encode_chat_name(THEIRS)
    mine = paths.encode_chat_name(MINE)
    tricks = [
        f"chats/{mine}/../{theirs}/index.html",
        f"chats/{mine}/../../chats/{theirs}/2026-12.html",
        f"chats/{theirs.upper()}/index.html",
        # Another spelling of the same name (an escaped safe letter) is no chat's file name.
        f"chats/{theirs.replace('c', '~63', 1)}/index.html",
        f"chats/{theirs}/index.html/",
        f"chats/{theirs}/x/index.html",
        f"chats/{mine}/2026-13.html",
        f"chats/{mine}/.htaccess",
        f"feeds/{mine}/2026-12.atom.bak",
        f"feeds/{mine}/../{theirs}.atom",
        f"media/cd/{SHA_THEIRS}",
        f"media/ab/{SHA_THEIRS}",
        f"media/cd/{SHA_THEIRS.upper()}",
        f"thumbs/cd/{SHA_THEIRS}",
        f"thumbs/cd/{SHA_THEIRS}.jpg",
        ".chatchannels-pages.db",
        ".chatchannels-site.json",
        "search/.chatchannels-titles.json",
        "feeds",
        "chats",
        "chats/",
        "/etc/passwd",
        "chats/" + paths.encode_chat_name(LONG)[:-3] + "abc/index.html",
    ]
    for path in tricks:
        assert not g.can_fetch(ANN, path), path
        assert not g.can_fetch(ANONYMOUS, path), path


MONTHS = ("2026-12", "2026-01")
PIECES = [
    *(paths.encode_chat_name(c) for c in (MINE, THEIRS, LONG, PUBLIC)),
    *("chats", "feeds", "media", "thumbs", "/", "..", ".", "~", "~2F", "~2E", "(", ")"),
    *("index", "index.html", "stats.html", ".html", ".atom", ".jpg", ".manifest.json"),
    *MONTHS,
    *(s for sha in (SHA_MINE, SHA_THEIRS, SHA_BOTH) for s in (sha, sha[:2])),
]


@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join) | st.text(max_size=40))
def test_a_path_made_of_the_sites_pieces_opens_only_the_readers_own_files(path):
    """Whatever is put together from the site's names and separators, a reader gets only
    the files of the chats they read, the files those show, and the style sheet."""
    mine = {"style.css"}
    for chat in (MINE, PUBLIC):
        for month in MONTHS:
            mine.update(chat_paths(chat, month))
    for sha in (SHA_MINE, SHA_BOTH):
        mine.update({f"media/{sha[:2]}/{sha}", thumbnail_path(sha)})
    assert gate().can_fetch(ANN, path) == (path in mine), path


RULES = [
    {"allow": {"members": True}},
    {"titles": "news", "allow": True},
    {"chats": "#*", "allow": {"groups": ["staff"]}},
    {"chats": ["19:*"], "titles": "l*", "allow": {"id": "*"}},
    {"titles": "carol*", "allow": {"unauthenticated": True}},
    {"allow": False},
]


@given(
    st.lists(st.sampled_from(RULES), max_size=4),
    st.sampled_from(
        [ANN, CAROL, ANONYMOUS, ADMIN, Reader("bob"), Reader("zed", frozenset({"staff"}))]
    ),
)
def test_the_gate_answers_as_the_rules_do_for_every_chat(rules, reader):
    permissions = parse_permissions({"rules": rules})
    catalog = Catalog()
    snapshot = catalog.current()
    expected = {
        name
        for name, chat in snapshot.chats.items()
        if permissions.may_read(reader, chat, snapshot.handle_readers)
    }
    g = Gate(permissions, catalog)
    assert g.visible_chats(reader) == (None if reader.admin else expected)
    for name in snapshot.chats:
        assert g.can_read_chat(reader, name) == (name in expected)
        assert g.can_fetch(reader, paths.month_page_path(name, "2026-12")) == (name in expected)
