"""`chatchannels hosts add|list|remove` on the real broker: the desktop's password file, its
login, and its end."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from chatchannels.kafka_auth import KafkaLogin
from chatchannels.settings import settings_env

pytestmark = pytest.mark.integration


def _hosts(stack, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCHANNELS_")}
    env.update(settings_env(stack))
    done = subprocess.run(
        [sys.executable, "-m", "chatchannels.cli", "hosts", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _write(stack, who: KafkaLogin, topic: str) -> None:
    producer = KafkaProducer(
        bootstrap_servers=stack.kafka_bootstrap,
        **who.client_options(),
        acks="all",
        enable_idempotence=True,
        bootstrap_timeout_ms=4000,
        max_block_ms=4000,
    )
    try:
        producer.send(topic, key=b"k", value=b"{}").get(timeout=20)
    finally:
        producer.close(timeout=1)


def test_add_writes_an_owner_only_password_file_that_logs_in_and_remove_ends_it(
    stack, kafka_topic, tmp_path
):
    host = f"cli-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "desk" / "kafka.password"
    made = _hosts(stack, "add", host, "--topic", kafka_topic, "--out", str(out))
    assert made == {
        "host": host,
        "principal": f"agent-{host}",
        "password_file": str(out),
        "ca_file": str(stack.kafka_ca),
        "topic": kafka_topic,
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    password = out.read_text().strip()
    assert len(password) >= 32
    who = KafkaLogin(f"agent-{host}", out, stack.kafka_ca)
    _write(stack, who, kafka_topic)

    listed = _hosts(stack, "list")["hosts"]
    assert {"host": host, "principal": f"agent-{host}", "topics": [kafka_topic]} in listed

    # Again: the same password, so a lost file is rewritten without touching the desktop.
    again = tmp_path / "again.password"
    _hosts(stack, "add", host, "--topic", kafka_topic, "--out", str(again))
    assert again.read_text().strip() == password

    assert _hosts(stack, "remove", host) == {"host": host, "removed": True}
    assert host not in {h["host"] for h in _hosts(stack, "list")["hosts"]}
    with pytest.raises(KafkaTimeoutError):
        _write(stack, who, kafka_topic)
    assert _hosts(stack, "remove", host) == {"host": host, "removed": False}
