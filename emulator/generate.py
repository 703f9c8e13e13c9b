"""Large random scenarios, written as JSON Lines while they are generated.

Memory stays flat however many messages are asked for: only the chats' member lists and a
bounded window of recent message ids (for edits, deletes and repeats) are kept. The same
seed always gives the same file.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterator
from typing import Any, TextIO

from chatchannels.emulator.bodies import sample_body
from chatchannels.emulator.scenario import FORMAT

# Posting times: 2013-01-12 (the era of the recordings the spec quotes).
DEFAULT_START = 1357987875
_RECENT = 500
_HOSTS = (
    ("alice-pc", "alice", "Alice Archer", 3.0, 3600),
    ("bob-laptop", "bob", "Bob Baker", -95.0, -18000),
    ("cecil-pc", "cecil", "Cecil Cho", 41.5, 19800),
    ("dora-mac", "live:dora_1", "Dora Dunn", 0.0, 0),
)
_REMOTE = (("erin.e", "Erin"), ("frank-f", "Frank"), ("build.bot", "Build Bot"))


def generate(messages: int, seed: int, start: int = DEFAULT_START) -> Iterator[dict[str, Any]]:
    """The header, then actions until `messages` message-producing actions were written."""
    rng = random.Random(seed)
    users = [{"handle": h[1], "fullname": h[2]} for h in _HOSTS]
    users += [{"handle": handle, "fullname": name, "tz_offset_s": 0} for handle, name in _REMOTE]
    hosts = [
        {"id": hid, "user": user, "skew_s": skew, "tz_offset_s": tz}
        for hid, user, _, skew, tz in _HOSTS
    ]
    chats = _chats(rng)
    yield {
        "format": FORMAT,
        "title": f"generated: {messages} messages, seed {seed}",
        "seed": seed,
        "start": start,
        "users": users,
        "hosts": hosts,
        "chats": chats,
    }
    members = {c["name"]: list(c["members"]) for c in chats}
    outsiders = {
        c["name"]: [u["handle"] for u in users if u["handle"] not in c["members"]] for c in chats
    }
    recent: deque[tuple[str, str, str, str]] = deque(maxlen=_RECENT)
    host_ids = [h["id"] for h in hosts]
    down: dict[str, str] = {}
    at = 0.0
    written = 0
    while written < messages:
        at = round(at + rng.expovariate(1 / 20), 3)
        chat = rng.choice(chats)["name"]
        roll = rng.random()
        key = f"m{written}"
        if down and roll < 0.02:
            host_id, back = down.popitem()
            yield {"at": at, "op": back, "host": host_id}
            continue
        if roll < 0.03:
            host_id = rng.choice(host_ids)
            if host_id not in down:
                going, back = rng.choice((("offline", "online"), ("quit", "restart")))
                down[host_id] = back
                yield {"at": at, "op": going, "host": host_id}
            continue
        if recent and roll < 0.10:
            msg, chat_of, author, body = rng.choice(recent)
            if author in members[chat_of]:
                if roll < 0.08:
                    yield {"at": at, "op": "edit", "msg": msg, "body": body + " (edited)"}
                else:
                    yield {"at": at, "op": "delete", "msg": msg}
                recent.remove((msg, chat_of, author, body))
            continue
        if roll < 0.11 and outsiders[chat]:
            user = rng.choice(outsiders[chat])
            adder = rng.choice(members[chat])
            outsiders[chat].remove(user)
            members[chat].append(user)
            yield {"at": at, "op": "join", "chat": chat, "user": user, "author": adder, "msg": key}
        elif roll < 0.12 and len(members[chat]) > 2:
            user = rng.choice(members[chat][2:])
            members[chat].remove(user)
            outsiders[chat].append(user)
            yield {"at": at, "op": "leave", "chat": chat, "user": user, "msg": key}
        elif roll < 0.13:
            author = rng.choice(members[chat])
            topic = sample_body(rng)[:200]
            yield {
                "at": at,
                "op": "topic",
                "chat": chat,
                "author": author,
                "body": topic,
                "msg": key,
            }
        else:
            author = rng.choice(members[chat])
            if recent and roll < 0.16:
                # The same text again: a bot repeating itself, or a person posting twice.
                _, chat, author, body = recent[-1]
                if author not in members[chat]:
                    continue
            else:
                body = sample_body(rng)
            yield {"at": at, "op": "post", "chat": chat, "author": author, "body": body, "msg": key}
            recent.append((key, chat, author, body))
        written += 1
    for host_id, back in sorted(down.items()):
        yield {"at": at, "op": back, "host": host_id}


def _chats(rng: random.Random) -> list[dict[str, Any]]:
    def hexid(digits: int = 16) -> str:
        return f"{rng.getrandbits(64):016x}"[:digits]

    return [
        {"name": f"#alice/$bob;{hexid()}", "members": ["alice", "bob"], "adder": "alice"},
        {"name": f"#cecil/$bob;{hexid()}", "members": ["bob", "cecil", "alice"], "adder": "cecil"},
        {
            "name": f"#bob/${hexid()}",
            "members": ["bob", "cecil", "build.bot", "live:dora_1", "alice"],
            "topic": "builds & releases",
        },
        # 15 hex digits: a leading zero Skype dropped (spec 5.1).
        {"name": f"#live:dora_1/$erin.e;{hexid(15)}", "members": ["live:dora_1", "erin.e"]},
        {"name": f"#frank-f/${hexid()}", "members": ["frank-f", "alice", "cecil", "erin.e"]},
    ]


def write_scenario(out: TextIO, messages: int, seed: int, start: int = DEFAULT_START) -> int:
    """Write a generated scenario as JSON Lines; returns the number of lines written."""
    lines = 0
    for doc in generate(messages, seed, start):
        out.write(json.dumps(doc, ensure_ascii=False))
        out.write("\n")
        lines += 1
    return lines
