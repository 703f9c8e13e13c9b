"""The PostgreSQL passwords: the stack administrator's and the store's two roles', and the
libpq password file through which every connection gets its own.

Each password is a secret file in secrets_dir (secret_files.py): `pg-admin.password`, made
by `stack up` for the stack's server; `pg-processor.password` and `pg-reader.password`, made
by the first `db migrate`. libpq reads a connection's password from the password file its
DSN names (`passfile=`), so the DSNs the commands build hold no password: they can be
logged, shown by `status` and handed to a child process. The password file is derived from
the secret files and rewritten whole by `stack up` and `db migrate`, the two commands that
also set those passwords on the server, so the file and the server agree.

Its lines match any host, port and database: the roles' passwords are made for whichever
server `db migrate` sets them on, and libpq only offers them to the server a DSN names,
which the settings chose. SCRAM (the stack's pg_hba, deploy/config.md) never shows the
password to the server either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatchannels.secret_files import ensure_secret, read_secret, write_secret
from chatchannels.settings import Settings

ADMIN_PASSWORD = "pg-admin.password"
WRITER_PASSWORD = "pg-processor.password"
READER_PASSWORD = "pg-reader.password"


@dataclass(frozen=True)
class Login:
    user: str
    password: str = field(repr=False)


def admin_login(settings: Settings) -> Login:
    """The stack administrator's login, its password made the first time."""
    return Login(settings.pg_user, ensure_secret(settings.secrets_root / ADMIN_PASSWORD))


def role_logins(settings: Settings) -> tuple[Login, Login]:
    """(writer, reader): the store's roles with their passwords, made the first time."""
    root = settings.secrets_root
    return (
        Login(settings.pg_writer_role, ensure_secret(root / WRITER_PASSWORD)),
        Login(settings.pg_reader_role, ensure_secret(root / READER_PASSWORD)),
    )


def known_logins(settings: Settings) -> list[Login]:
    """Every login whose password file exists (none is made here)."""
    files = (
        (settings.pg_user, ADMIN_PASSWORD),
        (settings.pg_writer_role, WRITER_PASSWORD),
        (settings.pg_reader_role, READER_PASSWORD),
    )
    return [
        Login(user, read_secret(settings.secrets_root / name))
        for user, name in files
        if (settings.secrets_root / name).exists()
    ]


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def passfile_text(logins: list[Login]) -> str:
    """libpq password file lines: any host, port and database; one line per user."""
    return "\n".join(f"*:*:*:{_escaped(x.user)}:{_escaped(x.password)}" for x in logins)


def write_passfile(settings: Settings) -> Path:
    """Rewrite the password file from the password files there are; its path."""
    path = settings.pg_passfile
    write_secret(path, passfile_text(known_logins(settings)))
    return path
