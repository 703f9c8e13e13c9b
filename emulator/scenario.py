"""Scenarios: the emulated world (users, hosts, chats) and its timeline of actions.

Pure: parsing and validation only. A scenario is either one JSON document (``timeline`` is a
list) or JSON Lines (header line, then one action per line). The JSON Lines form is read
lazily each time the actions are iterated, so a generated scenario with millions of
messages never sits in memory. emulator/scenarios/README.md documents the format.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

FORMAT = "chatchannels.scenario.v1"
OPS = frozenset(
    {
        "post",
        "edit",
        "delete",
        "topic",
        "join",
        "leave",
        "read",
        "offline",
        "online",
        "quit",
        "restart",
        "fault",
        "clock",
    }
)
FAULTS = (
    "drop_received",
    "reorder",
    "reply_via_notify",
    "refuse_consent",
    "offline_consent",
    "slow_consent",
    "slow_message_gets",
)


class ScenarioError(ValueError):
    """A scenario is malformed; ``str()`` names the file/line or timeline index and the field."""


@dataclass(frozen=True)
class User:
    handle: str
    fullname: str = ""
    tz_offset_s: int | None = None


@dataclass(frozen=True)
class Host:
    id: str
    user: str
    skew_s: float = 0.0
    tz_offset_s: int = 0
    online: bool = True
    first_id: int = 0

    def clock(self, true_time: float) -> int:
        """This host's clock reading at a true time before any `clock` step of the timeline
        (`Scenario.host_clock` follows the steps)."""
        return clock_reading(true_time, self.skew_s)


def clock_reading(true_time: float, skew_s: float) -> int:
    """A host clock's reading (integer Unix seconds, as Skype reports) at a true time."""
    return math.floor(true_time + skew_s)


@dataclass(frozen=True)
class Chat:
    name: str
    members: tuple[str, ...]
    topic: str = ""
    adder: str = ""
    created: float = 0.0
    bookmarked: bool = False

    @property
    def is_dialog_name(self) -> bool:
        # "#a/$b;hex" began as a dialog; "#a/$hex" was created as a multichat (spec 5.1).
        return ";" in self.name


@dataclass(frozen=True)
class Action:
    """One timeline entry. ``index`` is its position in the timeline (0-based)."""

    index: int
    at: float
    op: str
    chat: str = ""
    author: str = ""
    user: str = ""
    host: str = ""
    body: str = ""
    msg: str = ""
    type: str = "SAID"
    editor: str = ""
    fault: str = ""
    on: bool = False
    step_s: float = 0.0

    @property
    def message_id(self) -> str:
        """The scenario message id this action creates or targets (default ``t<index>``)."""
        return self.msg or f"t{self.index}"


