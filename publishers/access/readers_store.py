"""The readers, their feed tokens and the Skype-handle map in PostgreSQL (migration
0009_readers.sql). The only module of identity that speaks SQL; `users` writes through it
with the admin DSN, `serve` only reads.

Every write is one statement or one transaction, and says what it changed, so the CLI can
tell "no such reader" from "done".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from chatchannels.publishers.access.tokens import new_token, token_digest


class ReaderStoreError(ValueError):
    """A `users` request the store refused: the message says what and what next."""


@dataclass(frozen=True)
class ReaderRecord:
    name: str
    password_hash: str | None
    admin: bool
    groups: frozenset[str]
    epoch: int
    created_utc: datetime

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "admin": self.admin,
            "groups": sorted(self.groups),
            "password": self.password_hash is not None,
            "created_utc": self.created_utc.isoformat(),
        }


@dataclass(frozen=True)
class TokenRecord:
    id: int
    reader: str
    label: str
    created_utc: datetime
    revoked_utc: datetime | None

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "reader": self.reader,
            "label": self.label,
            "created_utc": self.created_utc.isoformat(),
            "revoked_utc": self.revoked_utc.isoformat() if self.revoked_utc else None,
        }


READER_COLUMNS = "name, password_hash, admin, groups, epoch, created_utc"


def _reader(row: tuple) -> ReaderRecord:
    name, password_hash, admin, groups, epoch, created = row
    return ReaderRecord(name, password_hash, admin, frozenset(groups), epoch, created)


def _no_reader(name: str) -> ReaderStoreError:
    return ReaderStoreError(f"no reader named {name!r}; see `chatchannels users list`")


def add_reader(
    conn: psycopg.Connection,
    name: str,
    password_hash: str | None,
    admin: bool = False,
    groups: Iterable[str] = (),
) -> ReaderRecord:
    if not name or name != name.strip():
        raise ReaderStoreError(f"reader name {name!r}: not empty, no leading or trailing spaces")
    row = conn.execute(
        f"INSERT INTO readers (name, password_hash, admin, groups) VALUES (%s, %s, %s, %s)"
        f" ON CONFLICT (name) DO NOTHING RETURNING {READER_COLUMNS}",
        (name, password_hash, admin, sorted(set(groups))),
    ).fetchone()
    if row is None:
        raise ReaderStoreError(
            f"a reader named {name!r} exists; `users passwd` changes the password,"
            " `users remove` removes it"
        )
    return _reader(row)


def set_password(conn: psycopg.Connection, name: str, password_hash: str | None) -> None:
    """A new password (None: proxy-only); bumps the epoch, ending the reader's sessions."""
    done = conn.execute(
        "UPDATE readers SET password_hash = %s, epoch = epoch + 1 WHERE name = %s",
        (password_hash, name),
    ).rowcount
    if not done:
        raise _no_reader(name)


def remove_reader(conn: psycopg.Connection, name: str) -> None:
    """Removes the reader, its tokens (cascade) and its handles; its sessions end with it."""
    with conn.transaction():
        conn.execute("DELETE FROM reader_handles WHERE reader = %s", (name,))
        if not conn.execute("DELETE FROM readers WHERE name = %s", (name,)).rowcount:
            raise _no_reader(name)


def list_readers(conn: psycopg.Connection) -> list[ReaderRecord]:
    rows = conn.execute(f"SELECT {READER_COLUMNS} FROM readers ORDER BY name").fetchall()
    return [_reader(row) for row in rows]


def read_reader(conn: psycopg.Connection, name: str) -> ReaderRecord | None:
    row = conn.execute(f"SELECT {READER_COLUMNS} FROM readers WHERE name = %s", (name,)).fetchone()
    return _reader(row) if row else None


def add_token(conn: psycopg.Connection, name: str, label: str = "") -> tuple[TokenRecord, str]:
    """A new feed token for the reader: its record and the secret, which is not kept."""
    token = new_token()
    try:
        row = conn.execute(
            "INSERT INTO reader_tokens (reader, token_sha256, label) VALUES (%s, %s, %s)"
            " RETURNING id, reader, label, created_utc, revoked_utc",
            (name, token_digest(token), label),
        ).fetchone()
    except psycopg.errors.ForeignKeyViolation:
        raise _no_reader(name) from None
    return TokenRecord(*row), token


def list_tokens(conn: psycopg.Connection, name: str | None = None) -> list[TokenRecord]:
    rows = conn.execute(
        "SELECT id, reader, label, created_utc, revoked_utc FROM reader_tokens"
        " WHERE %s::text IS NULL OR reader = %s ORDER BY id",
        (name, name),
    ).fetchall()
    return [TokenRecord(*row) for row in rows]


def revoke_token(conn: psycopg.Connection, token_id: int) -> TokenRecord:
    """Revokes the token (idempotent: a revoked one keeps its first revocation time)."""
    row = conn.execute(
        "UPDATE reader_tokens SET revoked_utc = coalesce(revoked_utc, now()) WHERE id = %s"
        " RETURNING id, reader, label, created_utc, revoked_utc",
        (token_id,),
    ).fetchone()
    if row is None:
        raise ReaderStoreError(f"no feed token {token_id}; see `chatchannels users token list`")
    return TokenRecord(*row)


def read_token_reader(conn: psycopg.Connection, digest: bytes) -> ReaderRecord | None:
    """The reader a live (unrevoked) token with this sha256 belongs to."""
    row = conn.execute(
        f"SELECT {', '.join('r.' + c for c in READER_COLUMNS.split(', '))}"
        " FROM reader_tokens t JOIN readers r ON r.name = t.reader"
        " WHERE t.token_sha256 = %s AND t.revoked_utc IS NULL",
        (digest,),
    ).fetchone()
    return _reader(row) if row else None


def set_handle(conn: psycopg.Connection, handle: str, name: str) -> None:
    if not handle or not name:
        raise ReaderStoreError("a handle and a reader name, neither empty")
    conn.execute(
        "INSERT INTO reader_handles (handle, reader) VALUES (%s, %s)"
        " ON CONFLICT (handle) DO UPDATE SET reader = excluded.reader",
        (handle, name),
    )


def unset_handle(conn: psycopg.Connection, handle: str) -> None:
    if not conn.execute("DELETE FROM reader_handles WHERE handle = %s", (handle,)).rowcount:
        raise ReaderStoreError(
            f"Skype handle {handle!r} is not mapped; see `chatchannels users handles list`"
        )


def list_handles(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT handle, reader FROM reader_handles ORDER BY handle").fetchall()
