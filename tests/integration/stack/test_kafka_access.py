"""The broker as an attacker on the network finds it: no plaintext, no login without the
right password, and a desktop's principal may only write its raw topic."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic, UserScramCredentialUpsertion
from kafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from chatchannels.kafka_auth import PROCESSOR, KafkaLogin, client_options, login
from chatchannels.settings import Settings
from chatchannels.stack.kafka_principals import (
    acl_of,
    add_host,
    create_raw_topic,
    drop_topics,
    remove_host,
    writer_grants,
)
from chatchannels.stack.kafka_tls import ensure_tls
from tests.support.agent_runs import wait_for

pytestmark = pytest.mark.integration

# Short enough that a refused client gives up quickly, long enough for a loaded machine.
BOOTSTRAP_MS = 4000


@pytest.fixture
def agent(stack: Settings, kafka_topic: str, tmp_path) -> Iterator[KafkaLogin]:
    """A desktop made with `hosts add` for the test's topic, removed afterwards."""
    host = f"access-{uuid.uuid4().hex[:8]}"
    made = add_host(stack.replace(topic=kafka_topic), host, tmp_path / "agent.password")
    yield KafkaLogin(made.principal, made.password_file, stack.kafka_ca)
    remove_host(stack, host)


def _options(stack: Settings, who: KafkaLogin, **changes: str) -> dict:
    return {
        "bootstrap_servers": stack.kafka_bootstrap,
        **who.client_options(),
        "bootstrap_timeout_ms": BOOTSTRAP_MS,
        **changes,
    }


def _send(options: dict, topic: str, idempotent: bool = True) -> object:
    producer = KafkaProducer(
        **options, acks="all", enable_idempotence=idempotent, max_block_ms=BOOTSTRAP_MS
    )
    try:
        return producer.send(topic, key=b"evil-pc", value=b"{}").get(timeout=20)
    finally:
        producer.close(timeout=1)


def _failed_logins(stack: Settings) -> int:
    log = stack.stack_dir / "logs" / "kafka.log"
    return log.read_text(errors="replace").count("due to invalid credentials")


