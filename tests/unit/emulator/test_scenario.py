"""Scenario format, ground truth, generator, and the handler's robustness against any input."""

from __future__ import annotations

import io
import itertools
import json
import random
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatchannels.emulator.bodies import LONG_BODY_CHARS, SAMPLES, long_body
from chatchannels.emulator.commands import invoke
from chatchannels.emulator.generate import write_scenario
from chatchannels.emulator.scenario import (
    ScenarioError,
    bundled_scenario,
    load_scenario,
    scenario_from_dict,
)
from chatchannels.emulator.truth import ground_truth
from chatchannels.emulator.world import World


def small():
    return load_scenario(bundled_scenario("small.json"))


def small_doc() -> dict:
    return json.loads(bundled_scenario("small.json").read_text(encoding="utf-8"))


def test_small_scenario_ground_truth():
    truth = {t.msg: t for t in ground_truth(small())}
    assert len(truth) == 19
    assert truth["hello"].final_body == "hi bob (edited)"
    assert truth["hello"].revisions[0].editor == "alice"
    assert truth["hello"].hosts == ("alice-pc", "bob-laptop")
    assert truth["twice-1"].deleted and not truth["twice-2"].deleted
    assert truth["twice-1"].body == truth["twice-2"].body == truth["twice-3"].body
    # cecil was offline for "away" but still holds it: Skype syncs history.
    assert "cecil-pc" in truth["away"].hosts
    # dave has no host; cecil's group gains and loses him without changing the host set.
    assert truth["dave-hello"].author == "dave"
    assert truth["topic"].type == "SETTOPIC" and truth["emote"].type == "EMOTED"
    assert truth["live"].hosts == ("alice-pc",)
    assert truth["hello"].posted_at == 1357987875
    json.dumps([t.to_json() for t in truth.values()])


def test_small_scenario_runs_and_every_host_holds_what_truth_says():
    scenario = small()
    world = World(scenario)
    for action in scenario.actions():
        world.apply(action)
    for t in ground_truth(scenario):
        holders = tuple(h for h, s in world.hosts.items() if t.msg in s.local_ids)
        assert sorted(holders) == sorted(t.hosts), t.msg
        for host_id in holders:
            host = world.hosts[host_id]
            msg = host.messages[host.local_ids[t.msg]]
            assert msg.body == t.final_body
            assert msg.timestamp == host.host.clock(t.posted_at)
    ids = [world.hosts[h].local_ids["markup"] for h in ("alice-pc", "bob-laptop")]
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "field format"),
        (lambda d: d["hosts"].append({"id": "alice-pc", "user": "zed"}), "host ids are not unique"),
        (lambda d: d["timeline"].append({"at": 1, "op": "post"}), r"timeline\[29\]"),
        (
            lambda d: d["timeline"].append({"at": 1, "op": "quit", "host": "x"}),
            "before the previous",
        ),
        (lambda d: d["timeline"].append({"at": 999, "op": "quit", "host": "x"}), "unknown host"),
        (lambda d: d["timeline"].append({"at": 999, "op": "fly"}), "field op"),
        (
            lambda d: d["timeline"].append(
                {"at": 999, "op": "delete", "msg": "hello", "body": "x"}
            ),
            r"timeline\[29\]",
        ),
    ],
)
def test_bad_scenarios_name_what_and_where(change, message):
    doc = small_doc()
    change(doc)
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(doc)


def test_semantic_errors_surface_in_truth_and_world():
    doc = small_doc()
    doc["timeline"].append(
        {"at": 999, "op": "post", "chat": doc["chats"][0]["name"], "author": "cecil", "body": "x"}
    )
    scenario = scenario_from_dict(doc)
    with pytest.raises(ScenarioError, match=r"timeline\[29\] \(post\): 'cecil' is not a member"):
        ground_truth(scenario)
    world = World(scenario)
    with pytest.raises(ScenarioError, match="not a member"):
        for action in scenario.actions():
            world.apply(action)


def test_generated_scenario_streams_valid_json_lines(tmp_path):
    path = tmp_path / "gen.jsonl"
    with path.open("w", encoding="utf-8") as f:
        lines = write_scenario(f, 1500, seed=11)
    again = io.StringIO()
    write_scenario(again, 1500, seed=11)
    assert again.getvalue() == path.read_text(encoding="utf-8")
    scenario = load_scenario(path)
    truth = ground_truth(scenario)
    assert len(truth) == 1500
    ops = {a.op for a in scenario.actions()}
    assert {"post", "edit", "delete", "join", "leave", "topic"} <= ops
    assert {"offline", "online"} <= ops or {"quit", "restart"} <= ops
    assert lines == sum(1 for _ in path.open()) == 1 + sum(1 for _ in scenario.actions())
    assert scenario.count_actions() == lines - 1
    world = World(scenario)
    for action in scenario.actions():
        world.apply(action)
    for t in truth[:200]:
        assert all(t.msg in world.hosts[h].local_ids for h in t.hosts)


def test_bad_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    with path.open("w") as f:
        write_scenario(f, 5, seed=1)
        f.write("{not json\n")
    scenario = load_scenario(path)
    with pytest.raises(ScenarioError, match=r"bad.jsonl:\d+: not JSON"):
        list(scenario.actions())


