"""Ground truth: what a perfect pipeline must make of a scenario.

Pure, and computed from the scenario alone (no emulator run), so a test can score the whole
pipeline against it. Every message-producing action (post, topic, join, leave) is one
canonical message; edits and deletes are later revisions of it. A message is held by every
host whose user was in the chat when it was posted (offline or quit hosts included: Skype
syncs their history later).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chatchannels.emulator.scenario import Scenario, ScenarioError

_KINDS = {"post": "", "topic": "SETTOPIC", "join": "ADDEDMEMBERS", "leave": "LEFT"}


@dataclass(frozen=True)
class Revision:
    """A later body of a message: `body` "" is a deletion. `at` is true Unix time."""

    body: str
    editor: str
    at: float


@dataclass(frozen=True)
class TruthMessage:
    msg: str
    chat: str
    author: str
    type: str
    body: str
    posted_at: float
    hosts: tuple[str, ...]
    revisions: tuple[Revision, ...] = ()

    @property
    def deleted(self) -> bool:
        return bool(self.revisions) and self.revisions[-1].body == ""

    @property
    def final_body(self) -> str:
        return self.revisions[-1].body if self.revisions else self.body

    def to_json(self) -> dict:
        return {
            "msg": self.msg,
            "chat": self.chat,
            "author": self.author,
            "type": self.type,
            "body": self.body,
            "posted_at": self.posted_at,
            "hosts": list(self.hosts),
            "revisions": [{"body": r.body, "editor": r.editor, "at": r.at} for r in self.revisions],
            "deleted": self.deleted,
        }


def ground_truth(scenario: Scenario) -> list[TruthMessage]:
    """Every canonical message of `scenario`, in posting order."""
    return list(iter_ground_truth(scenario))


def iter_ground_truth(scenario: Scenario) -> Iterator[TruthMessage]:
    """Like `ground_truth`, streaming: two passes over the timeline, so only the edits (not
    the messages) are held in memory, however long a generated scenario is."""
    revisions = _revisions(scenario)
    members = {c.name: [m.lower() for m in c.members] for c in scenario.chats}
    host_of = {h.user.lower(): h.id for h in scenario.hosts}
    for action in scenario.actions():
        if action.op not in _KINDS:
            continue
        author = action.user if action.op == "leave" else action.author
        chat = members[action.chat]
        if author.lower() not in chat:
            where = f"timeline[{action.index}] ({action.op})"
            raise ScenarioError(f"{where}: {author!r} is not a member of {action.chat}")
        if action.op == "join":
            if action.user.lower() in chat:
                where = f"timeline[{action.index}] ({action.op})"
                raise ScenarioError(f"{where}: {action.user} is already in {action.chat}")
            chat.append(action.user.lower())
        yield TruthMessage(
            msg=action.message_id,
            chat=action.chat,
            author=author,
            type=_KINDS[action.op] or action.type,
            body=action.body if action.op in ("post", "topic") else "",
            posted_at=scenario.start + action.at,
            hosts=tuple(host_of[m] for m in chat if m in host_of),
            revisions=tuple(revisions.pop(action.message_id, ())),
        )
        if action.op == "leave":
            chat.remove(action.user.lower())


def _revisions(scenario: Scenario) -> dict[str, list[Revision]]:
    """First pass: every edit and delete, keyed by message id; checks that ids make sense."""
    authors: dict[str, str] = {}
    revisions: dict[str, list[Revision]] = {}
    for action in scenario.actions():
        where = f"timeline[{action.index}] ({action.op})"
        key = action.message_id
        if action.op in _KINDS:
            if key in authors:
                raise ScenarioError(f"{where}: message id {key!r} is already used")
            authors[key] = action.user if action.op == "leave" else action.author
        elif action.op in ("edit", "delete"):
            if key not in authors:
                raise ScenarioError(f"{where}: unknown message id {key!r}")
            body = action.body if action.op == "edit" else ""
            editor = action.editor or authors[key]
            revisions.setdefault(key, []).append(Revision(body, editor, scenario.start + action.at))
    return revisions
