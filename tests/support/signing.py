"""Test producers sign their records as an agent or the importer would
(chatchannels/event_signing.py), with passwords derived from the stack's master key: one
function for every producer in tests and benches, so that they cannot drift apart."""

from __future__ import annotations

import functools
from pathlib import Path

from chatchannels.event_signing import AGENT_PREFIX, FILE_HOST_PREFIX, IMPORTER, Signer
from chatchannels.secret_files import read_secret
from chatchannels.settings import Settings
from chatchannels.signing_secrets import provision_password


def principal_of(host: str) -> str:
    """Who writes `host`'s events: the importer an imported file's, its agent any other's."""
    return IMPORTER if host.startswith(FILE_HOST_PREFIX) else AGENT_PREFIX + host


@functools.cache
def signer_as(secrets_root: Path, principal: str) -> Signer:
    """`principal`'s signer, its password provisioned in `secrets_root` if it had none."""
    return Signer.from_password(principal, read_secret(provision_password(secrets_root, principal)))


def signed_headers(
    settings: Settings, host: str, key: bytes | None, value: bytes
) -> list[tuple[str, bytes]]:
    """The headers the writer of `host`'s events puts on a record (Delivery does the same)."""
    return signer_for(settings, host).headers(key, value)


def signer_for(settings: Settings, host: str) -> Signer:
    """The signer of whoever writes `host`'s events on this stack (the importer for
    `file-...` hosts, else the host's agent)."""
    return signer_as(settings.secrets_root, principal_of(host))
