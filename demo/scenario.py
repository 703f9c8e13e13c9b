"""The demo's scenario: three desktops with wrong clocks, a few hundred messages, and the
cases a naive archiver gets wrong (the same text twice, a bot repeating itself, edits,
deletions, one Skype quitting and coming back, a desktop going offline).

Built in code from a seed, so the demo and its test always play the same story; `tail`
appends a slow stream of further messages for the live demo that runs until Ctrl-C.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from chatchannels.emulator.bodies import SAMPLES
from chatchannels.emulator.scenario import FORMAT

HOSTS = (
    # id, user, full name, clock skew (s), time zone (s east of UTC)
    ("alice-pc", "alice", "Alice Archer", 0.0, 3600),
    ("bob-laptop", "bob", "Bob Baker", 47.0, -18000),
    ("cecil-pc", "cecil", "Cecil Cho", -83.0, 19800),
)
BOT = "build.bot"
DIALOG = "#alice/$bob;a7ab206ec78060f1"
GROUP = "#cecil/$bob;4d8cc9965791c6b9"
BUILDS = "#bob/$72cb4c9d0871e6dc"
# A chat the agents are not told to archive: its messages must never reach the archive.
PRIVATE = "#live:erin_1/$alice;571b01cfad580ed"
ARCHIVED_CHATS = (DIALOG, GROUP, BUILDS)
_PEOPLE = {
    DIALOG: ["alice", "bob"],
    GROUP: ["bob", "cecil", "alice"],
    BUILDS: ["bob", "cecil", "alice"],
    PRIVATE: ["live:erin_1", "alice"],
}


def demo_scenario(
    start: int, messages: int = 240, seed: int = 2006, tail: int = 0, lead_in: float = 0.0
) -> dict:
    """The scenario document: `messages` scripted posts about a second apart, after `lead_in`
    quiet seconds (time for the agents to attach), then `tail` slower ones."""
    rng = random.Random(seed)
    actions = sorted(_script(rng, messages), key=lambda a: a["at"])
    for action in actions:
        action["at"] = round(action["at"] + lead_in, 3)
    end = actions[-1]["at"] if actions else 0.0
    actions += list(_tail(rng, end, tail))
    return {
        "format": FORMAT,
        "title": "demo: three desktops with skews +0, +47 and -83 s",
        "seed": seed,
        "start": start,
        "users": [{"handle": u, "fullname": n} for _, u, n, _, _ in HOSTS]
        + [
            {"handle": BOT, "fullname": "Build Bot", "tz_offset_s": 0},
            {"handle": "live:erin_1", "fullname": "Erin", "tz_offset_s": 7200},
        ],
        "hosts": [{"id": h, "user": u, "skew_s": s, "tz_offset_s": tz} for h, u, _, s, tz in HOSTS],
        "chats": [
            {"name": DIALOG, "members": ["alice", "bob"], "adder": "alice", "created": -86400},
            {
                "name": GROUP,
                "members": ["bob", "cecil", "alice"],
                "adder": "cecil",
                "topic": "weekend plans",
                "created": -3600,
            },
            {
                "name": BUILDS,
                "members": ["bob", "cecil", BOT, "alice"],
                "topic": "builds & releases",
                "created": -600,
            },
            {"name": PRIVATE, "members": ["live:erin_1", "alice"], "adder": "live:erin_1"},
        ],
        "timeline": actions,
    }


def _script(rng: random.Random, messages: int) -> Iterator[dict[str, Any]]:
    span = float(messages)
    posted: list[tuple[str, str, str]] = []
    for n in range(messages):
        at = round(n + rng.random() * 0.8, 3)
        chat = rng.choice((DIALOG, GROUP, GROUP, BUILDS, PRIVATE))
        author = rng.choice(_PEOPLE[chat])
        body = rng.choice(SAMPLES) if rng.random() < 0.7 else f"message {n}: {rng.choice(SAMPLES)}"
        if not body.strip():
            body = f"message {n}"
        msg = f"p{n}"
        posted.append((msg, chat, author))
        yield {"at": at, "op": "post", "chat": chat, "author": author, "body": body, "msg": msg}
    # One person sends the same text twice, seconds apart: two messages, never one.
    yield {
        "at": span * 0.2,
        "op": "post",
        "chat": GROUP,
        "author": "bob",
        "body": "see you tomorrow",
        "msg": "twice-1",
    }
    yield {
        "at": span * 0.2 + 4,
        "op": "post",
        "chat": GROUP,
        "author": "bob",
        "body": "see you tomorrow",
        "msg": "twice-2",
    }
    # A bot repeating itself inside the matching tolerance: five messages.
    for k in range(5):
        yield {
            "at": span * 0.3 + 15 * k,
            "op": "post",
            "chat": BUILDS,
            "author": BOT,
            "body": "nightly build: all green",
            "msg": f"bot-{k}",
        }
    # Edits and deletions of earlier messages, by their authors.
    for k, (msg, chat, author) in enumerate(rng.sample(posted[: messages // 2], 18)):
        at = span * 0.55 + k * 2.5
        if chat == PRIVATE:
            continue
        if k % 3 == 2:
            yield {"at": at, "op": "delete", "msg": msg, "editor": author}
        else:
            yield {"at": at, "op": "edit", "msg": msg, "body": f"{msg} (edited)", "editor": author}
    # Bob's Skype quits and comes back; the agent must fill the gap from its history.
    yield {"at": span * 0.4, "op": "quit", "host": "bob-laptop"}
    yield {"at": span * 0.4 + 20, "op": "restart", "host": "bob-laptop"}
    # Cecil's desktop loses the network for a while.
    yield {"at": span * 0.7, "op": "offline", "host": "cecil-pc"}
    yield {"at": span * 0.7 + 15, "op": "online", "host": "cecil-pc"}
    yield {
        "at": span * 0.8,
        "op": "topic",
        "chat": GROUP,
        "author": "cecil",
        "body": "weekend plans: <b>Sunday</b> & later",
        "msg": "topic-1",
    }


def _tail(rng: random.Random, after: float, count: int) -> Iterator[dict[str, Any]]:
    """Messages every few seconds, for as long as the live demo runs."""
    at = after
    for n in range(count):
        at = round(at + 2 + rng.random() * 4, 3)
        chat = rng.choice(ARCHIVED_CHATS)
        yield {
            "at": at,
            "op": "post",
            "chat": chat,
            "author": rng.choice(_PEOPLE[chat]),
            "body": rng.choice(SAMPLES).strip() or "still here",
            "msg": f"live-{n}",
        }
