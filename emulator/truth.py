"""Ground truth: what a perfect pipeline must make of a scenario.

Pure, and computed from the scenario alone (no emulator run), so a test can score the whole
pipeline against it. Every message-producing action (post, topic, join, leave) is one
canonical message; edits and deletes are later revisions of it. A message is held by every
host whose user was in the chat when it was posted (offline or quit hosts included: Skype
syncs their history later).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

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
        doc = asdict(self)
        doc["hosts"] = list(self.hosts)
        doc["revisions"] = [asdict(r) for r in self.revisions]
        doc["deleted"] = self.deleted
        return doc


@dataclass
class _Building:
    message: TruthMessage
    revisions: list[Revision] = field(default_factory=list)


def ground_truth(scenario: Scenario) -> list[TruthMessage]:
    """Every canonical message of `scenario`, in posting order."""
    return list(iter_ground_truth(scenario))


def iter_ground_truth(scenario: Scenario) -> Iterator[TruthMessage]:
    members = {c.name: [m.lower() for m in c.members] for c in scenario.chats}
    host_of = {h.user.lower(): h.id for h in scenario.hosts}
    building: dict[str, _Building] = {}
    for action in scenario.actions():
        where = f"timeline[{action.index}] ({action.op})"
        at = scenario.start + action.at
        if action.op in _KINDS:
            author = action.user if action.op == "leave" else action.author
            if author.lower() not in members[action.chat]:
                raise ScenarioError(f"{where}: {author!r} is not a member of {action.chat}")
            if action.op == "join":
                if action.user.lower() in members[action.chat]:
                    raise ScenarioError(f"{where}: {action.user} is already in {action.chat}")
                members[action.chat].append(action.user.lower())
            key = action.message_id
            if key in building:
                raise ScenarioError(f"{where}: message id {key!r} is already used")
            hosts = tuple(host_of[m] for m in members[action.chat] if m in host_of)
            body = action.body if action.op in ("post", "topic") else ""
            kind = _KINDS[action.op] or action.type
            building[key] = _Building(TruthMessage(key, action.chat, author, kind, body, at, hosts))
            if action.op == "leave":
                members[action.chat].remove(action.user.lower())
        elif action.op in ("edit", "delete"):
            entry = building.get(action.message_id)
            if entry is None:
                raise ScenarioError(f"{where}: unknown message id {action.message_id!r}")
            body = action.body if action.op == "edit" else ""
            editor = action.editor or entry.message.author
            entry.revisions.append(Revision(body, editor, at))
    for entry in building.values():
        m = entry.message
        yield TruthMessage(
            m.msg, m.chat, m.author, m.type, m.body, m.posted_at, m.hosts, tuple(entry.revisions)
        )
