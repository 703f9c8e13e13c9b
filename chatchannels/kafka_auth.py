"""Who a Kafka client is: the one place that builds every client's security options.

Kafka's client listener speaks SASL_SSL only: TLS (the broker's certificate, signed by the
CA that `stack up` makes, or the organisation's) and SCRAM-SHA-512 with a user name and a
password read from an owner-only file (secret_files.read_secret). Every producer, consumer
and admin client of the code, the tests and the benches is built with `client_options`, so
no path talks to the broker another way.

The server's commands speak as fixed principals, their passwords in `secrets_dir` under
`kafka-<principal>.password`: `processor` (process, status, stats, replay's reads),
`importer` (import) and `admin` (the stack, hosts, replay's topic copy, the demo, the
tests). A desktop's agent speaks as its own `agent-<host>` (agent.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chatchannels import signing_secrets
from chatchannels.event_signing import AGENT_PREFIX
from chatchannels.secret_files import SecretFileError, read_secret
from chatchannels.settings import Settings

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
PROCESSOR = "processor"
# The processor's consumer groups: its ACL covers every group named with this prefix.
PROCESSOR_GROUP_PREFIX = "chatchannels-"


def agent_principal(host: str) -> str:
    return AGENT_PREFIX + host


def password_file(settings: Settings, principal: str) -> Path:
    return signing_secrets.password_file(settings.secrets_root, principal)


@dataclass(frozen=True)
class KafkaLogin:
    user: str
    password_file: Path
    ca_file: Path

    def client_options(self) -> dict[str, str]:
        """kafka-python's options for this login (the password read now, so a file with
        wrong rights is refused before any connection is tried)."""
        if not self.ca_file.is_file():
            raise SecretFileError(
                f"the Kafka CA certificate {self.ca_file} is missing; copy the server's"
                " CA (kafka_ca_file) there, or run `chatchannels stack up` on the server"
            )
        return {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.ca_file),
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": self.user,
            "sasl_plain_password": read_secret(self.password_file),
        }


def login(settings: Settings, principal: str = ADMIN) -> KafkaLogin:
    return KafkaLogin(principal, password_file(settings, principal), settings.kafka_ca)


def client_options(settings: Settings, principal: str = ADMIN) -> dict[str, str]:
    """bootstrap_servers plus the security options of `principal`'s Kafka client."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        **login(settings, principal).client_options(),
    }
