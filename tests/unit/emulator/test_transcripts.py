"""The emulator against the transcripts of spec section 9 (the emulator's side of each)."""

from __future__ import annotations

import re

import pytest

from chatchannels.emulator.commands import SLOW_CONSENT_S, SLOW_GET_S, invoke
from chatchannels.emulator.scenario import Action, scenario_from_dict
from chatchannels.emulator.world import World

DIALOG = "#alice/$bob;ea753190f0a3e49b"
GROUP = "#cecil/$bob;4d8cc9965791c6b9"
OLD_DIALOG = "#alice/$bob;a7ab206ec78060f1"
START = 1357987875


def spec_world() -> World:
    return World(
        scenario_from_dict(
            {
                "format": "chatchannels.scenario.v1",
                "start": START,
                "users": [
                    {"handle": "echo123", "fullname": "Echo / Sound Test Service"},
                    {"handle": "bob", "fullname": ""},
                    {"handle": "cecil"},
                ],
                "hosts": [
                    {"id": "alice-pc", "user": "alice", "first_id": 280},
                    {"id": "bob-pc", "user": "bob", "skew_s": -3, "tz_offset_s": 3600},
                ],
                "chats": [
                    {"name": DIALOG, "members": ["alice", "bob"]},
                    {
                        "name": GROUP,
                        "members": ["bob", "cecil", "alice"],
                        "adder": "bob",
                        "created": 1358276196 - START,
                    },
                    {"name": OLD_DIALOG, "members": ["alice", "bob"]},
                ],
                "timeline": [],
            }
        )
    )


