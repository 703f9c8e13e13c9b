"""A host's clock stepped mid-conversation (issue 17), on the pure Engine.

The events come from the emulator's own World playing a scenario with a `clock` action, so
Skype's TIMESTAMPs are the ones the emulator stamps; each host's agent reads every message
half a second after it was posted with the host's clock as it is then, and its broker
appends the event a little later (true time). Three hosts see the same chat, so each true
message must come out as one canonical message holding all three copies, the stepped
host's included, on both sides of the step; and the stepped host's estimate must show the
step at the event that first saw it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatchannels.emulator.scenario import Scenario, scenario_from_dict
from chatchannels.emulator.truth import ground_truth
from chatchannels.emulator.world import World
from chatchannels.processors.clocks import STEP_S
from chatchannels.processors.engine import Engine
from tests.support.processor_events import Host, Record

START = 1_700_000_000
CHAT = "#alice/$3c1d5e7f9a0b2c4d"
# id, user, skew: the demo's three desktops.
HOSTS = (("alice-pc", "alice", 0.0), ("bob-laptop", "bob", 47.0), ("cecil-pc", "cecil", -83.0))
STEPPED = "bob-laptop"
AUTHORS = ("alice", "bob", "cecil")
# Repeated texts, so that a copy moved by the step could pair with the wrong occurrence.
BODIES = ("ok", "lunch?", "ok", "+1", "see you at 3", "ok")
READ_AFTER_S = 0.5
# How far a copy's corrected time may lie from the truth: Skype's whole seconds, the
# estimate's REFRESH_S and the capture-to-append delay.
CLOSE_S = 2.5


def conversation(
    step_s: float, step_after: int, messages: int = 12, gap_s: float = 7.0, host: str = STEPPED
) -> Scenario:
    """`messages` posts `gap_s` apart in one chat of three hosts; `host`'s clock is stepped
    by `step_s` half-way between post `step_after - 1` and post `step_after`."""
    timeline: list[dict] = []
    for n in range(messages):
        if n == step_after:
            timeline.append(
                {"at": (n - 0.5) * gap_s, "op": "clock", "host": host, "step_s": step_s}
            )
        timeline.append(
            {
                "at": n * gap_s,
                "op": "post",
                "chat": CHAT,
                "author": AUTHORS[n % len(AUTHORS)],
                "body": BODIES[n % len(BODIES)],
                "msg": f"m{n}",
            }
        )
    return scenario_from_dict(
        {
            "format": "chatchannels.scenario.v1",
            "start": START,
            "users": [{"handle": u, "fullname": u.title()} for _, u, _ in HOSTS],
            "hosts": [{"id": h, "user": u, "skew_s": s} for h, u, s in HOSTS],
            "chats": [{"name": CHAT, "members": [u for _, u, _ in HOSTS]}],
            "timeline": timeline,
        },
        "clock-step conversation",
    )


@dataclass
class Played:
    records: dict[str, list[Record]]
    # (host, local id) -> scenario message id
    copies: dict[tuple[str, str], str]


def play(scenario: Scenario, delay_s: float = 0.2) -> Played:
    """Each host's events as its agent would capture them from the emulated Skype."""
    world = World(scenario)
    agents = {h.id: Host(h.id, skew=h.skew_s, delay=delay_s) for h in scenario.hosts}
    copies: dict[tuple[str, str], str] = {}
    for action in scenario.actions():
        world.apply(action)
        if action.op != "post":
            continue
        for host_id, state in world.hosts.items():
            local = state.local_ids.get(action.message_id)
            if local is None:
                continue
            msg = state.messages[local]
            agent = agents[host_id]
            # The agent reads the host's clock, which the step moved as it moved Skype's.
            agent.skew = state.skew_s
            p = f"CHATMESSAGE {local} "
            lines = [
                p + f"TIMESTAMP {msg.timestamp}",
                p + f"FROM_HANDLE {msg.author}",
                p + f"FROM_DISPNAME {msg.dispname}",
                p + f"TYPE {msg.type}",
                p + f"STATUS {msg.status}",
                p + f"CHATNAME {msg.chat}",
                p + "EDITED_TIMESTAMP 0",
                p + "EDITED_BY ",
                p + f"BODY {msg.body}",
            ]
            agent.event(
                str(local), lines, at=world.now + READ_AFTER_S, trigger=p + f"STATUS {msg.status}"
            )
            copies[(host_id, str(local))] = action.message_id
    return Played({h: a.records for h, a in agents.items()}, copies)


