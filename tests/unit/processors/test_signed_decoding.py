"""The decoder's signature step (processors/batch.py, decode_value with a Verifier): what a
refused record keeps of its claims, and what a signed one decodes to."""

from __future__ import annotations

from chatchannels.event_signing import IMPORTER, Signer, Verifier
from chatchannels.processors.batch import RawRecord, decode_record, decode_values
from chatchannels.processors.decode import DecodeError
from chatchannels.processors.metrics import host_progress
from chatchannels.rawevents import encode_raw_event
from chatchannels.secret_files import derived_password
from tests.support.processor_events import Host

MASTER = "master-of-this-test"
VERIFIER = Verifier(MASTER)


def signer(principal: str) -> Signer:
    return Signer.from_password(principal, derived_password(MASTER, principal))


def record(host_event: dict, by: str, key: bytes | None = None) -> RawRecord:
    value = encode_raw_event(host_event)
    key = host_event["host"].encode() if key is None else key
    return RawRecord("t", 0, 5, key, value, 1.0, tuple(signer(by).headers(key, value)))


def alice_event(host: str = "alice-pc") -> dict:
    h = Host(host)
    h.read("12", posted=1_700_000_000, body="hello")
    return h.records[0][0]


def test_a_signed_event_decodes_as_it_would_unchecked():
    signed = record(alice_event(), "agent-alice-pc")
    checked = decode_record(signed, VERIFIER)
    assert checked == decode_record(signed)
    assert checked.result.host == "alice-pc" and checked.position is not None


def test_another_desktops_event_is_refused_and_counts_for_no_host():
    forged = decode_record(record(alice_event(), "agent-bob-pc"), VERIFIER)
    assert isinstance(forged.result, DecodeError)
    assert forged.result.kind == "signature"
    assert "'agent-bob-pc'" in str(forged.result) and "'alice-pc'" in str(forged.result)
    # Its claims are not alice's: no host or seq for the dead letter, the metrics or the
    # completeness of alice's series.
    assert (forged.result.host, forged.result.seq, forged.position) == (None, None, None)
    assert host_progress([forged], {}) == {}


def test_an_unsigned_event_is_refused_before_it_is_parsed():
    unsigned = RawRecord("t", 0, 1, b"alice-pc", b"\xff not even JSON", 1.0)
    refused = decode_record(unsigned, VERIFIER).result
    assert isinstance(refused, DecodeError) and refused.kind == "signature"
    assert "not signed" in refused.reason


def test_a_signed_record_that_is_no_event_is_a_schema_dead_letter_as_before():
    value = b"\xff not JSON"
    garbage = RawRecord("t", 0, 1, b"g", value, 1.0, tuple(signer("agent-g").headers(b"g", value)))
    assert decode_record(garbage, VERIFIER).result.kind == "schema"


def test_file_hosts_are_written_by_the_importer_or_any_agent():
    event = alice_event(host="file-0123456789abcdef")
    for by in (IMPORTER, "agent-bob-pc"):
        assert not isinstance(decode_record(record(event, by), VERIFIER).result, DecodeError)
    refused = decode_record(record(event, "processor"), VERIFIER).result
    assert isinstance(refused, DecodeError) and refused.kind == "signature"


def test_the_worker_checks_each_value_with_its_own_headers():
    good = record(alice_event(), "agent-alice-pc")
    bad = record(alice_event(), "agent-bob-pc")
    records = [good, bad]
    signed = [(r.key, r.headers, r.broker_utc) for r in records]
    results, _ = decode_values([r.value for r in records], VERIFIER, signed)
    assert not isinstance(results[0][0], DecodeError)
    assert results[1][0].kind == "signature"