class Client:
    """One API client connection of one host, talking to the pure handler."""

    def __init__(self, world: World, host: str = "alice-pc", name: str = ":1.42") -> None:
        self.world, self.host, self.name = world, host, name
        self.seen: list[str] = []

    def ask(self, command: str) -> str:
        outcome = invoke(self.world, self.host, self.name, command)
        self.take(outcome.notices)
        return outcome.reply

    def take(self, notices) -> None:
        self.seen += [n.text for n in notices if n.host == self.host and n.connection == self.name]

    def attach(self, protocol: int = 8) -> Client:
        assert self.ask("#0 NAME ChatArchive") == "#0 OK"
        assert self.ask(f"#1 PROTOCOL {protocol}") == f"#1 PROTOCOL {protocol}"
        self.seen.clear()
        return self

    def drain(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


def act(world: World, clients: list[Client], **fields) -> None:
    notices = world.apply(Action(index=len(world.messages) + 1000, **fields))
    for c in clients:
        c.take(notices)


def test_t1_t2_attach_pushes_state_and_protocol():
    c = Client(spec_world())
    assert c.ask("#0 NAME ChatArchive") == "#0 OK"
    assert c.ask("#1 PROTOCOL 8") == "#1 PROTOCOL 8"
    assert c.drain() == ["CONNSTATUS ONLINE", "CURRENTUSERHANDLE alice", "USERSTATUS ONLINE"]
    old = Client(c.world, name=":1.43")
    assert old.ask("NAME skype_io") == "OK"
    assert old.ask("PROTOCOL 5") == "PROTOCOL 5"


def test_t3_t4_refused_and_offline_consent():
    world = spec_world()
    world.set_fault("alice-pc", "refuse_consent", True)
    assert Client(world).ask("#0 NAME ChatArchive") == "#0 ERROR 68"
    world.set_fault("alice-pc", "refuse_consent", False)
    world.set_fault("alice-pc", "offline_consent", True)
    assert Client(world).ask("#0 NAME ChatArchive") == "#0 CONNSTATUS OFFLINE"


def test_t6_t7_downgrade_ping_identity():
    c = Client(spec_world())
    c.ask("#0 NAME x")
    assert c.ask("#1 PROTOCOL 99") == "#1 PROTOCOL 8"
    assert c.ask("#2 PING") == "#2 PONG"
    assert c.ask("#3 GET CURRENTUSERHANDLE") == "#3 CURRENTUSERHANDLE alice"
    assert c.ask("#4 GET SKYPEVERSION") == "#4 SKYPEVERSION 4.3.0.37"


def test_t8_t9_t10_chat_searches_use_the_chats_noun():
    c = Client(spec_world()).attach()
    assert c.ask("#5 SEARCH CHATS") == f"#5 CHATS {DIALOG}, {GROUP}, {OLD_DIALOG}"
    assert c.ask("#7 SEARCH MISSEDCHATS") == "#7 CHATS "
    assert c.ask("#RCH SEARCH RECENTCHATS") == "#RCH CHATS "
    act(c.world, [c], at=1, op="post", chat=GROUP, author="bob", body="x")
    assert c.ask("#RCH SEARCH RECENTCHATS") == f"#RCH CHATS {GROUP}"
    assert c.ask("#7 SEARCH MISSEDCHATS") == f"#7 CHATS {GROUP}"
    assert c.ask("#6 SEARCH BOOKMARKEDCHATS") == "#6 CHATS "


def test_t11_group_chat_properties():
    c = Client(spec_world()).attach()
    expected = {
        "STATUS": "MULTI_SUBSCRIBED",
        "MEMBERS": "bob cecil alice",
        "FRIENDLYNAME": "bob, cecil",
        "TOPIC": "",
        "TIMESTAMP": "1358276196",
        "ADDER": "bob",
    }
    for n, (prop, value) in enumerate(expected.items(), start=8):
        assert c.ask(f"#{n} GET CHAT {GROUP} {prop}") == f"#{n} CHAT {GROUP} {prop} {value}"


def test_t12_t13_t14_t16_receive_then_read():
    c = Client(spec_world()).attach()
    act(c.world, [c], at=0, op="post", chat=DIALOG, author="alice", body="foo")
    c.drain()
    act(c.world, [c], at=0, op="post", chat=DIALOG, author="bob", body="bar")
    notes = c.drain()
    assert notes[:2] == [
        f"CHAT {DIALOG} POSTERS alice bob",
        f"CHAT {DIALOG} ACTIVITY_TIMESTAMP {START}",
    ]
    m = re.fullmatch(r"CHATMESSAGE (\d+) STATUS RECEIVED", notes[2])
    assert m and len(notes) == 3
    mid = m[1]
    assert c.ask(f"#14 GET CHAT {DIALOG} DIALOG_PARTNER") == f"#14 CHAT {DIALOG} DIALOG_PARTNER bob"
    assert c.ask(f"#15 GET CHAT {DIALOG} POSTERS") == f"#15 CHAT {DIALOG} POSTERS alice bob"
    listed = c.ask(f"#17 GET CHAT {DIALOG} CHATMESSAGES")
    assert re.fullmatch(rf"#17 CHAT {re.escape(DIALOG)} CHATMESSAGES \d+, {mid}", listed)
    # An empty list has no trailing space, as in the one recording (spec 1.6).
    assert c.ask(f"GET CHATMESSAGE {mid} USERS") == f"CHATMESSAGE {mid} USERS"
    assert c.ask(f"#18 GET CHAT {DIALOG} RECENTCHATMESSAGES").endswith(f"RECENTCHATMESSAGES {mid}")
    for n, (prop, value) in enumerate(
        [
            ("FROM_HANDLE", "bob"),
            ("BODY", "bar"),
            ("TYPE", "SAID"),
            ("CHATNAME", DIALOG),
            ("STATUS", "RECEIVED"),
            ("TIMESTAMP", str(START)),
            ("EDITED_TIMESTAMP", "0"),
            ("EDITED_BY", ""),
            ("LEAVEREASON", ""),
            ("IS_EDITABLE", "FALSE"),
        ],
        start=19,
    ):
        assert (
            c.ask(f"#{n} GET CHATMESSAGE {mid} {prop}") == f"#{n} CHATMESSAGE {mid} {prop} {value}"
        )


def test_each_host_numbers_and_clocks_its_own_copy():
    world = spec_world()
    alice, bob = Client(world).attach(), Client(world, "bob-pc").attach()
    act(world, [alice, bob], at=10, op="post", chat=DIALOG, author="bob", body="bar")
    alice_id = alice.drain()[-1].split()[1]
    bob_notes = bob.drain()
    assert bob_notes[1] == f"CHATMESSAGE {bob_notes[1].split()[1]} STATUS SENDING"
    bob_id = bob_notes[-1].split()[1]
    assert alice_id != bob_id
    assert alice.ask(f"GET CHATMESSAGE {alice_id} TIMESTAMP").endswith(str(START + 10))
    assert bob.ask(f"GET CHATMESSAGE {bob_id} TIMESTAMP").endswith(str(START + 10 - 3))
    assert bob.ask(f"GET CHATMESSAGE {bob_id} STATUS").endswith("STATUS SENT")
    assert alice.ask("GET USER bob TIMEZONE") == "USER bob TIMEZONE 90000"


def test_t15_body_travels_verbatim():
    c = Client(spec_world()).attach()
    body = ' indented, "quotes" & <angle>\nsecond line'
    act(c.world, [c], at=0, op="post", chat=DIALOG, author="bob", body=body)
    mid = c.drain()[-1].split()[1]
    assert c.ask(f"#25 GET CHATMESSAGE {mid} BODY") == f"#25 CHATMESSAGE {mid} BODY {body}"


def test_t17_t18_reorder_and_dropped_received():
    world = spec_world()
    c = Client(world).attach()
    world.set_fault("alice-pc", "reorder", True)
    act(world, [c], at=0, op="post", chat=GROUP, author="bob", body="x")
    notes = c.drain()
    assert notes[0].endswith("STATUS RECEIVED") and "ACTIVITY_TIMESTAMP" in notes[1]
    world.set_fault("alice-pc", "reorder", False)
    world.set_fault("alice-pc", "drop_received", True)
    act(world, [c], at=1, op="post", chat=GROUP, author="bob", body="y")
    notes = c.drain()
    assert notes == [f"CHAT {GROUP} ACTIVITY_TIMESTAMP {START + 1}"]
    recent = c.ask(f"#26 GET CHAT {GROUP} RECENTCHATMESSAGES")
    assert re.fullmatch(rf"#26 CHAT {re.escape(GROUP)} RECENTCHATMESSAGES \d+, \d+", recent)


def test_t19_missed_messages_after_reattach():
    world = spec_world()
    act(world, [], at=0, op="post", chat=GROUP, author="bob", body="hey ben")
    c = Client(world).attach()
    found = c.ask("SEARCH MISSEDCHATMESSAGES")
    mid = re.fullmatch(r"CHATMESSAGES (\d+)", found)[1]
    assert c.ask(f"GET CHATMESSAGE {mid} STATUS") == f"CHATMESSAGE {mid} STATUS RECEIVED"
    assert c.ask(f"GET CHATMESSAGE {mid} BODY") == f"CHATMESSAGE {mid} BODY hey ben"


def test_t20_t21_send_and_edit_own_message():
    world = spec_world()
    c = Client(world).attach()
    bob = Client(world, "bob-pc").attach()
    reply = c.ask(f"CHATMESSAGE {GROUP} Test chat message")
    mid = re.fullmatch(r"CHATMESSAGE (\d+) STATUS SENDING", reply)[1]
    assert c.drain()[-2:] == [
        f"CHAT {GROUP} ACTIVITY_TIMESTAMP {START}",
        f"CHATMESSAGE {mid} STATUS SENT",
    ]
    bob.take(())
    assert c.ask(f"GET CHATMESSAGE {mid} IS_EDITABLE") == f"CHATMESSAGE {mid} IS_EDITABLE TRUE"
    text = "Test message after being edited"
    assert c.ask(f"SET CHATMESSAGE {mid} BODY {text}") == f"CHATMESSAGE {mid} BODY {text}"
    assert c.drain() == [
        f"CHATMESSAGE {mid} EDITED_TIMESTAMP {START}",
        f"CHATMESSAGE {mid} EDITED_BY alice",
        f"CHATMESSAGE {mid} BODY {text}",
    ]


def test_t22_t23_remote_edit_and_delete():
    world = spec_world()
    c = Client(world).attach()
    act(world, [c], at=0, op="post", chat=DIALOG, author="bob", body="bar", msg="m")
    mid = c.drain()[-1].split()[1]
    act(world, [c], at=125, op="edit", msg="m", body="bar (fixed)")
    assert c.drain() == [
        f"CHATMESSAGE {mid} EDITED_TIMESTAMP {START + 125}",
        f"CHATMESSAGE {mid} EDITED_BY bob",
        f"CHATMESSAGE {mid} BODY bar (fixed)",
    ]
    act(world, [c], at=225, op="delete", msg="m")
    assert c.drain()[-1] == f"CHATMESSAGE {mid} BODY "


def test_t24_t25_read_in_ui_and_seen():
    world = spec_world()
    c = Client(world).attach()
    act(world, [c], at=0, op="post", chat=DIALOG, author="bob", body="a")
    act(world, [c], at=0, op="post", chat=GROUP, author="bob", body="b")
    first, second = (line.split()[1] for line in c.drain() if "STATUS RECEIVED" in line)
    act(world, [c], at=1, op="read", host="alice-pc", chat=DIALOG)
    assert c.drain() == [f"CHATMESSAGE {first} STATUS READ"]
    assert c.ask(f"SET CHATMESSAGE {second} SEEN") == f"CHATMESSAGE {second} STATUS READ"
    assert c.ask(f"SET CHATMESSAGE {second} SEEN") == "ERROR 32 Invalid WHAT"


def test_t26_invited_into_a_group_chat():
    world = spec_world()
    bob = Client(world, "bob-pc").attach()
    act(world, [bob], at=0, op="leave", chat=GROUP, user="bob")
    bob.drain()
    act(world, [bob], at=5, op="join", chat=GROUP, user="bob", author="cecil")
    notes = bob.drain()
    assert notes[:2] == [f"CHAT {GROUP} NAME {GROUP}", f"CHAT {GROUP} STATUS MULTI_SUBSCRIBED"]
    assert re.fullmatch(r"CHATMEMBER \d+ ROLE USER", notes[2])
    assert notes[3:5] == [f"CHAT {GROUP} MYROLE USER", f"CHAT {GROUP} MEMBERS cecil alice bob"]
    assert notes[-1].endswith("STATUS RECEIVED")
    mid = notes[-1].split()[1]
    assert bob.ask(f"GET CHATMESSAGE {mid} TYPE") == f"CHATMESSAGE {mid} TYPE ADDEDMEMBERS"
    assert bob.ask(f"GET CHATMESSAGE {mid} BODY") == f"CHATMESSAGE {mid} BODY "
    assert bob.ask(f"GET CHATMESSAGE {mid} USERS") == f"CHATMESSAGE {mid} USERS bob"


def test_t27_t28_t29_topic_addmembers_leave():
    world = spec_world()
    c = Client(world).attach()
    assert c.ask(f"ALTER CHAT {GROUP} SETTOPIC topic") == "ALTER CHAT SETTOPIC"
    assert c.drain()[0] == f"CHAT {GROUP} TOPIC topic"
    assert c.ask(f"ALTER CHAT {OLD_DIALOG} ADDMEMBERS cecil") == "ALTER CHAT ADDMEMBERS"
    assert c.drain()[:3] == [
        f"CHAT {OLD_DIALOG} STATUS MULTI_SUBSCRIBED",
        f"CHAT {OLD_DIALOG} MEMBERS alice bob cecil",
        f"CHAT {OLD_DIALOG} ACTIVEMEMBERS alice bob cecil",
    ]
    assert c.ask(f"ALTER CHAT {GROUP} LEAVE") == "ALTER CHAT LEAVE"
    assert c.drain()[-4:] == [
        f"CHAT {GROUP} MEMBERS bob cecil",
        f"CHAT {GROUP} ACTIVEMEMBERS bob cecil",
        f"CHAT {GROUP} STATUS UNSUBSCRIBED",
        f"CHAT {GROUP} MYSTATUS UNSUBSCRIBED",
    ]
    assert c.ask(f"#29 ALTER CHAT {GROUP} LEAVE") == "#29 ERROR 504 CHAT: action failed"
    assert c.ask(f"ALTER CHAT {GROUP} BOOKMARK") == f"ALTER CHAT {GROUP} BOOKMARKED TRUE"


def test_t30_t31_create_dialog_and_member_objects():
    c = Client(spec_world()).attach()
    assert c.ask("CHAT CREATE bob") == f"CHAT {DIALOG} STATUS DIALOG"
    reply = c.ask("CHAT CREATE bob, cecil")
    assert re.fullmatch(r"CHAT #alice/\$[0-9a-f]{16} STATUS MULTI_SUBSCRIBED", reply)
    objects = c.ask(f"GET CHAT {GROUP} MEMBEROBJECTS")
    ids = re.fullmatch(rf"CHAT {re.escape(GROUP)} MEMBEROBJECTS (\d+), (\d+), (\d+)", objects)
    assert c.ask(f"GET CHATMEMBER {ids[3]} IDENTITY") == f"CHATMEMBER {ids[3]} IDENTITY alice"
    assert c.ask(f"GET CHATMEMBER {ids[3]} ROLE") == f"CHATMEMBER {ids[3]} ROLE USER"


def test_t32_contacts_and_user_details():
    c = Client(spec_world()).attach()
    assert c.ask("SEARCH FRIENDS") == "USERS bob, cecil, echo123"
    assert c.ask("GET USER echo123 FULLNAME") == "USER echo123 FULLNAME Echo / Sound Test Service"
    assert c.ask("GET USER bob PHONE_HOME") == "USER bob PHONE_HOME "
    assert c.ask("GET USER cecil TIMEZONE") == "USER cecil TIMEZONE 0"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (
            "#27 GET CHAT 19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.skype TOPIC",
            "#27 ERROR 105 Invalid chat name",
        ),
        (
            "#28 CHATMESSAGE #nobody/$x;0000000000000000 hi",
            "#28 ERROR 510 Invalid/uknown chat name given",
        ),
        ("#30 FROB", "#30 ERROR 2 Unknown command"),
        ("frob", "ERROR 2 Unknown command"),
        ("", "ERROR 2 Unknown command"),
        ("GET", "ERROR 7 GET: invalid WHAT"),
        ("GET CHATMESSAGE x BODY", "ERROR 14 Invalid message id"),
        ("GET CHATMESSAGE 1 BODY", "ERROR 15 Unknown message"),
        (f"GET CHAT {DIALOG} NOPE", "ERROR 106 Invalid PROP"),
        ("GET CHAT #nobody/$x;00 CHATMESSAGES", "ERROR 501 CHAT: No chat found for given chat"),
        ("GET USER bad!handle FULLNAME", "ERROR 8 Invalid user handle"),
        ("GET USER bob NOPE", "ERROR 10 Invalid PROP"),
        ("SEARCH NOTHING", "ERROR 3 Search: unknown WHAT"),
        ("SEARCH FRIENDS bob", "ERROR 67 Target not allowed with SEARCH FRIENDS"),
        ("SEARCH CHATS x", "ERROR 107 Target not allowed with CHATS"),
        ("SET NOTHING 1", "ERROR 18 SET: invalid WHAT"),
        ("SET USERSTATUS SLEEPY", "ERROR 28 Unknown userstatus"),
        ("SET CHATMESSAGE y SEEN", "ERROR 30 Invalid message id"),
        ("SET CHATMESSAGE 9 SEEN", "ERROR 31 Unknown message id"),
        ("PROTOCOL x", "ERROR 27 Invalid version number"),
        ("ALTER THING 1 X", "ERROR 527 ALTER: unknown object type given"),
        (f"ALTER CHAT {GROUP}", "ERROR 502 CHAT: No action name given"),
        (f"ALTER CHAT {GROUP} FLY", "ERROR 503 CHAT: Invalid or unknown action"),
        (f"ALTER CHAT {GROUP} LEAVE now", "ERROR 505 CHAT: LEAVE does not take arguments"),
        (f"ALTER CHAT {GROUP} JOIN", "ERROR 504 CHAT: action failed"),
        ("CHATMESSAGE", "ERROR 509 No chat name given"),
        (f"CHATMESSAGE {GROUP} ", "ERROR 43 cannot send empty message"),
        ("CHAT CREATE", "ERROR 507 CHAT: CREATE: invalid/missing user handle(s) as argument"),
        ("CHAT CREATE alice", "ERROR 507 CHAT: CREATE: invalid/missing user handle(s) as argument"),
        (
            "CHAT CREATE bob, BOB",
            "ERROR 507 CHAT: CREATE: invalid/missing user handle(s) as argument",
        ),
        ("get currentuserhandle", "CURRENTUSERHANDLE alice"),
        ("#a b GET CURRENTUSERHANDLE", "#a ERROR 2 Unknown command"),
    ],
)
def test_t33_errors(command, reply):
    c = Client(spec_world()).attach(protocol=5)
    assert c.ask(command) == reply


