"""One conversation seen three ways, every copy once (issue 16, Tests).

The group `#cecil/$bob;4d8cc9965791c6b9` of the bundled scenario small.json as Alice's
desktop shows it live (the emulator and the real agent, allow-listed to that chat), as Bob's
Skype classic main.db holds it and as Cecil's official export holds it (both generated from
the scenario's ground truth: tests/support/history_from_truth.py), all in one fresh topic, processed
by the real processor into a fresh store. Every message of the chat is there once; its
copies come from exactly the hosts that held it (alice-pc, the main.db's file host, the
export's file host), one copy per host; edits are revisions, the deletion a tombstone, and
"same text" posted three times by Bob stays three. The bodies typed with `<`, `>`, `&` and
quotes (plain text live, Skype XML with entities in both files) are the ones that must still
match.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import pytest

from chatchannels.emulator.background import BackgroundEmulator
from chatchannels.emulator.scenario import bundled_scenario, load_scenario
from chatchannels.emulator.truth import TruthMessage, ground_truth
from chatchannels.event_signing import IMPORTER
from chatchannels.ingest.importers.detect import EXPORT_TAR, MAINDB, Importable, sniff
from chatchannels.ingest.importers.job import FileReport, Target, import_file
from chatchannels.kafka_auth import login
from chatchannels.processors.pg.completeness import read_completeness
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.replay.archive import ArchivedMessage, read_archive
from chatchannels.processors.richtext import SKYPE_XML, body_text
from chatchannels.signing_secrets import importer_signer
from tests.support.agent_runs import (
    AgentProcess,
    TopicReader,
    missing_messages,
    observed_messages,
    wait_for,
)
from tests.support.history_from_truth import export_document, held_by, write_maindb
from tests.support.processor_harness import (
    dump_tables,
    engine_over,
    process_once,
    read_records,
    stored_messages,
)
from tests.support.skype_files import write_export_tar

pytestmark = pytest.mark.integration

GROUP = "#cecil/$bob;4d8cc9965791c6b9"
LIVE = "alice-pc"
# Bob's copies of a few messages are a second or two off, as real main.db copies are.
MAINDB_SKEWS = {"multiline": 1, "hostile": 1, "twice-3": 1, "dave-hello": 2}
# How far a canonical time may be from the true posting time: the live host's clock is
# estimated from broker times, the files' copies are up to 2 s off.
TIME_TOLERANCE_S = 3.0


def truth_view(chat: list[TruthMessage], now: float) -> Counter:
    """(author, body) of every message of the chat as it stood at true time `now`."""
    view: Counter = Counter()
    for m in chat:
        if m.posted_at <= now:
            bodies = [m.body, *(r.body for r in m.revisions if r.at <= now)]
            view[(m.author.lower(), bodies[-1])] += 1
    return view


def live_view(events: list[dict]) -> Counter:
    """(author, body) of every message of the group as alice-pc's events last showed it."""
    return Counter(
        (p.get("FROM_HANDLE", "").lower(), p.get("BODY"))
        for p in observed_messages(events, LIVE).values()
        if p.get("CHATNAME") == GROUP
    )


def capture_live(scenario, chat: list[TruthMessage], tmp_path: Path, stack, topic: str, bus):
    """Play the scenario with alice-pc's agent capturing GROUP into `topic`, one action at a
    time: after each, until the topic shows every message of the group as it then stood (so
    the original of an edited or deleted message was captured before its edit)."""
    emu = BackgroundEmulator(scenario, {LIVE: bus.address})
    agent = AgentProcess(
        tmp_path / "alice",
        LIVE,
        bus.address,
        stack,
        topic,
        chats=[GROUP],
        reattach_max_backoff_s=1.0,
        clock_offset_s=scenario.host(LIVE).skew_s,
    )
    reader = TopicReader(stack, topic)
    try:
        agent.start()
        wait_for(
            "alice-pc's agent to attach",
            lambda: agent.status().get("attach_state") == "attached",
            lambda: (agent.status(), agent.log_tail()),
            60,
        )
        for action in scenario.actions():
            emu.step(1)
            want = truth_view(chat, scenario.start + action.at)
            wait_for(
                f"the group as it stood after timeline[{action.index}] ({action.op}) "
                "in alice-pc's events",
                lambda want=want: not want - live_view(reader.poll()),
                lambda want=want: (want - live_view(reader.events), agent.log_tail()),
                60,
            )
        assert emu.finished
        wait_for(
            "every message alice-pc holds in the group, with its final body, in the topic",
            lambda: not missing_messages(scenario, reader.poll(), LIVE, {GROUP}),
            lambda: (missing_messages(scenario, reader.events, LIVE, {GROUP}), agent.log_tail()),
            60,
        )
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.stop()
        emu.close()
        reader.close()