def run(played: Played, rng: random.Random | None = None) -> tuple[Engine, list[tuple]]:
    """The Engine after every event, hosts interleaved at random (each in its own order) or
    in broker order; and the stepped host's estimate after each of its events."""
    queues = {h: list(r) for h, r in played.records.items()}
    engine, history = Engine(), []
    while any(queues.values()):
        ready = sorted(h for h, q in queues.items() if q)
        host = min(ready, key=lambda h: queues[h][0][1]) if rng is None else rng.choice(ready)
        event, appended = queues[host].pop(0)
        applied = engine.apply(event, appended)
        if host == STEPPED:
            clock = applied.clock
            history.append((clock.last_seq, clock.skew_s, clock.steps))
    return engine, history


def assert_one_message_per_true_message(scenario: Scenario, engine: Engine, played: Played):
    truth = {t.msg: t for t in ground_truth(scenario)}
    canonical = engine.canonical_messages()
    made_of = [{played.copies[(o.host, o.local_id)] for o in m.observations} for m in canonical]
    split = [ids for ids in made_of if len(ids) != 1]
    assert not split, f"canonical messages mixing true messages: {split}"
    assert sorted(i for ids in made_of for i in ids) == sorted(truth), (
        "a true message is split in two, or missing"
    )
    for message, (msg,) in zip(canonical, made_of, strict=True):
        t = truth[msg]
        assert sorted(o.host for o in message.observations) == sorted(t.hosts), msg
        assert message.body == t.body, msg
        assert abs(message.utc - t.posted_at) <= CLOSE_S, (msg, message.utc - t.posted_at)
        for o in message.observations:
            # Every copy, the stepped host's too, on either side of the step, is put at the
            # time it was posted: a step applies from where it happened, not before.
            assert abs(o.utc - t.posted_at) <= CLOSE_S, (msg, o.host, o.utc - t.posted_at)


def assert_history_shows_the_step(history: list[tuple], step_s: float, step_after: int):
    skew = {h: s for h, _, s in HOSTS}[STEPPED]
    # The stepped host reads each message once: its seq n is message n - 1.
    before = [s for seq, s, _ in history if seq <= step_after]
    after = [(s, steps) for seq, s, steps in history if seq > step_after]
    assert before and after
    assert all(abs(s - skew) <= CLOSE_S for s in before), before
    assert all(abs(s - (skew + step_s)) <= CLOSE_S for s, _ in after), after
    # A new epoch from the first event after the step: what came before keeps its time.
    assert {steps for _, steps in after} == {1}, after
    assert {steps for seq, _, steps in history if seq <= step_after} == {0}


@pytest.mark.parametrize("step_s", [-60.0, 90.0])
def test_step_in_mid_conversation_splits_no_message(step_s):
    scenario = conversation(step_s, step_after=6)
    assert scenario.skew_at(STEPPED, START + 100) == 47.0 + step_s
    played = play(scenario)
    engine, history = run(played)
    assert_one_message_per_true_message(scenario, engine, played)
    assert_history_shows_the_step(history, step_s, step_after=6)
    clock = engine.clocks[STEPPED]
    assert (clock.steps, round(clock.skew_s)) == (1, 47 + step_s)
    for other in ("alice-pc", "cecil-pc"):
        assert engine.clocks[other].steps == 0


# What the estimator promises (processors/clocks.py): a jump forward is a step once two live
# events made the envelope tight, so from the host's second event on; a jump back is one at
# once when the host's clock is seen running backwards by more than STEP_S from one event to
# the next, so when the jump exceeds STEP_S plus the time between two events.
@settings(max_examples=60, deadline=None)
@given(
    jump_s=st.integers(int(STEP_S) + 2, int(4 * STEP_S)),
    forward=st.booleans(),
    step_after=st.integers(2, 11),
    gap_s=st.sampled_from([3.0, 7.0, 20.0]),
    order=st.randoms(use_true_random=False),
)
def test_any_step_beyond_step_s_at_any_point_splits_no_message(
    jump_s, forward, step_after, gap_s, order
):
    step_s = float(jump_s) if forward else -(jump_s + gap_s)
    scenario = conversation(step_s, step_after, gap_s=gap_s)
    played = play(scenario)
    engine, history = run(played, order)
    assert_one_message_per_true_message(scenario, engine, played)
    assert_history_shows_the_step(history, step_s, step_after)
