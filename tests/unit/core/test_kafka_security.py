"""What the broker is told to allow, and the TLS it is given, read without a broker: one
listener for clients (SASL_SSL, SCRAM), the controller on loopback, admin the only super
user, and ACLs that give each principal its few operations and nothing more."""

from __future__ import annotations

import ipaddress
import stat

from cryptography import x509

from chatchannels.event_signing import IMPORTER
from chatchannels.kafka_auth import PROCESSOR, client_options, password_file
from chatchannels.secret_files import write_secret
from chatchannels.settings import Settings
from chatchannels.stack.kafka import server_properties
from chatchannels.stack.kafka_principals import (
    Grant,
    reader_grants,
    topic_grants,
    writer_grants,
)
from chatchannels.stack.kafka_tls import ensure_tls


def _props(tmp_path, advertise=None) -> dict[str, str]:
    settings = Settings(stack_dir=tmp_path)
    tls = ensure_tls(tmp_path / "tls")
    text = server_properties(settings, tmp_path / "data", "pw-admin", tls, advertise)
    return dict(line.split("=", 1) for line in text.splitlines())


def test_clients_have_one_listener_and_it_is_sasl_ssl_with_scram(tmp_path):
    props = _props(tmp_path)
    assert props["listener.security.protocol.map"] == "CLIENTS:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert props["listeners"] == "CLIENTS://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "CLIENTS://127.0.0.1:29092"
    assert props["listener.name.clients.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "PLAINTEXT://" not in props["listeners"]
    assert _props(tmp_path, "kafka")["advertised.listeners"] == "CLIENTS://kafka:29092"


def test_the_controller_stays_on_loopback_even_when_clients_listen_everywhere(tmp_path):
    settings = Settings(stack_dir=tmp_path, kafka_host="0.0.0.0")
    tls = ensure_tls(tmp_path / "tls")
    text = server_properties(settings, tmp_path / "data", "pw", tls, "kafka")
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "CLIENTS://0.0.0.0:29092,CONTROLLER://127.0.0.1:29093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"


def test_everything_not_allowed_is_denied_and_only_admin_is_super(tmp_path):
    props = _props(tmp_path)
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"


def test_acls_give_writers_write_and_the_processor_read_and_nothing_else():
    assert {(g.operation, g.resource, g.name) for g in writer_grants("agent-a", "raw")} == {
        ("DESCRIBE", "TOPIC", "raw"),
        ("WRITE", "TOPIC", "raw"),
        ("IDEMPOTENT_WRITE", "CLUSTER", "kafka-cluster"),
    }
    assert reader_grants(PROCESSOR, "raw") == [
        Grant(PROCESSOR, "READ", "TOPIC", "raw"),
        Grant(PROCESSOR, "READ", "GROUP", "chatchannels-", prefixed=True),
    ]
    grants = topic_grants("raw")
    assert {g.principal for g in grants} == {PROCESSOR, IMPORTER}
    assert not [g for g in grants if g.principal == PROCESSOR and g.operation == "WRITE"]
    assert not [g for g in grants if g.principal == IMPORTER and g.operation == "READ"]
    # Never a wildcard: every rule names its topic or the processor's group prefix.
    assert all(g.name not in ("*", "") for g in grants + writer_grants("agent-a", "raw"))


def test_the_ca_signs_a_broker_certificate_for_the_names_clients_dial(tmp_path):
    files = ensure_tls(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    chain = x509.load_pem_x509_certificates(files.broker.read_bytes())
    broker = chain[0]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not broker.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    broker.verify_directly_issued_by(ca)
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "kafka"}
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    for private in (files.ca_key, files.broker):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    # Made once: a second call keeps the CA the desktops already trust.
    assert ensure_tls(tmp_path / "tls").ca_cert.read_bytes() == files.ca_cert.read_bytes()


def test_each_command_logs_in_as_its_principal_with_its_password_file(tmp_path):
    settings = Settings(stack_dir=tmp_path)
    write_secret(password_file(settings, PROCESSOR), "pw-processor")
    settings.kafka_ca.parent.mkdir(parents=True)
    settings.kafka_ca.write_text("ca")
    assert client_options(settings, PROCESSOR) == {
        "bootstrap_servers": "127.0.0.1:29092",
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(tmp_path / "kafka" / "tls" / "ca.pem"),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "processor",
        "sasl_plain_password": "pw-processor",
    }
    assert password_file(settings, PROCESSOR) == tmp_path / "secrets" / "kafka-processor.password"
