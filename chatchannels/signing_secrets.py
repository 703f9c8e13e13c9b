"""The secrets behind event signatures (event_signing.py), read from the secrets folder.

The processor needs the server's master key; the importer its own password
(`kafka-importer.password`); an agent the password file of its agent.toml. Each is read with
`read_secret`, which refuses a file others can read.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from chatchannels.event_signing import IMPORTER, Signer, Verifier
from chatchannels.secret_files import (
    MASTER_KEY,
    SecretFileError,
    derived_password,
    ensure_secret,
    read_secret,
    write_secret,
)
from chatchannels.settings import Settings, SettingsError


def password_file(secrets_root: Path, principal: str) -> Path:
    """Where the server keeps a principal's Kafka password (`kafka-importer.password`)."""
    return secrets_root / f"kafka-{principal}.password"


def load_verifier(settings: Settings) -> Verifier:
    """The processor's signature checker: the master key, and `unsigned_until`."""
    path = settings.secrets_root / MASTER_KEY
    try:
        master = read_secret(path)
    except SecretFileError as exc:
        raise SecretFileError(
            f"{exc}; the processor checks who signed each event with the server's master key"
            " (`chatchannels stack up` makes it; set secrets_dir where it is kept)"
        ) from None
    return Verifier(master, unsigned_until(settings))


def unsigned_until(settings: Settings) -> float | None:
    """Setting `unsigned_until` as a UTC epoch (a time without a zone is UTC); None if unset."""
    if not settings.unsigned_until:
        return None
    try:
        when = datetime.fromisoformat(settings.unsigned_until)
    except ValueError:
        raise SettingsError(
            f"setting 'unsigned_until': {settings.unsigned_until!r} is not an ISO 8601 time"
            " (e.g. 2026-12-07T22:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def importer_signer(settings: Settings) -> Signer:
    """`chatchannels import` signs as the importer, with `kafka-importer.password`."""
    path = password_file(settings.secrets_root, IMPORTER)
    return Signer.from_password(IMPORTER, read_secret(path))


def agent_signer(principal: str, path: str | Path) -> Signer:
    """An agent signs as its principal with its password file (agent.toml)."""
    return Signer.from_password(principal, read_secret(Path(path)))


def provision_password(secrets_root: Path, principal: str, path: Path | None = None) -> Path:
    """On a machine holding the master key (the local stack, the demo, tests): write the
    password file of `principal` if it has none (derived from the master key, made first if
    there is none yet). Returns the file."""
    master = ensure_secret(secrets_root / MASTER_KEY)
    path = path or password_file(secrets_root, principal)
    if not path.exists():
        # Another process may write it first: the same password.
        with contextlib.suppress(FileExistsError):
            write_secret(path, derived_password(master, principal), replace=False)
    return path