def test_long_bodies_and_samples_survive_the_api():
    world = World(small())
    invoke(world, "alice-pc", ":1.1", "NAME t")
    body = long_body(random.Random(3))
    assert len(body) == LONG_BODY_CHARS
    chat = "#cecil/$bob;4d8cc9965791c6b9"
    for n, text in enumerate((body, *SAMPLES)):
        assert "\x00" not in text
        world.post(chat, "bob", text, f"k{n}")
        mid = world.hosts["alice-pc"].local_ids[f"k{n}"]
        reply = invoke(world, "alice-pc", ":1.1", f"GET CHATMESSAGE {mid} BODY").reply
        assert reply == f"MESSAGE {mid} BODY {text}"


_words = st.sampled_from(
    [
        "GET",
        "SET",
        "ALTER",
        "SEARCH",
        "CHAT",
        "CHATMESSAGE",
        "CHATMEMBER",
        "MESSAGE",
        "USER",
        "NAME",
        "PROTOCOL",
        "PING",
        "BODY",
        "SEEN",
        "LEAVE",
        "SETTOPIC",
        "ADDMEMBERS",
        "CREATE",
        "CHATS",
        "FRIENDS",
        "TOPIC",
        "STATUS",
        "#7",
        "#cecil/$bob;4d8cc9965791c6b9",
        "287",
        "300",
        "19:x@thread.skype",
        "bob",
        "",
        " ",
        "\n",
    ]
)
_commands = st.one_of(
    st.text(),
    st.lists(st.one_of(_words, st.text(string.printable, max_size=5)), max_size=7).map(" ".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_commands, min_size=1, max_size=6))
def test_any_command_gets_a_reply_and_never_an_internal_error(commands):
    world = World(small())
    counter = itertools.count()
    for attached in (False, True):
        name = f":1.{next(counter)}"
        if attached:
            invoke(world, "alice-pc", name, "NAME fuzz")
            invoke(world, "alice-pc", name, "PROTOCOL 8")
        for command in commands:
            outcome = invoke(world, "alice-pc", name, command)
            assert outcome.reply
            assert "ERROR 9901" not in outcome.reply, command


def _with_clock_step(*actions: dict) -> dict:
    doc = small_doc()
    doc["timeline"] = [a for a in doc["timeline"] if a["at"] < 10] + list(actions)
    return doc


def test_clock_step_moves_every_later_timestamp_and_the_truths_clock():
    last = max(a["at"] for a in small_doc()["timeline"] if a["at"] < 10)
    chat = "#alice/$bob;a7ab206ec78060f1"
    scenario = scenario_from_dict(
        _with_clock_step(
            {
                "at": last + 1,
                "op": "post",
                "chat": chat,
                "author": "alice",
                "body": "before",
                "msg": "before",
            },
            {"at": last + 2, "op": "clock", "host": "bob-laptop", "step_s": -60},
            {"at": last + 2, "op": "post", "chat": chat, "author": "alice", "body": "after"},
            {"at": last + 3, "op": "edit", "msg": "before", "body": "before, edited"},
        )
    )
    world = World(scenario)
    for action in scenario.actions():
        world.apply(action)
    bob = world.hosts["bob-laptop"]
    skew = scenario.host("bob-laptop").skew_s
    assert bob.skew_s == skew - 60
    start = scenario.start
    assert scenario.skew_at("bob-laptop", start + last + 1.9) == skew
    assert scenario.skew_at("bob-laptop", start + last + 2) == skew - 60
    clock = scenario.host_clock("bob-laptop")
    for t in ground_truth(scenario):
        if "bob-laptop" in t.hosts:
            msg = bob.messages[bob.local_ids[t.msg]]
            assert msg.timestamp == clock(t.posted_at), t.msg
    by_body = {m.body: m for m in bob.messages.values()}
    assert by_body["after"].timestamp - by_body["before, edited"].timestamp == 1 - 60
    assert by_body["before, edited"].edited_timestamp == clock(start + last + 3)
    # The other hosts' clocks never moved.
    assert world.hosts["alice-pc"].skew_s == scenario.host("alice-pc").skew_s


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"op": "clock", "host": "bob-laptop"}, "step_s"),
        ({"op": "clock", "host": "bob-laptop", "step_s": 0}, "field step_s"),
        ({"op": "clock", "host": "bob-laptop", "step_s": "60"}, "field step_s"),
        ({"op": "clock", "step_s": 60}, "host"),
        ({"op": "clock", "host": "nobody-pc", "step_s": 60}, "unknown host 'nobody-pc'"),
        ({"op": "clock", "host": "bob-laptop", "step_s": 60, "on": True}, "on"),
        ({"op": "clock", "host": "bob-laptop", "step_s": float("nan")}, "step_s"),
    ],
)
def test_bad_clock_steps_name_what_and_where(action, message):
    with pytest.raises(ScenarioError, match=r"timeline\[\d+\].*" + message):
        scenario_from_dict(_with_clock_step({"at": 100, **action}))


def test_clock_step_at_the_time_of_an_earlier_action_is_refused():
    chat = "#alice/$bob;a7ab206ec78060f1"
    post = {"at": 100, "op": "post", "chat": chat, "author": "alice", "body": "same second"}
    step = {"at": 100, "op": "clock", "host": "bob-laptop", "step_s": 90}
    with pytest.raises(ScenarioError, match="clock step must come later"):
        scenario_from_dict(_with_clock_step(post, step))
    # Before the action at that time it is fine: the step counts from its `at` on.
    scenario_from_dict(_with_clock_step(step, post))
