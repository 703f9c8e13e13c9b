"""Apache Kafka 4.x as one KRaft node (broker + controller) from Maven Central jars."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import struct
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chatchannels.kafka_auth import ADMIN, MECHANISM, client_options, password_file
from chatchannels.secret_files import ensure_secret, write_secret
from chatchannels.settings import Settings
from chatchannels.stack.kafka_tls import TlsFiles, ensure_tls
from chatchannels.stack.processes import (
    StackError,
    port_open,
    process_state,
    read_pid,
    terminate,
    wait_for,
)

# The raw topic is the archive: never deleted, broker's clock on every record (the
# processor compares it with each agent's clock to estimate the host's offset).
RAW_TOPIC_CONFIGS = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "message.timestamp.type": "LogAppendTime",
    "cleanup.policy": "delete",
}


@dataclass(frozen=True)
class KafkaPaths:
    home: Path
    libs: Path
    data: Path
    config: Path
    log4j: Path
    pid: Path
    log: Path
    tls: Path
    # Made when the storage was formatted with the admin's SCRAM credential.
    sasl_marker: Path

    @classmethod
    def of(cls, settings: Settings) -> KafkaPaths:
        home = settings.stack_dir / "kafka"
        return cls(
            home=home,
            libs=home / "libs",
            data=home / "data",
            config=home / "server.properties",
            log4j=home / "log4j2.properties",
            pid=home / "kafka.pid",
            log=settings.stack_dir / "logs" / "kafka.log",
            tls=home / "tls",
            sasl_marker=home / "sasl.formatted",
        )


def kafka_jar(settings: Settings) -> Path:
    return KafkaPaths.of(settings).libs / f"kafka_2.13-{settings.kafka_version}.jar"


def fetch_kafka(settings: Settings) -> bool:
    """Resolve the broker's jars with Maven into <stack>/kafka/libs. Idempotent; True if fetched."""
    paths = KafkaPaths.of(settings)
    if kafka_jar(settings).exists():
        return False
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is not installed; it resolves Kafka from Maven Central")
    paths.home.mkdir(parents=True, exist_ok=True)
    pom = paths.home / "pom.xml"
    pom.write_bytes(resources.files("chatchannels.stack").joinpath("pom.xml").read_bytes())
    staging = paths.home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "package",
        f"-Dkafka.version={settings.kafka_version}",
        f"-Dkafka.libs={staging}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(
            f"Maven could not resolve Kafka {settings.kafka_version}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    # Rename last, so an interrupted fetch is never mistaken for a complete one.
    shutil.rmtree(paths.libs, ignore_errors=True)
    staging.rename(paths.libs)
    shutil.rmtree(paths.home / "target", ignore_errors=True)
    return True


def server_properties(
    settings: Settings,
    data_dir: Path,
    admin_password: str,
    tls: TlsFiles,
    advertise: str | None = None,
) -> str:
    """The node's configuration: clients on kafka_host:kafka_port, known to them as
    `advertise` (default kafka_host). It holds the admin's password (the broker logs in to
    itself), so it is written owner-only."""
    host, port, cport = settings.kafka_host, settings.kafka_port, settings.kafka_controller_port
    scram = f'username="{ADMIN}" password="{admin_password}";'
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        # Clients: TLS and SCRAM only. The controller's listener is bound to the loopback
        # address, out of the network's reach, and takes the admin only (PLAIN: KRaft
        # cannot check SCRAM there, the credentials live in the metadata it serves).
        "listeners": f"CLIENTS://{host}:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"CLIENTS://{advertise or host}:{port}",
        "listener.security.protocol.map": "CLIENTS:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENTS",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.clients.sasl.enabled.mechanisms": MECHANISM,
        "listener.name.clients.scram-sha-512.sasl.jaas.config": (
            f"org.apache.kafka.common.security.scram.ScramLoginModule required {scram}"
        ),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required"
            f' username="{ADMIN}" password="{admin_password}" user_{ADMIN}="{admin_password}";'
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.broker),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_cert),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # One partition each: the first group join and InitProducerId stay cheap on 2 cores.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def new_cluster_id() -> str:
    # Kafka's own format: 16 random bytes, URL-safe base64 without padding; a leading '-'
    # would be read as an option by StorageTool.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def java_command(settings: Settings, *args: str) -> list[str]:
    paths = KafkaPaths.of(settings)
    java = shutil.which("java")
    if java is None:
        raise StackError("java is not installed; Kafka 4 needs Java 17 or newer")
    return [
        java,
        f"-Dlog4j2.configurationFile=file:{paths.log4j}",
        "-cp",
        f"{paths.libs}/*",
        *args,
    ]


