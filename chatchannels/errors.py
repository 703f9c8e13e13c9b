"""Known errors become one message for the user, here and nowhere else (style.md: translate
them once at the top): `Error: what, where, what next` on stderr, exit code 2.

Known are the project's own user-facing exceptions (PROJECT_ERRORS), PostgreSQL that
cannot be reached, refuses the login or a privilege, or is not migrated, and Kafka that
cannot be reached. Anything else is a
bug and keeps its traceback; `chatchannels --debug` shows the traceback of known ones too.
With `--json` the error is also one JSON object on stdout:
`{"error": {"kind": ..., "message": ...}}`.

Exit codes: 0 done; 1 done, and the answer is no (stack or archive unhealthy, a replay that
differs, a demo that missed); 2 could not do it (these errors, and click's usage errors);
3 `import` left events in its spool.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import click

EXIT_ERROR = 2

# "module:Class" -> kind. A class is looked up only when its module is loaded: one never
# imported cannot have been raised, and an agent-only install never imports the server's.
PROJECT_ERRORS = {
    "chatchannels.settings:SettingsError": "settings",
    "chatchannels.secret_files:SecretFileError": "secret",
    "chatchannels.stack.processes:StackError": "stack",
    "chatchannels.pg_roles:RoleError": "postgres-roles",
    "chatchannels.processors.consumer:ProcessorError": "processor",
    "chatchannels.processors.replay.rebuild:ReplayError": "replay",
    "chatchannels.processors.replay.topic_copy:TopicCopyError": "replay",
    "chatchannels.publishers.site:SiteStateError": "site",
    "chatchannels.publishers.conversation:TimeZoneError": "settings",
    "chatchannels.publishers.search_index:IndexMissingError": "search-index",
    "chatchannels.publishers.search_query:QueryError": "search-query",
    "chatchannels.ingest.agent.config:AgentConfigError": "agent-config",
    "chatchannels.ingest.agent.spool:SpoolError": "spool",
    "chatchannels.emulator.scenario:ScenarioError": "scenario",
    "chatchannels.emulator.service:EmulatorBusError": "emulator",
    "chatchannels.demo.pipeline:PipelineError": "demo",
    "chatchannels.metrics:MetricsEndpointError": "metrics",
    "chatchannels.publishers.access.readers_store:ReaderStoreError": "users",
}

_LOGIN_REFUSED = re.compile(
    r'password authentication failed|no password supplied|role "[^"]*" does not exist'
)
# kafka-python's errors that mean no broker answered.
_KAFKA_AWAY = ("KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError")


class CommandError(Exception):
    """A command's own refusal (a port taken, a flag combination): the message says what,
    where and what next."""

    def __init__(self, message: str, kind: str = "command") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class KnownError:
    kind: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"error": {"kind": self.kind, "message": self.message}}


class KnownErrorExit(click.ClickException):
    """A known error on its way out through click: shown as one message, exit code 2."""

    exit_code = EXIT_ERROR

    def __init__(self, known: KnownError, as_json: bool) -> None:
        super().__init__(known.message)
        self.known = known
        self.as_json = as_json

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps(self.known.as_json(), sort_keys=True))
        click.echo(f"Error: {self.known.message}", err=True)


def explain(exc: BaseException, settings: Any = None) -> KnownError | None:
    """What to tell the user about `exc`, or None when it is not a known error. `settings`
    (the command's, after its flags) names the servers; None before they were built."""
    if isinstance(exc, CommandError):
        return KnownError(exc.kind, str(exc))
    for target, kind in PROJECT_ERRORS.items():
        cls = _loaded(target)
        if cls is not None and isinstance(exc, cls):
            return KnownError(kind, str(exc))
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return _postgres(exc, settings, psycopg)
    kafka_errors = sys.modules.get("kafka.errors")
    if kafka_errors is not None and isinstance(exc, kafka_errors.KafkaError):
        return _kafka(exc, settings)
    return None


def _loaded(target: str) -> type | None:
    module_name, name = target.split(":")
    if module_name not in sys.modules:
        return None
    return getattr(import_module(module_name), name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _postgres(exc: Any, settings: Any, psycopg: Any) -> KnownError | None:
    where = _postgres_place(settings, psycopg)
    schema = getattr(settings, "schema", "public")
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return KnownError(
            "store-not-migrated",
            f"the store at {where} (schema {schema}) is not migrated"
            f" ({exc.diag.message_primary}): run `chatchannels db migrate --schema {schema}`",
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return KnownError(
            "postgres-permission",
            f"PostgreSQL at {where} (schema {schema}) refused:"
            f" {exc.diag.message_primary or _first_line(exc)};"
            " each command connects as its role (README: PostgreSQL roles), and"
            f" `chatchannels db migrate --schema {schema}` grants the roles their rights",
        )
    if isinstance(exc, psycopg.OperationalError) and _refused_login(exc):
        return KnownError(
            "postgres-login",
            f"PostgreSQL at {where} refused the login: {_first_line(exc)}; the store's roles"
            " and their passwords come from `chatchannels db migrate` (the stack's administrator"
            " from `chatchannels stack up`): run it, or fix the DSN (README: PostgreSQL roles)",
        )
    if isinstance(exc, psycopg.OperationalError):
        return KnownError(
            "postgres-unreachable",
            f"cannot use PostgreSQL at {where}: {_first_line(exc)}; is it up"
            " (`chatchannels stack up`, or `stack status`) and --dsn right?",
        )
    # Any other database error (a constraint, a syntax error) is a bug: its traceback helps.
    return None


def _refused_login(exc: Any) -> bool:
    # libpq's and the server's words for a wrong password, none to give, or no such role.
    return bool(_LOGIN_REFUSED.search(str(exc)))


def _postgres_place(settings: Any, psycopg: Any) -> str:
    """host:port/database of the DSN, never its password."""
    if settings is None:
        return "the configured DSN"
    try:
        parts = psycopg.conninfo.conninfo_to_dict(settings.postgres_dsn)
    except psycopg.ProgrammingError:
        return "the configured DSN (which does not parse)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


def _kafka(exc: BaseException, settings: Any) -> KnownError:
    where = settings.kafka_bootstrap if settings is not None else "the configured servers"
    name = type(exc).__name__
    detail = _first_line(exc)
    # kafka-python's messages mostly hold the class name already.
    said = detail if name in detail else f"{name}: {detail}"
    if name in _KAFKA_AWAY:
        return KnownError(
            "kafka-unreachable",
            f"cannot reach Kafka at {where} ({said}); is it up (`chatchannels stack up`,"
            " or `stack status`) and --kafka right? A refused login looks the same: check"
            " the password file and the CA (the broker's log names refused logins)",
        )
    return KnownError("kafka", f"Kafka at {where} refused: {said}")