@dataclass(frozen=True)
class Scenario:
    start: int
    users: tuple[User, ...]
    hosts: tuple[Host, ...]
    chats: tuple[Chat, ...]
    title: str = ""
    seed: int | None = None
    # Re-iterable source of actions: a tuple in memory or a re-opened file.
    _actions: Callable[[], Iterator[Action]] = field(default=lambda: iter(()), repr=False)
    _count: Callable[[], int] = field(default=lambda: 0, repr=False)
    # Every host's clock steps, found by one pass over the timeline when first asked for.
    _steps: dict[str, tuple[tuple[float, float], ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def actions(self) -> Iterator[Action]:
        return self._actions()

    def count_actions(self) -> int:
        """How many actions the timeline has, without parsing them (cheap for JSON Lines)."""
        return self._count()

    def host(self, host_id: str) -> Host:
        for h in self.hosts:
            if h.id == host_id:
                return h
        raise KeyError(host_id)

    def clock_steps(self, host_id: str) -> tuple[tuple[float, float], ...]:
        """The host's `clock` actions as (true time, step_s), in timeline order."""
        if not self._steps:
            steps: dict[str, list[tuple[float, float]]] = {h.id: [] for h in self.hosts}
            for action in self.actions():
                if action.op == "clock":
                    steps[action.host].append((self.start + action.at, action.step_s))
            self._steps.update({h: tuple(s) for h, s in steps.items()})
        return self._steps[host_id]

    def skew_at(self, host_id: str, true_time: float) -> float:
        """Host clock minus true time at `true_time`, every step made by then included."""
        steps = self.clock_steps(host_id)
        return self.host(host_id).skew_s + sum(s for at, s in steps if at <= true_time)

    def host_clock(self, host_id: str) -> Callable[[float], int]:
        """The host's clock reading at any true time, following the timeline's steps."""
        return lambda true_time: clock_reading(true_time, self.skew_at(host_id, true_time))

    def user(self, handle: str) -> User:
        for u in self.users:
            if u.handle == handle:
                return u
        return User(handle)


@cache
def scenario_schema() -> dict[str, Any]:
    text = resources.files("chatchannels.schemas").joinpath("scenario.v1.json").read_text()
    return json.loads(text)


@cache
def _validator(definition: str) -> jsonschema.protocols.Validator:
    schema = scenario_schema()
    cls = jsonschema.validators.validator_for(schema)
    if definition:
        # $ref lookups dominate validation time; definitions are not recursive, so inline them.
        schema = _inline_refs(schema["$defs"][definition], schema["$defs"])
    return cls(schema)


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**target, **rest} if rest else target
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _check(doc: Any, definition: str, where: str) -> None:
    validator = _validator(definition)
    if validator.is_valid(doc):
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ScenarioError(f"{where}: field {path}: {error.message}")


def default_first_id(host_id: str) -> int:
    """A per-host counter start, so one message has different ids on different hosts."""
    return 100 + int.from_bytes(hashlib.sha256(host_id.encode()).digest()[:4], "big") % 90000


def _header(doc: Mapping[str, Any], where: str) -> Scenario:
    _check(doc, "header", where)
    users = {
        u["handle"]: User(u["handle"], u.get("fullname", ""), u.get("tz_offset_s"))
        for u in doc["users"]
    }
    hosts = tuple(
        Host(
            id=h["id"],
            user=h["user"],
            skew_s=float(h.get("skew_s", 0)),
            tz_offset_s=h.get("tz_offset_s", 0),
            online=h.get("online", True),
            first_id=h.get("first_id") or default_first_id(h["id"]),
        )
        for h in doc["hosts"]
    )
    chats = tuple(
        Chat(
            name=c["name"],
            members=tuple(c["members"]),
            topic=c.get("topic", ""),
            adder=c.get("adder", c["members"][0]),
            created=float(c.get("created", 0)),
            bookmarked=c.get("bookmarked", False),
        )
        for c in doc["chats"]
    )
    for h in hosts:
        users.setdefault(h.user, User(h.user))
    if len({h.id for h in hosts}) != len(hosts):
        raise ScenarioError(f"{where}: host ids are not unique")
    if len({h.user for h in hosts}) != len(hosts):
        raise ScenarioError(f"{where}: two hosts share a user")
    if len({c.name for c in chats}) != len(chats):
        raise ScenarioError(f"{where}: chat names are not unique")
    for c in chats:
        for m in c.members:
            users.setdefault(m, User(m))
    return Scenario(
        start=doc["start"],
        users=tuple(users.values()),
        hosts=hosts,
        chats=chats,
        title=doc.get("title", ""),
        seed=doc.get("seed"),
    )


def _action(index: int, doc: Any, where: str) -> Action:
    # The op's own definition is several times faster than the generic one's if/then chain,
    # which matters for generated scenarios of millions of lines.
    op = doc.get("op") if isinstance(doc, Mapping) else None
    _check(doc, op if op in OPS else "action", where)
    fields = {k: v for k, v in doc.items() if k not in ("at", "op")}
    if "step_s" in fields:
        fields["step_s"] = float(fields["step_s"])
    return Action(index=index, at=float(doc["at"]), op=doc["op"], **fields)


def _checked(scenario: Scenario, docs: Iterable[tuple[str, Any]]) -> Iterator[Action]:
    """Turn raw action documents into Actions, checking references and time order."""
    host_ids = {h.id for h in scenario.hosts}
    chat_names = {c.name for c in scenario.chats}
    last_at = 0.0
    # A step counts from its `at` on (Scenario.host_clock), so an action at that very time
    # placed before it in the timeline would be stamped by a clock the truth never shows.
    last_other_at = -math.inf
    for index, (where, doc) in enumerate(docs):
        action = _action(index, doc, where)
        if action.at < last_at:
            raise ScenarioError(
                f"{where}: at {action.at} is before the previous action ({last_at})"
            )
        if action.op == "clock":
            if not math.isfinite(action.step_s):
                raise ScenarioError(f"{where}: field step_s: {action.step_s} is not a number")
            if action.at <= last_other_at:
                raise ScenarioError(
                    f"{where}: a clock step must come later than the action before it"
                    f" (at {last_other_at}), not at the same time"
                )
        else:
            last_other_at = action.at
        if action.host and action.host not in host_ids:
            raise ScenarioError(f"{where}: unknown host {action.host!r}")
        if action.chat and action.chat not in chat_names:
            raise ScenarioError(f"{where}: unknown chat {action.chat!r}")
        last_at = action.at
        yield action


def scenario_from_dict(doc: Mapping[str, Any], where: str = "scenario") -> Scenario:
    """A scenario from one JSON document (``timeline`` inline)."""
    if not isinstance(doc, Mapping):
        raise ScenarioError(f"{where}: expected a JSON object")
    timeline = doc.get("timeline")
    if not isinstance(timeline, list):
        raise ScenarioError(f"{where}: field timeline: a list of actions is required")
    header = _header({k: v for k, v in doc.items() if k != "timeline"}, where)
    actions = tuple(
        _checked(header, ((f"{where}: timeline[{i}]", a) for i, a in enumerate(timeline)))
    )
    return _with_actions(header, lambda: iter(actions), lambda: len(actions))


def _with_actions(
    header: Scenario, source: Callable[[], Iterator[Action]], count: Callable[[], int]
) -> Scenario:
    return Scenario(
        start=header.start,
        users=header.users,
        hosts=header.hosts,
        chats=header.chats,
        title=header.title,
        seed=header.seed,
        _actions=source,
        _count=count,
    )


def _json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{where}: not JSON: {exc.msg} at column {exc.colno}") from exc


def load_scenario(path: Path) -> Scenario:
    """Load a ``.json`` document or a ``.jsonl`` stream (actions are re-read lazily)."""
    path = Path(path)
    if path.suffix != ".jsonl":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
        return scenario_from_dict(doc, str(path))
    lines = _json_lines(path)
    first = next(lines, None)
    if first is None:
        raise ScenarioError(f"{path}: empty file, expected a header line")
    where, doc = first
    if not isinstance(doc, Mapping):
        raise ScenarioError(f"{where}: the header must be a JSON object")
    header = _header(doc, where)
    lines.close()

    def actions() -> Iterator[Action]:
        rest = _json_lines(path)
        next(rest)
        return _checked(header, rest)

    def count() -> int:
        with path.open(encoding="utf-8") as f:
            return sum(1 for line in f if line.strip()) - 1

    return _with_actions(header, actions, count)


def bundled_scenario(name: str) -> Path:
    """Path of a scenario shipped in emulator/scenarios/."""
    return Path(str(resources.files("chatchannels.emulator").joinpath("scenarios", name)))