def import_into(path: Path, kind: str, target: Target) -> FileReport:
    found = sniff(path)
    assert isinstance(found, Importable) and found.kind == kind, found
    report = import_file(found, target, session=uuid.uuid4().hex)
    assert not report.errors and report.pending == 0, report.as_json()
    assert report.host == f"file-{report.sha256[:16]}"
    return report


def originals(m: ArchivedMessage) -> list[str]:
    return [
        body_text(r.body_markup, SKYPE_XML)
        for r in m.revisions
        if r.edited_utc is None and not r.deleted
    ]


def pair(
    expected: list[TruthMessage], archive: list[ArchivedMessage]
) -> list[tuple[TruthMessage, ArchivedMessage]]:
    """Truth and archive paired by author, type and original text, in posting order; the
    counts of each key must agree (the same text posted three times is three)."""
    wanted: dict[tuple, list[TruthMessage]] = defaultdict(list)
    for t in expected:
        wanted[(t.author.lower(), t.type or "SAID", t.body)].append(t)
    have: dict[tuple, list[ArchivedMessage]] = defaultdict(list)
    for m in archive:
        texts = originals(m) or [body_text(m.body_markup, SKYPE_XML)]
        have[(m.author.lower(), m.type, texts[0])].append(m)
    counts = {
        key: (len(wanted.get(key, ())), len(have.get(key, ()))) for key in set(wanted) | set(have)
    }
    assert all(a == b for a, b in counts.values()), {
        f"{k[0]} {k[1]} {k[2][:50]!r}": f"{a} expected, {b} archived"
        for k, (a, b) in counts.items()
        if a != b
    }
    return [
        (t, m)
        for key, truths in wanted.items()
        for t, m in zip(
            sorted(truths, key=lambda t: t.posted_at),
            sorted(have[key], key=lambda m: (m.posted_utc, m.id)),
            strict=True,
        )
    ]


