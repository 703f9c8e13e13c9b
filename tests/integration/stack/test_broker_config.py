"""`stack broker-config` as docker-compose's Kafka uses it: format the storage with its
`admin.scram`, start the broker on its `server.properties`, and the whole login path works
(the server's principals, a desktop's) with the CA it names."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from kafka import KafkaProducer

from chatchannels.kafka_auth import KafkaLogin
from chatchannels.stack.kafka import KafkaPaths, java_command, wait_kafka_ready, write_broker_config
from chatchannels.stack.kafka_principals import add_host, create_raw_topic, ensure_server_principals
from chatchannels.stack.processes import die_with_parent
from tests.support.stack import private_stack_settings

pytestmark = pytest.mark.integration


def test_the_compose_broker_configuration_runs_a_broker_that_takes_logins(stack, private_stack_dir):
    node = private_stack_settings(stack, private_stack_dir)
    out = private_stack_dir / "kafka-config"
    ca = write_broker_config(node, out, "localhost", private_stack_dir / "kafka-data")
    # What compose's `kafka` service runs (kafka-storage.sh and kafka-server-start.sh are
    # these two classes).
    scram = (out / "admin.scram").read_text().strip()
    cluster = (out / "cluster.id").read_text().strip()
    config = str(out / "server.properties")
    node.stack_dir.joinpath("kafka").mkdir(exist_ok=True)
    (node.stack_dir / "kafka" / "log4j2.properties").write_text("rootLogger.level = warn\n")
    fmt = subprocess.run(
        java_command(
            node,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster,
            "-c",
            config,
            "--add-scram",
            scram,
        ),
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr[-2000:]
    log = (private_stack_dir / "broker.log").open("wb")
    broker = subprocess.Popen(
        java_command(node, "-Xmx384m", "kafka.Kafka", config),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    # What wait_kafka_ready watches, as `stack up` writes it.
    KafkaPaths.of(node).pid.write_text(f"{broker.pid}\n")
    try:
        # The broker's certificate names localhost; its CA is the one the config returned.
        clients = node.replace(kafka_host="localhost", kafka_ca_file=str(ca))
        wait_kafka_ready(clients, timeout=120)
        ensure_server_principals(clients)
        topic = f"compose.{uuid.uuid4().hex[:8]}"
        create_raw_topic(clients, topic, partitions=1)
        made = add_host(clients.replace(topic=topic), "compose-pc", private_stack_dir / "pc.pw")
        who = KafkaLogin(made.principal, made.password_file, clients.kafka_ca)
        producer = KafkaProducer(
            bootstrap_servers=clients.kafka_bootstrap,
            **who.client_options(),
            acks="all",
            enable_idempotence=True,
        )
        try:
            assert producer.send(topic, key=b"compose-pc", value=b"{}").get(30).topic == topic
        finally:
            producer.close(timeout=5)
    finally:
        broker.terminate()
        try:
            broker.wait(60)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait(10)
        log.close()