def test_unattached_connection_is_refused_and_gets_no_notifications():
    world = spec_world()
    stranger = Client(world, name=":1.99")
    assert stranger.ask("#1 GET CHAT x TOPIC") == "#1 ERROR 68"
    act(world, [stranger], at=0, op="post", chat=DIALOG, author="bob", body="x")
    assert stranger.drain() == []


def test_protocol_1_client_sees_message_objects():
    world = spec_world()
    c = Client(world)
    c.ask("NAME old")
    act(world, [c], at=0, op="post", chat=DIALOG, author="bob", body="x")
    note = c.drain()[-1]
    assert re.fullmatch(r"MESSAGE \d+ STATUS RECEIVED", note)
    mid = note.split()[1]
    assert c.ask(f"GET CHATMESSAGE {mid} TYPE") == f"MESSAGE {mid} TYPE TEXT"


def test_reply_via_notify_fault():
    world = spec_world()
    c = Client(world).attach()
    world.set_fault("alice-pc", "reply_via_notify", True)
    outcome = invoke(world, "alice-pc", c.name, "#9 PING")
    assert outcome.reply == ""
    assert [n.text for n in outcome.notices] == ["#9 PONG"]


def test_quit_forgets_attach_state_and_offline_host_gets_history_only():
    world = spec_world()
    c = Client(world).attach()
    act(world, [c], at=0, op="offline", host="alice-pc")
    assert c.drain() == ["CONNSTATUS OFFLINE"]
    act(world, [c], at=1, op="post", chat=DIALOG, author="bob", body="while away", msg="w")
    act(world, [c], at=2, op="edit", msg="w", body="while away (edited)")
    assert c.drain() == []
    act(world, [c], at=3, op="online", host="alice-pc")
    assert c.drain() == ["CONNSTATUS ONLINE"]
    mid = c.ask("SEARCH MISSEDCHATMESSAGES").split()[1]
    assert c.ask(f"GET CHATMESSAGE {mid} BODY").endswith("BODY while away (edited)")
    act(world, [c], at=4, op="quit", host="alice-pc")
    act(world, [c], at=5, op="restart", host="alice-pc")
    assert c.ask("GET CURRENTUSERHANDLE") == "ERROR 68"


def test_slow_consent_holds_the_name_reply():
    world = spec_world()
    world.set_fault("alice-pc", "slow_consent", True)
    outcome = invoke(world, "alice-pc", ":1.7", "#0 NAME x")
    assert (outcome.reply, outcome.delay_s) == ("#0 OK", SLOW_CONSENT_S)


def test_slow_message_gets_hold_only_message_replies():
    world = spec_world()
    c = Client(world)
    c.attach()
    world.set_fault("alice-pc", "slow_message_gets", True)
    slow = invoke(world, "alice-pc", c.name, "#1 GET CHATMESSAGE 1 BODY")
    quick = invoke(world, "alice-pc", c.name, "#2 GET CURRENTUSERHANDLE")
    assert slow.delay_s == SLOW_GET_S and slow.reply.startswith("#1 ")
    assert quick.delay_s == 0
