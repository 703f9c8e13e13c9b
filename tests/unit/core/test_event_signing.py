"""Signing and checking raw records (chatchannels/event_signing.py), as a forger would try."""

from __future__ import annotations

import hmac
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.event_signing import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    RecordMac,
    SignatureRefused,
    Signer,
    Verifier,
    may_write,
)
from chatchannels.secret_files import derived_password

MASTER = "the-server-master-key"
VERIFIER = Verifier(MASTER)

hosts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=30)
record_keys = st.one_of(st.none(), st.binary(max_size=64))
values = st.binary(max_size=2000)


def signer_of(principal: str, master: str = MASTER) -> Signer:
    """The signer a principal's password file gives (its password derived from `master`)."""
    return Signer.from_password(principal, derived_password(master, principal))


@given(hosts, record_keys, values)
def test_a_record_signed_by_its_writer_is_let_in(host, key, value):
    headers = signer_of(f"agent-{host}").headers(key, value)
    signer = VERIFIER.signer(key, value, headers, broker_utc=1.0)
    assert signer == f"agent-{host}"
    VERIFIER.check_host(signer, host, 1)


@given(hosts, record_keys, values, st.data())
def test_any_change_to_a_signed_record_is_refused(host, key, value, data):
    headers = signer_of(f"agent-{host}").headers(key, value)
    what = data.draw(st.sampled_from(["value", "key", "signer", "signature"]))
    if what == "value":
        i = data.draw(st.integers(0, len(value)))
        value = value[:i] + bytes([data.draw(st.integers(0, 255))]) + value[i:]
    elif what == "key":
        key = (key or b"") + b"x"
    elif what == "signer":
        other = data.draw(hosts.filter(lambda h: h != host))
        headers = [(SIGNER_HEADER, f"agent-{other}".encode()), headers[1]]
    else:
        sig = bytearray(headers[1][1])
        sig[data.draw(st.integers(0, len(sig) - 1))] ^= 1
        headers = [headers[0], (SIGNATURE_HEADER, bytes(sig))]
    with pytest.raises(SignatureRefused):
        VERIFIER.signer(key, value, headers, broker_utc=1.0)


@given(hosts, hosts, record_keys, values)
def test_a_desktop_cannot_write_in_another_desktops_name(mine, theirs, key, value):
    """With its own password, a desktop signs as itself (then it may not write the other
    host) or claims the other's name (then the signature is not the other's)."""
    if mine == theirs:
        return
    honest = signer_of(f"agent-{mine}").headers(key, value)
    signer = VERIFIER.signer(key, value, honest, broker_utc=1.0)
    with pytest.raises(SignatureRefused, match="may not write events of host"):
        VERIFIER.check_host(signer, theirs, 7)
    own_key = signer_of(f"agent-{mine}").key
    claimed = Signer(f"agent-{theirs}", own_key).headers(key, value)
    with pytest.raises(SignatureRefused, match="signature is not"):
        VERIFIER.signer(key, value, claimed, broker_utc=1.0)


@given(hosts, record_keys, values)
def test_a_key_from_another_master_is_refused(host, key, value):
    headers = signer_of(f"agent-{host}", master="another-server").headers(key, value)
    with pytest.raises(SignatureRefused):
        VERIFIER.signer(key, value, headers, broker_utc=1.0)


@given(st.binary(max_size=200), record_keys, values)
def test_the_record_mac_is_hmac_sha256_of_the_key_length_key_and_value(key, record_key, value):
    rk = record_key or b""
    expected = hmac.digest(key, len(rk).to_bytes(4, "big") + rk + value, "sha256")
    assert RecordMac(key).signature(record_key, value) == expected.hex().encode()


@given(st.binary(max_size=20), st.binary(max_size=20), st.binary(max_size=20))
def test_bytes_moved_between_key_and_value_change_the_signature(a, b, c):
    """The key's length is signed: (a+b, c) and (a, b+c) are different records."""
    if b:
        mac = RecordMac(b"k")
        assert mac.signature(a + b, c) != mac.signature(a, b + c)