def test_one_conversation_live_in_a_maindb_and_in_an_export_every_copy_once(
    tmp_path, stack, kafka_topic, pg_dsn, dbus_bus
) -> None:
    scenario = load_scenario(bundled_scenario("small.json"))
    truth = ground_truth(scenario)
    chat = [m for m in truth if m.chat == GROUP]
    bobs = held_by(truth, "bob-laptop", GROUP)
    cecils = held_by(truth, "cecil-pc", GROUP)
    # The chat is worth the test: edits, a deletion, repeats, system events, hostile text.
    assert sum(m.body == "same text" for m in chat) == 3
    assert any(m.deleted for m in chat) and any(m.revisions and not m.deleted for m in chat)
    assert {"SETTOPIC", "ADDEDMEMBERS", "LEFT", "EMOTED"} <= {m.type for m in chat}
    assert any("<script>" in m.body for m in chat) and any("&" in m.body for m in chat)

    maindb = write_maindb(tmp_path / "bob-main.db", scenario, bobs, "bob", MAINDB_SKEWS)
    document = export_document(scenario, cecils, "cecil")
    export = write_export_tar(tmp_path / "cecil-export.tar", document, media=False)
    # The export holds what makes folding its copies hard: the server's copy of the edited
    # message (same original ms, an id of its own) and quotes as entities.
    entries = document["conversations"][0]["MessageList"]
    assert sum((e["properties"] or {}).get("isserversidegenerated") == "True" for e in entries) == 1
    assert any("&apos;" in e["content"] for e in entries)
    assert sum(e["content"] == "same text" for e in entries) == 2  # the first one deleted

    capture_live(scenario, chat, tmp_path, stack, kafka_topic, dbus_bus)
    target = Target(
        spool_dir=tmp_path / "spool",
        media_root=tmp_path / "media",
        bootstrap=stack.kafka_bootstrap,
        topic=kafka_topic,
        signer=importer_signer(stack),
        kafka_options=login(stack, IMPORTER).client_options(),
    )
    bob_host = import_into(maindb, MAINDB, target).host
    cecil_host = import_into(export, EXPORT_TAR, target).host

    migrate(pg_dsn)
    settings = stack.replace(topic=kafka_topic, dsn=pg_dsn)
    summary = process_once(settings, kafka_topic)
    assert summary.dead_letters == 0, summary
    # Imported files are hosts with sequences of their own, complete too.
    with psycopg.connect(pg_dsn) as conn:
        found = read_completeness(conn, time.time(), settings.silent_after_s)
    assert found.complete, found.gaps
    sources = {r.host: r.source for r in found.runs}
    assert (sources[bob_host], sources[cecil_host]) == ("skype-maindb", "skype-export")
    assert sources[LIVE] == "skype-api"

    archive = list(read_archive(pg_dsn))
    assert {m.chat for m in archive} == {GROUP}, sorted({m.chat for m in archive})
    assert len(archive) == len(chat), [
        (m.author, m.type, m.body_markup[:40], m.hosts) for m in archive
    ]

    # Who held what: every truth host's desktop holds every message of this chat; an emote
    # has no export form, so Cecil's export lacks it.
    hosts_of = {LIVE: LIVE, "bob-laptop": bob_host, "cecil-pc": cecil_host}
    expected = [
        dataclasses.replace(
            t,
            hosts=tuple(
                sorted(hosts_of[h] for h in t.hosts if not (h == "cecil-pc" and t.type == "EMOTED"))
            ),
        )
        for t in chat
    ]
    problems = []
    for t, m in pair(expected, archive):
        where = f"{t.msg} ({t.author} {t.type or 'SAID'} {t.body[:30]!r})"
        copies = [(c.host, c.local_id) for c in m.copies]
        if m.hosts != t.hosts or len(copies) != len(t.hosts):
            problems.append(f"{where}: copies {copies}, expected one from each of {t.hosts}")
        if abs(m.posted_utc - t.posted_at) > TIME_TOLERANCE_S:
            problems.append(f"{where}: posted {m.posted_utc - t.posted_at:+.1f} s from truth")
        if m.deleted != t.deleted:
            problems.append(f"{where}: deleted={m.deleted}, truth {t.deleted}")
        elif not t.deleted and body_text(m.body_markup, SKYPE_XML) != t.final_body:
            problems.append(f"{where}: body {m.body_markup!r}, truth {t.final_body!r}")
        bodies = ["" if r.deleted else body_text(r.body_markup, SKYPE_XML) for r in m.revisions]
        if bodies != [t.body, *(r.body for r in t.revisions)]:
            problems.append(f"{where}: revisions {bodies}, truth {t.body!r} then {t.revisions}")
        if t.deleted and not m.revisions[-1].deleted:
            problems.append(f"{where}: the deletion is not a tombstone: {m.revisions}")
    assert not problems, "\n".join(problems)

    # The store is what the in-memory Engine makes of the same records.
    engine = engine_over(read_records(settings, kafka_topic), settings.match_tolerance_s)
    assert stored_messages(pg_dsn) == engine.canonical_messages()

    # The same two files imported again from another machine (a fresh spool: new sessions,
    # the files' hosts again): nothing new.
    before = dump_tables(pg_dsn, ("messages", "revisions", "observations"))
    again = dataclasses.replace(target, spool_dir=tmp_path / "spool-again")
    reports = [import_into(maindb, MAINDB, again), import_into(export, EXPORT_TAR, again)]
    assert [r.host for r in reports] == [bob_host, cecil_host]
    second = process_once(settings, kafka_topic)
    # Besides the messages: Bob's Conversations and Chats rows, Cecil's conversation record.
    records = len(bobs) + len(entries) + 3
    assert second.records == sum(r.spooled for r in reports) == records
    assert second.dead_letters == 0 and second.changes == 0, second
    assert dump_tables(pg_dsn, ("messages", "revisions", "observations")) == before
