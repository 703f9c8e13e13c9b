"""One settings object for every command.

Layered the way the CLI builds it, once, at the entry point: class defaults, then a TOML
file, then ``CHATCHANNELS_*`` environment variables, then explicit overrides (flags).
Nothing else in the code base reads the environment. deploy/config.md documents each key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chatchannels.publishers.access.rules import Permissions, RulesError, parse_permissions

ENV_PREFIX = "CHATCHANNELS_"
CONFIG_ENV = "CHATCHANNELS_CONFIG"
# libpq's password file in secrets_dir (chatchannels/pg_passwords.py writes it).
PG_PASSFILE = "pgpass"


# Schema names go into search_path options unquoted (store_contract.schema_dsn): plain
# lowercase identifiers only.
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the key and its source."""


@dataclass(frozen=True)
class Settings:
    # Where `stack up` keeps Kafka, PostgreSQL, their logs and the Kafka jars.
    stack_dir: Path = Path(".stack")
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 29092
    kafka_controller_port: int = 29093
    kafka_version: str = "4.3.1"
    kafka_heap: str = "768m"
    pg_host: str = "127.0.0.1"
    # Not 5432, so a system PostgreSQL on the default port never clashes with the stack.
    pg_port: int = 55432
    pg_user: str = "postgres"
    pg_database: str = "chatchannels"
    # Explicit addresses win over the stack's; that is how production points at a cluster.
    kafka: str = ""
    dsn: str = ""
    # The store's PostgreSQL schema: a replay builds beside it, and two stores can share a
    # database.
    schema: str = "public"
    topic: str = "chatchannels.raw.v1"
    partitions: int = 3
    match_tolerance_s: int = 120
    # Host messages whose groups the processor keeps in memory between batches (about 2.5 KB
    # each); a group not kept is read back from PostgreSQL and re-clustered whole.
    processor_cache_members: int = 2_000_000
    site_dir: Path = Path("site")
    # The organisation's time zone (IANA name, e.g. Europe/Tallinn): where the site's pages
    # break days and tell times; the exact UTC time stays in each time's title.
    time_zone: str = "UTC"
    # `chatchannels import`: where an export's shared files are archived, content-addressed
    # (empty: <stack_dir>/media), and where each imported host's spool lives (empty: beside
    # the agent's spool, so one machine's undelivered events are all in one place).
    media_dir: str = ""
    import_spool_dir: str = ""
    # Passwords and keys, one file each, owner-only (chatchannels/secret_files.py); empty:
    # <stack_dir>/secrets.
    secrets_dir: str = ""
    # PostgreSQL roles (`db migrate` makes them; deploy/config.md, "PostgreSQL roles"): the
    # processor and replay write as `pg_writer_role`; publish, serve, search, status and
    # completeness read as `pg_reader_role`. Their DSNs, empty: the admin DSN (`dsn`, else the
    # stack's) as that role, its password from the libpq password file in secrets_dir.
    pg_writer_role: str = "chatchannels_processor"
    pg_reader_role: str = "chatchannels_reader"
    processor_dsn: str = ""
    reader_dsn: str = ""
    # Kafka clients speak SASL_SSL (chatchannels/kafka_auth.py): the CA that signed the
    # broker's certificate (empty: the one `stack up` made, <stack_dir>/kafka/tls/ca.pem).
    kafka_ca_file: str = ""
    # Events with no signature (chatchannels/event_signing.py) are let in only when Kafka
    # appended them before this UTC time (ISO 8601; empty: never): those written before
    # signing existed.
    unsigned_until: str = ""
    # Prometheus metrics of `process` and `publish` on http://metrics_host:<port>/metrics
    # (0: off); `serve` answers /metrics on its own port.
    processor_metrics_port: int = 0
    publisher_metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # "text" or "json" (one JSON object a line: time, level, logger, message, extras).
    log_format: str = "text"
    # `completeness` and `status`: a live host whose last event reached the log longer ago is
    # silent; a processor or publisher behind and idle longer is stalled; the URL where
    # `serve` should answer (empty: not checked).
    silent_after_s: int = 3600
    stalled_after_s: int = 300
    serve_url: str = ""
    # `serve`'s readers (publishers/access/identity.py). Addresses or CIDR networks, comma
    # separated, whose `remote_user_header` is believed (the single-sign-on proxy); empty:
    # the header is never believed.
    trusted_proxies: str = ""
    remote_user_header: str = "Remote-User"
    # The built-in sign-in's session: how long it lasts, and its cookie's flags (Secure off
    # only for plain-http development; SameSite Lax or Strict).
    session_max_age_s: int = 12 * 3600
    session_cookie_secure: bool = True
    session_cookie_samesite: str = "Lax"
    # Failed sign-ins allowed per client address and per user name within the window.
    login_max_failures: int = 5
    login_window_s: int = 300

    # Who reads which chat (publishers/access/rules.py), the `[permissions]` table, checked
    # at load; no rules: administrators read every chat and nobody else any.
    permissions: Permissions = field(default_factory=Permissions)

    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def postgres_dsn(self) -> str:
        """The administrator's DSN: migrations and admin commands."""
        return self.dsn or stack_dsn(self, self.pg_database)

    @property
    def processor_postgres_dsn(self) -> str:
        """The writer role's DSN: `process`, `replay`'s processing, dead-letter redrives."""
        return self.processor_dsn or role_dsn(self.postgres_dsn, self.pg_writer_role, self)

    @property
    def reader_postgres_dsn(self) -> str:
        """The read-only role's DSN: the publishers, `serve`, `search`, `status`, etc."""
        return self.reader_dsn or role_dsn(self.postgres_dsn, self.pg_reader_role, self)

    @property
    def pg_passfile(self) -> Path:
        """libpq's password file of the stack's and the roles' passwords (pg_passwords.py)."""
        return self.secrets_root / PG_PASSFILE

    @property
    def media_root(self) -> Path:
        if self.media_dir:
            return Path(self.media_dir).expanduser().absolute()
        return self.stack_dir / "media"

    @property
    def secrets_root(self) -> Path:
        if self.secrets_dir:
            return Path(self.secrets_dir).expanduser().absolute()
        return self.stack_dir / "secrets"

    @property
    def kafka_ca(self) -> Path:
        if self.kafka_ca_file:
            return Path(self.kafka_ca_file).expanduser().absolute()
        return self.stack_dir / "kafka" / "tls" / "ca.pem"

    @property
    def import_spools(self) -> Path:
        if self.import_spool_dir:
            return Path(self.import_spool_dir).expanduser().absolute()
        return Path("~/.local/state/chatchannels/imports").expanduser()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def stack_dsn(settings: Settings, database: str) -> str:
    """The DSN of `database` on the stack's server, as its administrator; the password comes
    from the password file, so the DSN itself can be printed and passed on."""
    passfile = quote(str(settings.pg_passfile), safe="/")
    return (
        f"postgresql://{settings.pg_user}@{settings.pg_host}:{settings.pg_port}/{database}"
        f"?passfile={passfile}"
    )


