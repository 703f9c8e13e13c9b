"""Who wrote an event: each raw record is signed by the principal that produced it.

Kafka's ACLs say who may write to the raw topic, not which host's events each writer may
write: any desktop allowed to write could write events in another desktop's name. So each
record carries two headers: `cc-signer`, the producer's principal (`agent-<host>`,
`importer`), and `cc-sig`, an HMAC-SHA256 of the record's key and value under the principal's
signing key (secret_files.signing_key of its Kafka password). The processor holds the master
key every password but the administrator's is derived from, so it recomputes any signer's key
without a table of keys, checks the signature, and checks that the signer may speak for the
event's host (`may_write`). Whatever fails is refused as a dead letter of kind "signature".

Pure: no files, no Kafka. chatchannels/signing_secrets.py reads the secrets.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatchannels.secret_files import derived_password, signing_key

SIGNER_HEADER = "cc-signer"
SIGNATURE_HEADER = "cc-sig"
IMPORTER = "importer"
AGENT_PREFIX = "agent-"
# Hosts the importers make up for the files they import (importers/job.py, default_host).
FILE_HOST_PREFIX = "file-"

Headers = tuple[tuple[str, bytes], ...]


class RecordMac:
    """HMAC-SHA256 (RFC 2104) under one key, its padded key's hash states computed once.

    What hmac.digest computes, in a third of its time: under OpenSSL 3 each one-shot HMAC
    looks its digest up again and sets the key up again, which costs more than hashing a
    record; here a record costs two copies of a hash state and its own bytes."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __repr__(self) -> str:
        return "RecordMac(...)"

    def signature(self, record_key: bytes | None, value: bytes) -> bytes:
        """The `cc-sig` header of a record: hex HMAC-SHA256 over its key and value. The
        key's length goes first, so no split of the same bytes between key and value signs
        alike."""
        record_key = record_key or b""
        inner = self._inner.copy()
        inner.update(len(record_key).to_bytes(4, "big"))
        inner.update(record_key)
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest().encode()


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


@dataclass(frozen=True)
class Signer:
    """A producer's principal and signing key; `headers` signs one record."""

    principal: str
    key: bytes = field(repr=False)
    _mac: RecordMac = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mac", RecordMac(self.key))

    @classmethod
    def from_password(cls, principal: str, password: str) -> Signer:
        return cls(principal, signing_key(password))

    def headers(self, record_key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
        return [
            (SIGNER_HEADER, self.principal.encode()),
            (SIGNATURE_HEADER, self._mac.signature(record_key, value)),
        ]


def may_write(principal: str, host: str) -> bool:
    """Whether `principal` may write events of `host`: an agent its own desktop's; an
    imported file's made-up host (`file-...`) the importer or any agent, since anyone who
    holds a file may import it."""
    if host.startswith(FILE_HOST_PREFIX):
        return principal == IMPORTER or principal.startswith(AGENT_PREFIX)
    return principal == AGENT_PREFIX + host


def header(headers: Iterable[tuple[str, bytes]], name: str) -> bytes | None:
    """The last value of header `name` (Kafka allows repeats; the last one is the one read)."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def _shown(claim: object) -> str:
    """A writer's claim as a refusal quotes it: its repr, cut short (it may be any size)."""
    text = repr(claim)
    return text if len(text) <= 80 else text[:77] + "..."


class SignatureRefused(Exception):
    """A record whose signature or signer does not hold; the message says which."""


@dataclass
class Verifier:
    """Checks records' signatures with keys derived from the master key.

    `unsigned_until` (a UTC epoch, None: never): a record with no signature whose broker
    append time is before it is accepted, for the events written before signing existed.
    The broker sets that time, so no one can write an unsigned record dated before it later.
    """

    master: str = field(repr=False)
    unsigned_until: float | None = None
    # Signer -> its MAC: two HMACs and the key's setup saved per record. Signers are a few
    # hundred; the bound keeps a writer of made-up signer names from growing it without end.
    max_keys: int = 4096
    _macs: dict[str, RecordMac] = field(default_factory=dict, init=False, repr=False)

    def signer(
        self,
        record_key: bytes | None,
        value: bytes,
        headers: Iterable[tuple[str, bytes]],
        broker_utc: float | None,
    ) -> str | None:
        """The principal whose signature the record carries (checked), or None for an
        unsigned record old enough to be let in; SignatureRefused otherwise."""
        headers = tuple(headers)
        raw_signer = header(headers, SIGNER_HEADER)
        sig = header(headers, SIGNATURE_HEADER)
        if raw_signer is None and sig is None:
            if (
                self.unsigned_until is not None
                and broker_utc is not None
                and broker_utc < self.unsigned_until
            ):
                return None
            raise SignatureRefused("the record is not signed (no cc-signer, cc-sig headers)")
        if raw_signer is None or sig is None:
            raise SignatureRefused("the record has only one of the cc-signer, cc-sig headers")
        try:
            principal = raw_signer.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureRefused("the cc-signer header is not UTF-8") from None
        if not hmac.compare_digest(sig, self._mac(principal).signature(record_key, value)):
            raise SignatureRefused(f"the signature is not {_shown(principal)}'s")
        return principal

    def check_host(self, principal: str | None, host: str, seq: object) -> None:
        """SignatureRefused if `principal` (None: an unsigned record let in) may not write
        events of `host`."""
        if principal is None or may_write(principal, host):
            return
        raise SignatureRefused(
            f"signed by {_shown(principal)}, which may not write events of host {_shown(host)}"
            f" (the event says seq {_shown(seq)})"
        )

    def _mac(self, principal: str) -> RecordMac:
        mac = self._macs.get(principal)
        if mac is None:
            mac = RecordMac(signing_key(derived_password(self.master, principal)))
            if len(self._macs) < self.max_keys:
                self._macs[principal] = mac
        return mac

    def __getstate__(self) -> dict:
        # hashlib states do not pickle; the decode worker makes its own from the master key.
        return {**self.__dict__, "_macs": {}}
