"""Advisory lock keys, one set per store.

PostgreSQL's advisory locks belong to the database, not to a schema: keys that named only a
chat made a replay building its new schema beside the live processor, or two tests' stores,
wait for each other's groups and change stream (deploy/capacity.md). Every key hashes the
store's schema in, so stores in one database never serialise each other.
"""

from __future__ import annotations

import hashlib

from chatchannels.processors.matching import GroupKey


def lock_key(schema: str, *parts: str) -> int:
    """A signed 64-bit pg_advisory_xact_lock key, the same in every process."""
    digest = hashlib.blake2b("\x1f".join((schema, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def group_lock(schema: str, group: GroupKey) -> int:
    return lock_key(schema, "group", *group)


def changes_lock(schema: str) -> int:
    """Held from taking change_seq numbers to the commit: the change stream has no gaps."""
    return lock_key(schema, "changes")


def files_lock(schema: str) -> int:
    """Held by every batch with import events, from before it reads the files' evidence to
    its commit: a batch must see every copy of its shared ids that any other batch
    committed."""
    return lock_key(schema, "files")
