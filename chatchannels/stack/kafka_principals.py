"""Kafka principals and what each may do (SCRAM credentials and ACLs), set as the admin.

The broker's StandardAuthorizer denies whatever no ACL allows, and only `admin` is a super
user. The rest may do exactly this, on the raw topic:

- `agent-<host>` (one per desktop) and `importer`: Describe and Write the topic, and
  IdempotentWrite on the cluster (the producers are idempotent). No Read, no Create, no
  other topic.
- `processor`: Read (and so Describe) the topic, and Read its consumer groups, those whose
  name starts with `chatchannels-`. No Write.

Every password but the admin's is `derived_password(master.key, principal)`, so the
processor can recompute any writer's signing key; the admin's is random.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatchannels.event_signing import AGENT_PREFIX, IMPORTER
from chatchannels.kafka_auth import (
    MECHANISM,
    PROCESSOR,
    PROCESSOR_GROUP_PREFIX,
    agent_principal,
    client_options,
    password_file,
)
from chatchannels.secret_files import MASTER_KEY, derived_password, ensure_secret, write_secret
from chatchannels.settings import Settings
from chatchannels.stack.processes import StackError, wait_for

CLUSTER = "kafka-cluster"

# How long a new credential or ACL may take to reach the broker from the controller.
_PROPAGATION_S = 30.0


@dataclass(frozen=True)
class Grant:
    """One ALLOW rule: `principal` may `operation` the resource (kafka.admin enums' names)."""

    principal: str
    operation: str
    resource: str
    name: str
    prefixed: bool = False


def writer_grants(principal: str, topic: str) -> list[Grant]:
    return [
        Grant(principal, "DESCRIBE", "TOPIC", topic),
        Grant(principal, "WRITE", "TOPIC", topic),
        Grant(principal, "IDEMPOTENT_WRITE", "CLUSTER", CLUSTER),
    ]


def reader_grants(principal: str, topic: str) -> list[Grant]:
    return [
        Grant(principal, "READ", "TOPIC", topic),
        Grant(principal, "READ", "GROUP", PROCESSOR_GROUP_PREFIX, prefixed=True),
    ]


def topic_grants(topic: str) -> list[Grant]:
    """What the server's own principals may do on `topic`."""
    return reader_grants(PROCESSOR, topic) + writer_grants(IMPORTER, topic)


def acl_of(grant: Grant):
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    pattern = ACLResourcePatternType.PREFIXED if grant.prefixed else ACLResourcePatternType.LITERAL
    return ACL(
        principal=f"User:{grant.principal}",
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(ResourceType[grant.resource], grant.name, pattern),
    )


class _Admin:
    """The admin's client for one operation: `with _Admin(settings) as admin: ...`."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient

        self.client = KafkaAdminClient(**client_options(settings), client_id="chatchannels-admin")

    def __enter__(self):
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def _wait(what: str, check: Callable[[], bool]) -> None:
    wait_for(f"Kafka to show {what}", check, _PROPAGATION_S, interval=0.05)


def _acl_filter(principal: str | None = None, topic: str | None = None):
    """Rules of `principal` (None: anyone's) on `topic` (None: on anything)."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    if topic is None:
        resource = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    else:
        resource = ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
    return ACLFilter(
        principal=f"User:{principal}" if principal else None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=resource,
    )


def _all_acls(admin) -> list:
    found, error = admin.describe_acls(_acl_filter())
    if error.errno:
        raise StackError(f"Kafka refused to list ACLs: {error}")
    return found


def grant(settings: Settings, grants: list[Grant]) -> None:
    """Create the ALLOW rules (idempotent) and wait until the broker enforces them."""
    with _Admin(settings) as admin:
        acls = [acl_of(g) for g in grants]
        result = admin.create_acls(acls)
        if result["failed"]:
            raise StackError(f"Kafka refused ACLs: {result['failed']}")
        wanted = {(a.principal, a.operation, a.resource_pattern.resource_name) for a in acls}

        def visible() -> bool:
            seen = {
                (a.principal, a.operation, a.resource_pattern.resource_name)
                for a in _all_acls(admin)
            }
            return wanted <= seen

        _wait("the new ACLs", visible)


def create_raw_topic(settings: Settings, topic: str, partitions: int) -> None:
    """A raw topic (the demo's, a test's, a benchmark's) the server's principals may use."""
    from chatchannels.stack.kafka import ensure_topic

    ensure_topic(settings, topic, partitions)
    grant(settings, topic_grants(topic))


def drop_topics(settings: Settings, topics: list[str]) -> None:
    """Delete the topics and every rule naming them."""
    from chatchannels.stack.kafka import delete_topics

    delete_topics(settings, topics)
    for topic in topics:
        revoke_topic(settings, topic)


def revoke_topic(settings: Settings, topic: str) -> None:
    """Remove every rule naming `topic` (a deleted test or demo topic)."""
    with _Admin(settings) as admin:
        admin.delete_acls([_acl_filter(topic=topic)])


def set_password(settings: Settings, principal: str, password: str) -> None:
    """Give `principal` this SCRAM password and wait until the broker accepts it."""
    from kafka.admin import UserScramCredentialUpsertion

    with _Admin(settings) as admin:
        errors = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(principal, MECHANISM, password)]
        )
        if errors.get(principal):
            raise StackError(f"Kafka refused the credential of {principal}: {errors[principal]}")
        _wait(f"the credential of {principal}", lambda: principal in _scram_users(admin))