def test_who_may_write_which_host():
    assert may_write("agent-alice-pc", "alice-pc")
    assert not may_write("agent-alice-pc", "bob-pc")
    assert not may_write("agent-alice", "alice-pc")
    assert not may_write("importer", "alice-pc")
    assert not may_write("processor", "alice-pc")
    # An imported file's host: the importer, or any agent (whoever holds a file imports it).
    assert may_write("importer", "file-0123456789abcdef")
    assert may_write("agent-bob-pc", "file-0123456789abcdef")
    assert not may_write("processor", "file-0123456789abcdef")
    assert not may_write("admin", "file-0123456789abcdef")


def test_unsigned_records_are_refused_unless_appended_before_unsigned_until():
    value = b'{"host": "alice-pc"}'
    with pytest.raises(SignatureRefused, match="not signed"):
        VERIFIER.signer(b"alice-pc", value, [], broker_utc=100.0)
    legacy = Verifier(MASTER, unsigned_until=1000.0)
    assert legacy.signer(b"alice-pc", value, [], broker_utc=999.0) is None
    legacy.check_host(None, "alice-pc", 1)  # nothing to check of an unsigned record
    with pytest.raises(SignatureRefused, match="not signed"):
        legacy.signer(b"alice-pc", value, [], broker_utc=1000.0)
    # No broker time (a CreateTime topic): the producer's own clock is no evidence.
    with pytest.raises(SignatureRefused, match="not signed"):
        legacy.signer(b"alice-pc", value, [], broker_utc=None)
    # A bad signature is refused however old the record.
    forged = [(SIGNER_HEADER, b"agent-alice-pc"), (SIGNATURE_HEADER, b"00" * 32)]
    with pytest.raises(SignatureRefused, match="signature is not"):
        legacy.signer(b"alice-pc", value, forged, broker_utc=1.0)


def test_half_signed_and_undecodable_signers_are_refused():
    headers = signer_of("agent-alice-pc").headers(b"k", b"v")
    for only in headers:
        with pytest.raises(SignatureRefused, match="only one"):
            VERIFIER.signer(b"k", b"v", [only], broker_utc=1.0)
    with pytest.raises(SignatureRefused, match="not UTF-8"):
        VERIFIER.signer(b"k", b"v", [(SIGNER_HEADER, b"\xff"), headers[1]], broker_utc=1.0)


def test_a_repeated_header_counts_as_kafka_clients_read_it_the_last():
    good = signer_of("agent-alice-pc").headers(b"k", b"v")
    decoy = [(SIGNER_HEADER, b"agent-bob-pc"), (SIGNATURE_HEADER, b"00")]
    assert VERIFIER.signer(b"k", b"v", decoy + good, broker_utc=1.0) == "agent-alice-pc"
    with pytest.raises(SignatureRefused):
        VERIFIER.signer(b"k", b"v", good + decoy, broker_utc=1.0)


def test_made_up_signers_do_not_grow_the_key_cache_without_end():
    verifier = Verifier(MASTER, max_keys=3)
    for n in range(10):
        with pytest.raises(SignatureRefused):
            verifier.signer(b"k", b"v", [(SIGNER_HEADER, b"x%d" % n), (SIGNATURE_HEADER, b"0")], 1)
    assert len(verifier._macs) == 3


def test_secrets_stay_out_of_reprs_and_the_verifier_travels_to_the_decoder_process():
    signer = signer_of("agent-alice-pc")
    assert signer.key.hex() not in repr(signer)
    assert MASTER not in repr(VERIFIER)
    copy = pickle.loads(pickle.dumps(VERIFIER))
    headers = signer.headers(b"k", b"v")
    assert copy.signer(b"k", b"v", headers, broker_utc=1.0) == "agent-alice-pc"


def test_a_refusal_quotes_a_writers_claims_cut_short():
    huge = "agent-" + "x" * 100_000
    headers = Signer(huge, b"k" * 32).headers(b"k", b"v")
    with pytest.raises(SignatureRefused) as refused:
        VERIFIER.signer(b"k", b"v", headers, broker_utc=1.0)
    assert len(str(refused.value)) < 200
    with pytest.raises(SignatureRefused) as refused:
        VERIFIER.check_host("agent-bob-pc", "h" * 100_000, 1)
    assert len(str(refused.value)) < 300