def write_broker_config(settings: Settings, out: Path, advertise: str, data_dir: Path) -> Path:
    """A broker's configuration for another host (docker-compose's Kafka): in `out`, its
    TLS files, `server.properties` (clients on every address of that host, known to them
    as `advertise`), `cluster.id`, `admin.scram` (the `--add-scram` argument its storage is
    formatted with) and `admin-client.properties` (for Kafka's own tools). The admin's
    password is the one in secrets_dir. Returns the CA the clients must trust: copied to
    kafka_ca_file when that is set (never over the local stack's own CA)."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls = ensure_tls(out / "tls")
    admin_password = ensure_secret(password_file(settings, ADMIN))
    node = settings.replace(kafka_host="0.0.0.0")
    write_secret(
        out / "server.properties", server_properties(node, data_dir, admin_password, tls, advertise)
    )
    write_secret(out / "admin.scram", f"{MECHANISM}=[name={ADMIN},password={admin_password}]")
    write_secret(
        out / "admin-client.properties",
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={MECHANISM}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={tls.ca_cert}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required"
        f' username="{ADMIN}" password="{admin_password}";\n',
    )
    if not (out / "cluster.id").exists():
        (out / "cluster.id").write_text(new_cluster_id() + "\n")
    if settings.kafka_ca_file:
        settings.kafka_ca.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tls.ca_cert, settings.kafka_ca)
        return settings.kafka_ca
    return tls.ca_cert


def _format_storage(settings: Settings, admin_password: str) -> None:
    """Format the node's storage with the admin's SCRAM credential in its first metadata
    (the broker logs in to itself as admin, so it must exist before the broker starts).
    The arguments go through a java @argfile, owner-only and removed at once, so the
    password never shows in the process list."""
    paths = KafkaPaths.of(settings)
    argfile = paths.home / ".format.args"
    args = [
        "kafka.tools.StorageTool",
        "format",
        "-t",
        new_cluster_id(),
        "-c",
        str(paths.config),
        "--ignore-formatted",
        "--add-scram",
        f"{MECHANISM}=[name={ADMIN},password={admin_password}]",
    ]
    write_secret(argfile, "\n".join(args))
    try:
        fmt = subprocess.run(java_command(settings, f"@{argfile}"), capture_output=True, text=True)
    finally:
        argfile.unlink(missing_ok=True)
    if fmt.returncode != 0:
        raise StackError(f"kafka storage format failed:\n{fmt.stdout}{fmt.stderr}")


def kafka_pid(settings: Settings) -> int | None:
    return read_pid(KafkaPaths.of(settings).pid)


def start_kafka(settings: Settings) -> int:
    """Format storage on first use, start the node detached, return its pid (no-op if running)."""
    paths = KafkaPaths.of(settings)
    running = kafka_pid(settings)
    if running:
        return running
    if not kafka_jar(settings).exists():
        raise StackError(f"Kafka jars missing in {paths.libs}; run `chatchannels stack fetch`")
    if port_open(settings.kafka_host, settings.kafka_port):
        raise StackError(
            f"port {settings.kafka_host}:{settings.kafka_port} is taken by another process; "
            "set CHATCHANNELS_KAFKA_PORT to a free port"
        )
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    tls = ensure_tls(paths.tls)
    admin_password = ensure_secret(password_file(settings, ADMIN))
    write_secret(paths.config, server_properties(settings, paths.data, admin_password, tls))
    paths.log4j.write_bytes(
        resources.files("chatchannels.stack").joinpath("log4j2.properties").read_bytes()
    )
    if not (paths.data / "meta.properties").exists():
        _format_storage(settings, admin_password)
        paths.sasl_marker.touch()
    elif not paths.sasl_marker.exists():
        raise StackError(
            f"the Kafka storage in {paths.data} was formatted before the broker took logins"
            " (SASL_SSL), so its admin has no credential. It is a development stack: run"
            f" `chatchannels stack down`, remove {paths.data}, and `stack up` again (its"
            " topics are lost)"
        )
    heap = settings.kafka_heap
    cmd = java_command(
        settings,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={paths.log.parent}",
        "kafka.Kafka",
        str(paths.config),
    )
    with paths.log.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pid.write_text(f"{proc.pid}\n")
    return proc.pid


def wait_kafka_ready(settings: Settings, timeout: float = 90) -> None:
    from kafka import KafkaAdminClient

    paths = KafkaPaths.of(settings)

    def probe() -> bool:
        if not kafka_pid(settings):
            tail = paths.log.read_text(errors="replace")[-2000:] if paths.log.exists() else ""
            raise StackError(f"Kafka exited during start-up; end of {paths.log}:\n{tail}")
        if not port_open(settings.kafka_host, settings.kafka_port):
            return False
        admin = KafkaAdminClient(
            **client_options(settings), request_timeout_ms=5000, client_id="chatchannels-stack"
        )
        try:
            return bool(admin.describe_cluster().get("brokers"))
        finally:
            admin.close()

    wait_for(f"Kafka at {settings.kafka_bootstrap}", probe, timeout)


def kafka_answer_problem(settings: Settings, timeout: float = 2.0) -> str | None:
    """None if the broker answers an ApiVersions request within `timeout`, else what was
    seen. Cheap (one small request on a raw socket, no client bootstrap), and it tells a
    frozen broker (SIGSTOP: the kernel still accepts the connection) from a working one."""
    pid = kafka_pid(settings)
    if pid is not None and process_state(pid) == "T":
        return f"the Kafka broker (pid {pid}) is stopped (SIGSTOP; state T)"
    # api_key 18 (ApiVersions), version 0, correlation id 7, client id "probe"; no body.
    request = struct.pack(">hhih5s", 18, 0, 7, 5, b"probe")
    if not settings.kafka_ca.is_file():
        return f"the Kafka CA certificate {settings.kafka_ca} is missing (kafka_ca_file)"
    try:
        # The listener speaks TLS; ApiVersions is answered before SASL, so no login.
        context = ssl.create_default_context(cafile=str(settings.kafka_ca))
        with (
            socket.create_connection(
                (settings.kafka_host, settings.kafka_port), timeout=timeout
            ) as raw,
            context.wrap_socket(raw, server_hostname=settings.kafka_host) as sock,
        ):
            sock.sendall(struct.pack(">i", len(request)) + request)
            header = _read_exactly(sock, 8)
    except OSError as exc:
        return f"Kafka at {settings.kafka_bootstrap}: {exc!r}"
    if len(header) < 8 or struct.unpack(">ii", header)[1] != 7:
        return f"Kafka at {settings.kafka_bootstrap} answered {header!r} to ApiVersions"
    return None


def _read_exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    # TLS sockets take no MSG_WAITALL.
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def stop_kafka(settings: Settings, timeout: float = 60) -> bool:
    pid = kafka_pid(settings)
    if pid is None:
        return False
    terminate(pid, timeout)
    KafkaPaths.of(settings).pid.unlink(missing_ok=True)
    return True


def ensure_topic(settings: Settings, name: str, partitions: int) -> bool:
    """Create the topic with the archive's configs if missing. True if created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**client_options(settings), client_id="chatchannels")
    try:
        if name in admin.list_topics():
            return False
        try:
            admin.create_topics(
                [NewTopic(name, partitions, 1, topic_configs=dict(RAW_TOPIC_CONFIGS))]
            )
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def broker_version(settings: Settings, principal: str = ADMIN) -> tuple[int, ...]:
    """The broker's version as kafka-python infers it from the API versions it serves
    (asked at login: no permission on the cluster needed)."""
    from kafka import KafkaAdminClient
    from kafka.protocol.broker_version_data import infer_broker_version_from_api_versions

    admin = KafkaAdminClient(**client_options(settings, principal), client_id="chatchannels")
    try:
        return tuple(infer_broker_version_from_api_versions(admin.api_versions()))
    finally:
        admin.close()


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """The topic's effective configuration values, by name."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(**client_options(settings), client_id="chatchannels")
    try:
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        admin.close()
    entries = result.get("topic", {}).get(name, {})
    return {key: str(entry["value"]) for key, entry in entries.items()}


def end_offsets(settings: Settings, topic: str, principal: str = ADMIN) -> dict[int, int]:
    """The next offset to be written in each partition of `topic`, asked as `principal`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **client_options(settings, principal),
        client_id="chatchannels",
        enable_auto_commit=False,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def delete_topics(settings: Settings, names: list[str]) -> None:
    from kafka import KafkaAdminClient

    if not names:
        return
    admin = KafkaAdminClient(**client_options(settings), client_id="chatchannels")
    try:
        admin.delete_topics(names)
    finally:
        admin.close()


def list_topics(settings: Settings) -> list[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**client_options(settings), client_id="chatchannels")
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()