def _scram_users(admin) -> set[str]:
    return {
        user for user, info in admin.describe_user_scram_credentials().items() if not info["error"]
    }


def principal_password(settings: Settings, principal: str) -> str:
    return derived_password(ensure_secret(settings.secrets_root / MASTER_KEY), principal)


def ensure_server_principals(settings: Settings) -> None:
    """`processor` and `importer`: their password files, credentials, and rules on the topic."""
    for principal in (PROCESSOR, IMPORTER):
        password = principal_password(settings, principal)
        write_secret(password_file(settings, principal), password)
        set_password(settings, principal, password)
    grant(settings, topic_grants(settings.topic))


@dataclass(frozen=True)
class HostCredentials:
    host: str
    principal: str
    password_file: Path


def _default_host_file(settings: Settings, principal: str) -> Path:
    return settings.secrets_root / "hosts" / f"{principal}.password"


def add_host(settings: Settings, host: str, out: Path | None = None) -> HostCredentials:
    """Make `agent-<host>`: its credential, its rules on the topic, and the password file for
    the desktop (owner-only; default <secrets_dir>/hosts/agent-<host>.password)."""
    principal = agent_principal(host)
    password = principal_password(settings, principal)
    path = out or _default_host_file(settings, principal)
    set_password(settings, principal, password)
    grant(settings, writer_grants(principal, settings.topic))
    write_secret(path, password)
    return HostCredentials(host, principal, path)


def remove_host(settings: Settings, host: str) -> bool:
    """Remove `agent-<host>`'s credential and every rule naming it. False if it had none."""
    from kafka.admin import UserScramCredentialDeletion

    principal = agent_principal(host)
    with _Admin(settings) as admin:
        known = principal in _scram_users(admin)
        if known:
            admin.alter_user_scram_credentials([UserScramCredentialDeletion(principal, MECHANISM)])
        admin.delete_acls([_acl_filter(principal=principal)])
        _wait(f"{principal} gone", lambda: principal not in _scram_users(admin))
    _default_host_file(settings, principal).unlink(missing_ok=True)
    return known


def list_hosts(settings: Settings) -> list[dict[str, object]]:
    """Every desktop principal the broker knows, with the topics it may write."""
    with _Admin(settings) as admin:
        users = sorted(u for u in _scram_users(admin) if u.startswith(AGENT_PREFIX))
        acls = _all_acls(admin)
    hosts = []
    for user in users:
        topics = sorted(
            {
                a.resource_pattern.resource_name
                for a in acls
                if a.principal == f"User:{user}" and a.operation.name == "WRITE"
            }
        )
        hosts.append({"host": user[len(AGENT_PREFIX) :], "principal": user, "topics": topics})
    return hosts
