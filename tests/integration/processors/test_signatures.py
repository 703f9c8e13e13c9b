"""A desktop writing in another desktop's name, on the real Kafka and PostgreSQL: bob-pc's
desktop holds its own password file and tries every way to get events into alice-pc's name
(chatchannels/event_signing.py). Each is a dead letter of kind "signature", counted in the
processor's metrics and `stats --dead-letters`; nothing of them reaches the store, and a
redrive lets none in. Alice's and bob's own events are processed around them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.event_signing import SIGNATURE_HEADER, SIGNER_HEADER, Signer
from chatchannels.processors.consumer import ProcessOptions, run_processor
from chatchannels.processors.metrics import ProcessorMetrics
from chatchannels.processors.pg.migrate import migrate
from chatchannels.rawevents import encode_raw_event
from tests.support.processor_events import Host
from tests.support.processor_harness import (
    STABLE_TABLES,
    OutRecord,
    dump_tables,
    now_base,
    produce,
    produce_records,
    stored_messages,
)
from tests.support.signing import signer_for

pytestmark = pytest.mark.integration

FORGED = "FORGED by bob"


@pytest.fixture
def settings(stack, kafka_topic, pg_dsn):
    migrate(pg_dsn)
    return stack.replace(topic=kafka_topic, dsn=pg_dsn)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def outside_dead_letters(settings) -> dict:
    """Every table a processor writes but dead_letters, where refused records are kept."""
    tables = [t for t in STABLE_TABLES if t != "dead_letters"]
    return dump_tables(settings.postgres_dsn, tables)


def forgeries(settings, alice: Host, base: float) -> list[OutRecord]:
    """Records bob's desktop can make with what it holds: its own password file, and
    alice's genuine records read back from the topic (any writer could read them if the
    ACLs let it; here it sees what alice sent)."""
    bob = signer_for(settings, "bob-pc")

    def alice_says(local_id: str, body: str) -> bytes:
        alice.read(local_id, posted=base + 2, body=body, at=base + 2.5)
        return encode_raw_event(alice.records[-1][0])

    key = b"alice-pc"
    signed_as_bob = alice_says("90", FORGED + " (signed as bob)")
    claims_alice = alice_says("91", FORGED + " (claims to be alice)")
    unsigned = alice_says("92", FORGED + " (unsigned)")
    # Alice's genuine record, its body changed: her headers no longer fit.
    genuine = encode_raw_event(alice.records[0][0])
    tampered = genuine.replace(b"alice first", FORGED.encode() + b" (tampered)")
    alice_headers = signer_for(settings, "alice-pc").headers(key, genuine)
    # Only one header, or a made-up principal.
    half = alice_says("93", FORGED + " (half signed)")
    made_up = alice_says("94", FORGED + " (as processor)")
    return [
        OutRecord(key, signed_as_bob, bob.headers(key, signed_as_bob)),
        OutRecord(key, claims_alice, Signer("agent-alice-pc", bob.key).headers(key, claims_alice)),
        OutRecord(key, unsigned),
        OutRecord(key, tampered, alice_headers),
        OutRecord(key, half, [(SIGNER_HEADER, b"agent-alice-pc")]),
        OutRecord(
            key,
            made_up,
            [(SIGNER_HEADER, b"processor"), (SIGNATURE_HEADER, bob.headers(key, made_up)[1][1])],
        ),
    ]


def test_bob_cannot_write_alices_events(settings) -> None:
    base = now_base(5)
    alice, bob = Host("alice-pc", skew=3), Host("bob-pc", skew=-4)
    alice.read("10", posted=base, body="alice first", at=base + 0.1)
    bob.read("20", posted=base + 1, body="bob first", at=base + 1.1)
    # Their own events, signed by their own agents, around bob's attempts.
    produce(settings, settings.topic, [alice.records[0][0], bob.records[0][0]])
    attempts = forgeries(settings, alice, base)
    produce_records(settings, settings.topic, attempts)
    alice.read("11", posted=base + 3, body="alice second", at=base + 3.1)
    produce(settings, settings.topic, [alice.records[-1][0]])

    metrics = ProcessorMetrics()
    summary = run_processor(
        settings, ProcessOptions(topic=settings.topic, once=True), metrics=metrics
    )
    assert (summary.records, summary.dead_letters) == (3 + len(attempts), len(attempts))

    # Nothing of them in the store: not a message, not a host message, not a revision.
    assert sorted(m.body for m in stored_messages(settings.postgres_dsn)) == [
        "alice first",
        "alice second",
        "bob first",
    ]
    assert FORGED not in repr(outside_dead_letters(settings))
    with psycopg.connect(settings.postgres_dsn) as conn:
        dead = conn.execute(
            'SELECT kind, host, seq, reason FROM dead_letters ORDER BY partition, "offset"'
        ).fetchall()
        # Alice's series holds her seqs 1 and 7 only (2-6 were bob's attempts at her name):
        # the forged claims count for nothing, so the gap shows.
        runs = conn.execute(
            "SELECT first_seq, last_seq FROM seq_runs WHERE host = 'alice-pc' ORDER BY first_seq"
        ).fetchall()
    assert [(k, h, s) for k, h, s, _ in dead] == [("signature", None, None)] * len(attempts)
    reasons = "\n".join(r for *_, r in dead)
    assert "signed by 'agent-bob-pc', which may not write events of host 'alice-pc'" in reasons
    assert "the signature is not 'agent-alice-pc''s" in reasons
    assert "the record is not signed" in reasons
    assert "only one of the cc-signer, cc-sig headers" in reasons
    assert "the signature is not 'processor''s" in reasons
    assert runs == [(1, 1), (7, 7)]

    # Counted in the processor's metrics and shown by `stats --dead-letters`.
    counted = metrics.registry.get_sample_value(
        "chatchannels_processor_dead_letters_total", {"reason": "signature"}
    )
    assert counted == len(attempts)
    store = ["--dsn", settings.postgres_dsn]
    stats = json.loads(cli("stats", "--dead-letters", "--json", *store))
    assert [(k["kind"], k["total"]) for k in stats["kinds"]] == [("signature", len(attempts))]
    assert f"signature\t{len(attempts)} ({len(attempts)} pending)" in cli(
        "stats", "--dead-letters", *store
    )

    # A redrive checks the signatures again, with the headers they came with.
    assert f"redriven 0, still refused {len(attempts)}" in cli("deadletters", "redrive", *store)
    assert FORGED not in repr(outside_dead_letters(settings))


def test_events_from_before_signing_are_let_in_only_up_to_unsigned_until(settings) -> None:
    """An unsigned record appended before `unsigned_until` (the broker's time, not the
    writer's) is processed; one appended after it is refused."""
    base = now_base(2)
    old = Host("old-pc")
    old.read("1", posted=base, body="from before signing", at=base + 0.1)
    value = encode_raw_event(old.records[0][0])
    produce_records(settings, settings.topic, [OutRecord(b"old-pc", value)])
    long_ago = settings.replace(unsigned_until="2000-01-01T00:00:00Z")
    summary = run_processor(long_ago, ProcessOptions(topic=settings.topic, once=True))
    assert summary.dead_letters == 1
    assert stored_messages(settings.postgres_dsn) == []
    # The operator sets unsigned_until to when the agents began to sign (here: after the
    # record was appended), and a redrive takes in what came before.
    cutover = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    result = CliRunner().invoke(
        main,
        ["deadletters", "redrive", "--dsn", settings.postgres_dsn],
        env={"CHATCHANNELS_UNSIGNED_UNTIL": cutover},
        catch_exceptions=False,
    )
    assert "redriven 1, still refused 0" in result.output, result.output
    assert [m.body for m in stored_messages(settings.postgres_dsn)] == ["from before signing"]
