"""Invariant 4: any interleaving of the hosts' event streams gives the same canonical state.

Scenarios are generated from a ground truth (who posted what when, edits, deletions) and
hosts with skewed clocks that go offline and backfill, so the same runs also check that each
true message becomes exactly one canonical message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from chatchannels.processors.engine import Applied, Engine
from tests.support.processor_events import CHAT, T0, Host, Record, interleave

AUTHORS = ("bob", "Cecil", "dave")
TEXTS = ("ok", "+1", "lunch?", "ok", "see you at 3", "ok")
OTHER_CHAT = "#cecil/$dave;0a1b2c3d4e5f6071"


@dataclass
class TrueMessage:
    n: int
    chat: str
    author: str
    posted: float
    body: str
    edits: list[tuple[float, str]]


def make_truth(rng: random.Random, count: int) -> list[TrueMessage]:
    messages, t = [], float(T0)
    for n in range(count):
        # Equal texts at least 4 s apart: Skype's whole seconds plus the delay bound.
        t += rng.choice((4, 5, 9, 30, 61, 119, 121, 400))
        body = rng.choice(TEXTS) if rng.random() < 0.7 else f"unique {n}"
        edits: list[tuple[float, str]] = []
        if rng.random() < 0.25:
            edits.append((t + rng.uniform(5, 300), f"{body} (edited)"))
            if rng.random() < 0.4:
                edits.append((edits[-1][0] + rng.uniform(5, 300), ""))
        chat = CHAT if rng.random() < 0.8 else OTHER_CHAT
        messages.append(TrueMessage(n, chat, rng.choice(AUTHORS), t, body, edits))
    return messages


def make_hosts(
    rng: random.Random, truth: list[TrueMessage], count: int, miss: float
) -> tuple[list[Host], dict[int, set[tuple[str, str]]]]:
    """Each host reads live while online and backfills when it comes back; returns the hosts
    and, per true message, the (host, local id) copies that exist."""
    end = truth[-1].posted + 1000
    hosts, copies = [], {m.n: set() for m in truth}
    for h in range(count):
        host = Host(f"host{h:02d}", skew=rng.uniform(-300, 300), delay=rng.uniform(0.05, 0.5))
        off_from = rng.uniform(T0, end)
        off_until = off_from + rng.choice((0, 0, 600, 3600, 20000))
        online = lambda t, a=off_from, b=off_until: not a <= t < b  # noqa: E731
        outage_from = rng.uniform(T0, end)
        host.outage = (outage_from, outage_from + rng.choice((60, 900, 5000)))
        reads: list[tuple[float, int, str, TrueMessage]] = []
        for m in truth:
            if rng.random() < miss:
                continue
            first = m.posted + 0.5 if online(m.posted) else off_until
            reads.append((first, 0, "live" if online(m.posted) else "backfill", m))
            for when, _body in m.edits:
                if when > first and online(when):
                    reads.append((when + 0.5, 1, "edit", m))
                elif when > first and not online(when) and when < off_until:
                    reads.append((off_until, 2, "backfill", m))
            if rng.random() < 0.3:
                reads.append((first + rng.uniform(0.1, 5), 3, "status", m))
        local_ids: dict[int, str] = {}
        for at, _kind_order, kind, m in sorted(reads, key=lambda r: (r[0], r[1], r[3].n)):
            local_id = local_ids.setdefault(m.n, str(1000 + 3 * len(local_ids)))
            copies[m.n].add((host.name, local_id))
            edits_before = [e for e in m.edits if e[0] < at]
            if kind == "status":
                host.status(local_id, "READ", at=at)
                continue
            if kind == "edit":
                edited, body = next(e for e in m.edits if e[0] + 0.5 == at)
                host.edit(local_id, edited=edited, body=body, editor=m.author, at=at)
                continue
            edited, body = edits_before[-1] if edits_before else (None, m.body)
            host.read(
                local_id,
                posted=m.posted,
                body=body,
                at=at,
                author=m.author,
                chat=m.chat,
                edited=edited,
                edited_by=m.author if edited is not None else "",
                reason="notification" if kind == "live" else "backfill",
            )
        # Hosts live on after the scenario: one live read gives even a host whose whole
        # story so far was spooled its clock evidence (messages before it are re-corrected).
        last_capture = max((r[0] for r in reads), default=T0)
        line = f"CHAT {CHAT} ACTIVITY_TIMESTAMP {host.stamp(last_capture)}"
        host.event(CHAT, [line], at=max(last_capture, host.outage[1]) + 10, obj="CHAT")
        hosts.append(host)
    return hosts, copies


def process(records: list[Record]) -> Engine:
    engine = Engine()
    for event, broker_utc in records:
        assert isinstance(engine.apply(event, broker_utc), Applied)
    return engine


def state(engine: Engine):
    return (engine.canonical_messages(), engine.clocks, engine.host_messages)


def assert_matches_truth(engine: Engine, copies: dict[int, set[tuple[str, str]]]) -> None:
    found = sorted(
        sorted((o.host, o.local_id) for o in m.observations) for m in engine.canonical_messages()
    )
    expected = sorted(sorted(c) for c in copies.values() if c)
    assert found == expected


@st.composite
def scenarios(draw, max_hosts: int = 4, max_messages: int = 14):
    rng = draw(st.randoms(use_true_random=False))
    truth = make_truth(rng, draw(st.integers(1, max_messages)))
    hosts, copies = make_hosts(rng, truth, draw(st.integers(1, max_hosts)), miss=0.0)
    labels = [i for i, h in enumerate(hosts) for _ in h.records]
    order = draw(st.permutations(labels))
    return hosts, copies, order


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_any_interleaving_gives_the_same_ids_and_contents(scenario) -> None:
    hosts, copies, order = scenario
    one_by_one = process([r for h in hosts for r in h.records])
    shuffled = process(interleave(hosts, order))
    assert state(shuffled) == state(one_by_one)
    assert_matches_truth(one_by_one, copies)


def assert_one_copy_per_host(engine: Engine) -> None:
    seen = [(o.host, o.local_id) for m in engine.canonical_messages() for o in m.observations]
    assert len(seen) == len(set(seen)) == len(engine.host_messages)
    for m in engine.canonical_messages():
        assert len({o.host for o in m.observations}) == len(m.observations)


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.data())
def test_interleavings_agree_even_when_hosts_miss_messages(rng, data) -> None:
    truth = make_truth(rng, 12)
    hosts, _copies = make_hosts(rng, truth, 3, miss=0.3)
    labels = [i for i, h in enumerate(hosts) for _ in h.records]
    order = data.draw(st.permutations(labels))
    shuffled = process(interleave(hosts, order))
    assert state(shuffled) == state(process([r for h in reversed(hosts) for r in h.records]))
    assert_one_copy_per_host(shuffled)


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False), st.data())
def test_redelivered_records_change_nothing(rng, data) -> None:
    truth = make_truth(rng, 10)
    hosts, _copies = make_hosts(rng, truth, 2, miss=0.1)
    once = process([r for h in hosts for r in h.records])
    # A consumer that crashed re-reads a stretch of one host's partition.
    records = hosts[0].records
    end = data.draw(st.integers(1, len(records)))
    start = data.draw(st.integers(0, end - 1))
    again = records[:end] + records[start:end] + records[end:]
    assert state(process(again + hosts[1].records)) == state(once)


def test_many_hosts_generated_scenario() -> None:
    rng = random.Random(20260601)
    truth = make_truth(rng, 36)
    hosts, copies = make_hosts(rng, truth, 8, miss=0.0)
    reference = process([r for h in hosts for r in h.records])
    assert_matches_truth(reference, copies)
    assert sum(len(m.edits) > 0 for m in truth) > 5
    for trial in range(2):
        labels = [i for i, h in enumerate(hosts) for _ in h.records]
        random.Random(trial).shuffle(labels)
        assert state(process(interleave(hosts, labels))) == state(reference)