def test_a_plaintext_client_gets_no_answer(stack):
    # ApiVersions in clear, as any Kafka client speaks first: the listener wants TLS.
    request = struct.pack(">hhih5s", 18, 3, 7, 5, b"probe") + b"\x00\x00\x00"
    with socket.create_connection((stack.kafka_host, stack.kafka_port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        try:
            answer = sock.recv(64)
        except ConnectionResetError:
            answer = b""
    # Nothing, or a TLS alert record (content type 21): never a Kafka response.
    assert answer == b"" or answer[0] == 0x15, answer
    with pytest.raises(KafkaTimeoutError):
        KafkaAdminClient(
            bootstrap_servers=stack.kafka_bootstrap, bootstrap_timeout_ms=BOOTSTRAP_MS
        ).list_topics()


def test_tls_without_a_login_is_refused(stack):
    with pytest.raises(KafkaTimeoutError):
        KafkaAdminClient(
            bootstrap_servers=stack.kafka_bootstrap,
            security_protocol="SSL",
            ssl_cafile=str(stack.kafka_ca),
            bootstrap_timeout_ms=BOOTSTRAP_MS,
        ).list_topics()


def test_a_client_refuses_a_broker_our_ca_did_not_sign(stack, tmp_path):
    # A man in the middle with a CA of its own, for the same names as the real broker.
    forged = ensure_tls(tmp_path / "forged")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(forged.broker)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            with conn, contextlib.suppress(OSError):
                server.wrap_socket(conn, server_side=True).close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = ssl.create_default_context(cafile=str(stack.kafka_ca))
        address = ("127.0.0.1", listener.getsockname()[1])
        with (
            socket.create_connection(address, timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            client.wrap_socket(raw, server_hostname="127.0.0.1")
        thread.join(10)


def test_a_wrong_password_is_refused_and_the_right_one_works(stack, kafka_topic, agent):
    before = _failed_logins(stack)
    password = agent.client_options()["sasl_plain_password"]
    # One character off: the broker must check all of it.
    wrong = _options(stack, agent, sasl_plain_password=password[:-1] + chr(ord(password[-1]) ^ 1))
    with pytest.raises(KafkaTimeoutError):
        _send(wrong, kafka_topic)
    wait_for(
        "the broker to log the refused login",
        lambda: _failed_logins(stack) > before,
        lambda: _failed_logins(stack),
        10,
    )
    # The same principal with its password from `hosts add` writes its topic.
    assert _send(_options(stack, agent), kafka_topic).topic == kafka_topic


def test_another_principals_password_does_not_log_in_as_this_one(stack, kafka_topic, agent):
    processor_password = login(stack, PROCESSOR).client_options()["sasl_plain_password"]
    with pytest.raises(KafkaTimeoutError):
        _send(_options(stack, agent, sasl_plain_password=processor_password), kafka_topic)


def test_an_agent_cannot_read_the_topic(stack, kafka_topic, agent):
    _send(_options(stack, agent), kafka_topic)
    consumer = KafkaConsumer(**_options(stack, agent), enable_auto_commit=False)
    try:
        tp = TopicPartition(kafka_topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        with pytest.raises(TopicAuthorizationFailedError):
            for _ in range(20):
                consumer.poll(timeout_ms=500)
    finally:
        consumer.close()
    # Nor join the processor's group to be handed partitions.
    grouped = KafkaConsumer(
        kafka_topic, **_options(stack, agent), group_id="chatchannels-processor"
    )
    try:
        with pytest.raises((GroupAuthorizationFailedError, TopicAuthorizationFailedError)):
            for _ in range(20):
                grouped.poll(timeout_ms=500)
    finally:
        grouped.close()


def test_an_agent_cannot_write_another_topic(stack, kafka_topic, agent):
    other = f"test.{uuid.uuid4().hex[:12]}"
    create_raw_topic(stack, other, partitions=1)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            _send(_options(stack, agent), other)
    finally:
        drop_topics(stack, [other])


def test_an_agent_cannot_create_topics_or_give_itself_rights(stack, kafka_topic, agent):
    admin = KafkaAdminClient(**_options(stack, agent))
    try:
        name = f"test.{uuid.uuid4().hex[:12]}"
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_topics([NewTopic(name, 1, 1)])
        assert name not in KafkaAdminClient(**client_options(stack)).list_topics()
        # Its own ACLs on another topic: refused by the cluster.
        result = admin.create_acls([acl_of(g) for g in writer_grants(agent.user, "elsewhere")])
        assert result["succeeded"] == [] and result["failed"], result
        assert all(e is ClusterAuthorizationFailedError for e in result["failed"]), result
        # Nor a credential for a principal of its choosing.
        errors = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("admin", "SCRAM-SHA-512", "mine")]
        )
        assert errors.get("admin"), errors
    finally:
        admin.close()


def test_the_processor_reads_but_cannot_write(stack, kafka_topic, agent):
    _send(_options(stack, agent), kafka_topic)
    processor = login(stack, PROCESSOR)
    consumer = KafkaConsumer(
        kafka_topic,
        **_options(stack, processor),
        group_id=f"chatchannels-access-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        got: list = []
        wait_for(
            "the processor to read the agent's record",
            lambda: got.extend(r for b in consumer.poll(timeout_ms=500).values() for r in b) or got,
            lambda: got,
            30,
        )
    finally:
        consumer.close()
    with pytest.raises(TopicAuthorizationFailedError):
        _send(_options(stack, processor), kafka_topic, idempotent=False)
    # An idempotent producer is refused its producer id already (no IdempotentWrite).
    with pytest.raises(KafkaError, match="ClusterAuthorizationFailed"):
        _send(_options(stack, processor), kafka_topic)


def test_a_removed_host_can_no_longer_log_in(stack, kafka_topic, tmp_path):
    host = f"access-{uuid.uuid4().hex[:8]}"
    made = add_host(stack.replace(topic=kafka_topic), host, tmp_path / "agent.password")
    who = KafkaLogin(made.principal, made.password_file, stack.kafka_ca)
    assert _send(_options(stack, who), kafka_topic).topic == kafka_topic
    assert remove_host(stack, host)
    with pytest.raises(KafkaTimeoutError):
        _send(_options(stack, who), kafka_topic)
