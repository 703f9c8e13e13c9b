"""A private PostgreSQL 15 cluster under the stack folder (initdb + pg_ctl).

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user and the
data directory belongs to it. The cluster listens on 127.0.0.1 only. Connections over TCP
prove a password (SCRAM): the administrator's is `<secrets_dir>/pg-admin.password`, the
store's roles' are made by `db migrate` (chatchannels/pg_roles.py), and the DSNs find them
in libpq's password file (chatchannels/pg_passwords.py). The Unix socket trusts whoever
reaches it: it is in a folder only the cluster's owner may enter, who can read the data
files anyway, and `stack up` sets the passwords through it. Production points
CHATCHANNELS_DSN at a server of its own (deploy/config.md).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chatchannels.pg_passwords import admin_login, role_logins, write_passfile
from chatchannels.settings import Settings, stack_dsn
from chatchannels.stack.processes import (
    StackError,
    port_open,
    process_state,
    read_pid,
    wait_for,
)

if TYPE_CHECKING:
    import psycopg

# Spare the processor's large transactions a checkpoint every few batches (deploy/config.md);
# docker-compose.yml runs its PostgreSQL with the same.
WAL_SETTINGS = {"max_wal_size": "4GB", "checkpoint_timeout": "15min", "wal_compression": "lz4"}

PG_MAJOR = 15

# Written at every `stack up`, so an older stack's cluster (which trusted every connection)
# gets the rules too: a password over TCP, from any address it listens on.
PG_HBA = "local all all trust\nhost all all all scram-sha-256\n"


@dataclass(frozen=True)
class PostgresPaths:
    home: Path
    data: Path
    run: Path
    log: Path

    @classmethod
    def of(cls, settings: Settings) -> PostgresPaths:
        home = settings.stack_dir / "postgres"
        return cls(
            home=home,
            data=home / "data",
            run=home / "run",
            log=settings.stack_dir / "logs" / "postgres.log",
        )


def pg_bin(tool: str) -> str:
    candidate = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin") / tool
    if candidate.exists():
        return str(candidate)
    found = shutil.which(tool)
    if found is None:
        raise StackError(
            f"PostgreSQL {PG_MAJOR} server tool {tool!r} not found; run `make setup` "
            f"(Debian package postgresql-{PG_MAJOR})"
        )
    return found


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _chown_to_owner(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    for path in paths:
        os.chown(path, pw.pw_uid, pw.pw_gid)


def postgres_pid(settings: Settings) -> int | None:
    return read_pid(PostgresPaths.of(settings).data / "postmaster.pid")


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_as_owner(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"{what} failed ({' '.join(cmd)}):\n{result.stdout}{result.stderr}")
    return result


def start_postgres(settings: Settings) -> int:
    """initdb on first use, then `pg_ctl start`; returns the postmaster pid (no-op if running)."""
    paths = PostgresPaths.of(settings)
    running = postgres_pid(settings)
    if running:
        return running
    if port_open(settings.pg_host, settings.pg_port):
        raise StackError(
            f"port {settings.pg_host}:{settings.pg_port} is taken by another process; "
            "set CHATCHANNELS_PG_PORT to a free port"
        )
    for path in (paths.home, paths.run, paths.log.parent):
        path.mkdir(parents=True, exist_ok=True)
    paths.log.touch()
    # The socket's folder: the cluster's owner's only (see the module's doc).
    paths.run.chmod(0o700)
    _chown_to_owner(paths.home, paths.run, paths.log)
    if not (paths.data / "PG_VERSION").exists():
        _run(
            [
                pg_bin("initdb"),
                "-D",
                str(paths.data),
                "-U",
                settings.pg_user,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            "initdb",
        )
    # Rewritten at every start, so a changed port in the settings takes effect.
    conf = paths.data / "chatchannels.conf"
    conf.write_text(
        f"listen_addresses = '{settings.pg_host}'\n"
        f"port = {settings.pg_port}\n"
        f"unix_socket_directories = '{paths.run}'\n"
        "unix_socket_permissions = 0700\n"
        "password_encryption = 'scram-sha-256'\n"
        "shared_buffers = 256MB\n"
        "max_connections = 200\n"
        + "".join(f"{key} = {value}\n" for key, value in WAL_SETTINGS.items())
    )
    _chown_to_owner(conf)
    main_conf = paths.data / "postgresql.conf"
    if "chatchannels.conf" not in main_conf.read_text():
        with main_conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'chatchannels.conf'\n")
    _write_hba(paths)
    _run(
        [pg_bin("pg_ctl"), "-D", str(paths.data), "-l", str(paths.log), "-w", "-t", "60", "start"],
        "pg_ctl start",
    )
    pid = wait_for("the postmaster pid", lambda: postgres_pid(settings), 10)
    set_passwords(settings)
    return pid


def reload_config(settings: Settings, conn: psycopg.Connection, timeout: float = 30) -> None:
    """Have the server re-read its configuration, and wait until new connections get it."""
    before = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
    conn.execute("SELECT pg_reload_conf()")

    def reloaded() -> bool:
        with _socket_connect(settings) as probe:
            return probe.execute("SELECT pg_conf_load_time()").fetchone()[0] > before

    wait_for("PostgreSQL to reload its configuration", reloaded, timeout)


def _write_hba(paths: PostgresPaths) -> bool:
    """pg_hba.conf as PG_HBA says; True if it changed."""
    hba = paths.data / "pg_hba.conf"
    if hba.exists() and hba.read_text() == PG_HBA:
        return False
    hba.write_text(PG_HBA)
    _chown_to_owner(hba)
    return True


def _socket_connect(settings: Settings) -> psycopg.Connection:
    import psycopg

    return psycopg.connect(
        host=str(PostgresPaths.of(settings).run),
        port=settings.pg_port,
        user=settings.pg_user,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def set_passwords(settings: Settings) -> None:
    """Passwords checked over TCP, and known to the stack's DSNs: the administrator's password
    set (from its secret file, made the first time), the store's roles made with theirs, the
    password file written, pg_hba's rules in force. Idempotent; through the Unix socket, which
    needs no password."""
    from psycopg import sql

    from chatchannels.pg_roles import ensure_login_role, verifier

    admin = admin_login(settings)
    # A server found running may still be starting.
    with wait_for("PostgreSQL's Unix socket", lambda: _socket_connect(settings), 60) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(admin.user), sql.Literal(verifier(conn, admin))
            )
        )
        # A cluster an older stack made trusted every connection: its roles' passwords are
        # checked below over TCP, which must be checking them by then.
        if _write_hba(PostgresPaths.of(settings)):
            reload_config(settings, conn)
        for login in role_logins(settings):
            ensure_login_role(conn, login, _admin_dsn(settings))
    write_passfile(settings)


def wait_postgres_ready(settings: Settings, timeout: float = 60) -> None:
    import psycopg

    def probe() -> bool:
        with psycopg.connect(_admin_dsn(settings), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True

    wait_for(f"PostgreSQL at {settings.pg_host}:{settings.pg_port}", probe, timeout)


def postgres_answer_problem(settings: Settings, timeout: float = 2.0) -> str | None:
    """None if the server answers `SELECT 1` within `timeout`, else what was seen."""
    import psycopg

    pid = postgres_pid(settings)
    if pid is not None and process_state(pid) == "T":
        return f"PostgreSQL (pid {pid}) is stopped (SIGSTOP; state T)"
    try:
        with psycopg.connect(
            _admin_dsn(settings),
            connect_timeout=max(1, round(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {settings.pg_host}:{settings.pg_port}: {exc}".strip()
    return None


def _admin_dsn(settings: Settings) -> str:
    return stack_dsn(settings, "postgres")


def ensure_database(settings: Settings, name: str | None = None) -> bool:
    """Create the database if missing. True if created."""
    import psycopg
    from psycopg import sql

    name = name or settings.pg_database
    with psycopg.connect(_admin_dsn(settings), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def server_version(settings: Settings) -> str:
    import psycopg

    with psycopg.connect(_admin_dsn(settings), connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else ""


def stop_postgres(settings: Settings) -> bool:
    paths = PostgresPaths.of(settings)
    if postgres_pid(settings) is None:
        return False
    _run(
        [pg_bin("pg_ctl"), "-D", str(paths.data), "-m", "fast", "-w", "-t", "60", "stop"],
        "pg_ctl stop",
    )
    return True


def drop_database(settings: Settings, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_admin_dsn(settings), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def database_dsn(settings: Settings, name: str) -> str:
    """The DSN of another database on the stack's server, as its administrator."""
    return stack_dsn(settings, name)