def role_dsn(dsn: str, role: str, settings: Settings) -> str:
    """`dsn` as `role`: the same server and options, with no password of its own; libpq finds
    the role's in the password file `dsn` names, which `stack up` and `db migrate` write with
    the administrator's, else in the one in secrets_dir."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    params["user"] = role
    params.setdefault("passfile", str(settings.pg_passfile))
    return make_conninfo("", **params)


def _coerce(name: str, raw: Any, kind: Any, source: str) -> Any:
    if kind in (Permissions, "Permissions"):
        try:
            return parse_permissions(raw, source)
        except RulesError as exc:
            raise SettingsError(str(exc)) from exc
    try:
        if kind in (bool, "bool"):
            return _boolean(raw)
        if kind in (int, "int"):
            return int(raw)
        if kind in (Path, "Path"):
            return Path(str(raw)).expanduser()
        if kind in (str, "str"):
            return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name!r} from {source}: {raw!r} is not a {kind}") from exc
    return raw


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings: defaults < TOML file < environment < overrides (None means unset)."""
    environ = os.environ if environ is None else environ
    known = {f.name: f for f in fields(Settings) if f.name != "extra"}
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}

    path = config_file or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if path is not None:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {path}: {exc}") from exc
        for key, raw in table.items():
            if key in known:
                values[key] = _coerce(key, raw, known[key].type, str(path))
            else:
                extra[key] = raw

    for name, spec in known.items():
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ and environ[env_name] != "":
            values[name] = _coerce(name, environ[env_name], spec.type, env_name)

    for name, raw in overrides.items():
        if raw is None:
            continue
        if name not in known:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw, known[name].type, "command line")

    settings = Settings(**values, extra=extra)
    if not SCHEMA_NAME.fullmatch(settings.schema):
        raise SettingsError(f"setting 'schema': {settings.schema!r} is not a lowercase identifier")
    for key in ("pg_writer_role", "pg_reader_role"):
        # Quoted in GRANTs anyway; a plain name is what operators can type in psql unquoted.
        name = getattr(settings, key)
        if not SCHEMA_NAME.fullmatch(name):
            raise SettingsError(f"setting {key!r}: {name!r} is not a lowercase identifier")
    if settings.pg_writer_role == settings.pg_reader_role:
        raise SettingsError("settings 'pg_writer_role' and 'pg_reader_role' must differ")
    return settings.replace(stack_dir=settings.stack_dir.absolute())


def settings_env(settings: Settings) -> dict[str, str]:
    """The variables other commands and processes read to find the stack."""
    return {
        "CHATCHANNELS_KAFKA": settings.kafka_bootstrap,
        "CHATCHANNELS_DSN": settings.postgres_dsn,
        "CHATCHANNELS_TOPIC": settings.topic,
        "CHATCHANNELS_STACK_DIR": str(settings.stack_dir),
        # The DSNs name the password file in it.
        "CHATCHANNELS_SECRETS_DIR": str(settings.secrets_root),
        "CHATCHANNELS_KAFKA_CA_FILE": str(settings.kafka_ca),
    }
