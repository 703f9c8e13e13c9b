"""A desktop's clock stepped back 60 s, then forward 90 s, in mid-conversation (issue 17),
through the real pipeline: the emulator on three dbus-daemons, a real agent per desktop,
Kafka, the processor, PostgreSQL. Every message is one canonical message with all three
desktops' copies, each copy at its true time, and host_clocks shows both steps.

The agent reads the machine's clock plus its configured offset, so a stepped desktop's agent
is restarted with the stepped offset at the step (the emulated Skype's clock steps in the
emulator): its clock moves as Skype's does, as a real desktop's agent's would.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import psycopg
import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.scenario import scenario_from_dict
from chatchannels.emulator.truth import ground_truth
from chatchannels.settings import settings_env
from chatchannels.stack.dbus import session_bus
from chatchannels.stack.processes import die_with_parent
from tests.support.agent_runs import (
    AgentProcess,
    TopicReader,
    missing_messages,
    observed_messages,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHAT = "#alice/$3c1d5e7f9a0b2c4d"
HOSTS = (("alice-pc", "alice", 0.0), ("bob-laptop", "bob", 47.0), ("cecil-pc", "cecil", -83.0))
STEPPED = "bob-laptop"
STEPS = (-60.0, 90.0)
PER_SEGMENT = 3
# Wall time between posts: the estimator takes a jump forward as a step once two of the
# host's live events, more than its jitter (2 s) apart, made its envelope tight.
PACE_S = 3.2
# Skype's whole seconds, the estimate's second, the capture-to-append delay.
CLOSE_S = 3.0


def scenario_doc(start: int) -> dict:
    timeline, n = [], 0
    for segment in range(len(STEPS) + 1):
        if segment:
            timeline.append(
                {"at": n * 10 - 5, "op": "clock", "host": STEPPED, "step_s": STEPS[segment - 1]}
            )
        for _ in range(PER_SEGMENT):
            author = HOSTS[n % 3][1]
            timeline.append(
                {"at": n * 10, "op": "post", "chat": CHAT, "author": author, "body": f"m{n}"}
            )
            n += 1
    return {
        "format": "chatchannels.scenario.v1",
        "start": start,
        "users": [{"handle": u, "fullname": u.title()} for _, u, _ in HOSTS],
        "hosts": [{"id": h, "user": u, "skew_s": s} for h, u, s in HOSTS],
        "chats": [{"name": CHAT, "members": [u for _, u, _ in HOSTS]}],
        "timeline": timeline,
    }


def cli(settings, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatchannels.cli", *args],
        env={**_clean_env(), **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=die_with_parent,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr[-3000:])


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CHATCHANNELS_")}


def test_steps_back_and_forward_split_no_message(tmp_path, stack, kafka_topic, pg_dsn):
    # Ten minutes ago, so that the posts' true times lie in the past as a real chat's do.
    scenario = scenario_from_dict(scenario_doc(int(time.time()) - 600), "clock steps")
    truth = ground_truth(scenario)
    with contextlib.ExitStack() as buses:
        addresses = {
            h: buses.enter_context(session_bus(tmp_path / f"dbus-{h}")).address for h, _, _ in HOSTS
        }
        play_and_deliver(tmp_path, stack, kafka_topic, scenario, addresses)
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    cli(settings, "db", "migrate")
    cli(settings, "process", "--once")
    with psycopg.connect(pg_dsn) as conn:
        messages = conn.execute(
            "SELECT m.body, extract(epoch FROM m.posted_utc)::float8,"
            " array_agg(o.host ORDER BY o.host),"
            " array_agg(extract(epoch FROM o.corrected_utc)::float8 ORDER BY o.host)"
            " FROM messages m JOIN observations o ON o.message_id = m.id"
            " GROUP BY m.id, m.body, m.posted_utc ORDER BY m.posted_utc"
        ).fetchall()
        history = conn.execute(
            "SELECT offset_s, steps FROM host_clocks WHERE host = %s ORDER BY seq", (STEPPED,)
        ).fetchall()
    # One canonical message per true message, each with the three desktops' copies.
    assert sorted(body for body, *_ in messages) == sorted(t.body for t in truth), messages
    posted_at = {t.body: t.posted_at for t in truth}
    for body, utc, hosts, corrected in messages:
        assert hosts == sorted(h for h, _, _ in HOSTS), (body, hosts)
        assert abs(utc - posted_at[body]) <= CLOSE_S, (body, utc - posted_at[body])
        for host, when in zip(hosts, corrected, strict=True):
            assert abs(when - posted_at[body]) <= CLOSE_S, (body, host, when - posted_at[body])
    # The offset history: +47 s, then -13 s from the step back, then +77 s from the step
    # forward, each step a new epoch.
    expected = [(47.0, 0), (47.0 + STEPS[0], 1), (47.0 + sum(STEPS), 2)]
    seen = [(offset, steps) for offset, steps in history]
    for skew, steps in expected:
        assert any(abs(o - skew) <= CLOSE_S and s == steps for o, s in seen), (skew, seen)
    assert [s for _, s in seen] == sorted(s for _, s in seen), seen


def play_and_deliver(tmp_path, stack, kafka_topic, scenario, addresses) -> None:
    """Play the timeline on the emulator with an agent per desktop, a post at a time, until
    every desktop's copy of every message is in Kafka; every process is stopped after."""
    emu = BackgroundEmulator(scenario, addresses)
    reader = TopicReader(stack, kafka_topic)
    agents: dict[str, AgentProcess] = {}

    def start_agent(host: str, offset: float) -> None:
        agent = AgentProcess(
            tmp_path / host,
            host,
            addresses[host],
            stack,
            kafka_topic,
            chats=[CHAT],
            clock_offset_s=offset,
            reattach_max_backoff_s=1.0,
        )
        agent.starts = agents[host].starts if host in agents else 0
        agents[host] = agent
        agent.start()
        wait_for(
            f"{host}'s agent to attach",
            lambda: agent.status().get("attach_state") == "attached",
            lambda: (agent.status(), agent.log_tail()),
            60,
        )

    def wait_read(count: int) -> None:
        for host in addresses:
            wait_for(
                f"{host}'s agent to read {count} messages",
                lambda h=host: (
                    sum("BODY" in p for p in observed_messages(reader.poll(), h).values()) >= count
                ),
                lambda h=host: (observed_messages(reader.events, h), agents[h].log_tail()),
                60,
            )

    try:
        for host, _, skew in HOSTS:
            start_agent(host, skew)
        posted, remaining = 0, emu.step(0)
        while remaining:
            before = emu.status(STEPPED)["skew_s"]
            remaining = emu.step(1)
            after = emu.status(STEPPED)
            if after["skew_s"] != before:
                # A clock step: the agent's clock follows Skype's from now on.
                assert after["host_clock"] == int(after["true_time"] + after["skew_s"])
                assert agents[STEPPED].terminate() == 0
                start_agent(STEPPED, after["skew_s"])
            else:
                posted += 1
                wait_read(posted)
                time.sleep(PACE_S)
        wait_for(
            "every desktop's copy of every message in Kafka",
            lambda: (
                not any(missing_messages(scenario, reader.poll(), h, {CHAT}) for h in addresses)
            ),
            lambda: [missing_messages(scenario, reader.events, h, {CHAT}) for h in addresses],
            60,
        )
        for agent in agents.values():
            assert agent.terminate() == 0
    finally:
        for agent in agents.values():
            agent.stop()
        emu.close()
        reader.close()
