"""The agent's Kafka login: it refuses to start without its password file, or with one that
others may read, and never shows the password."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.ingest.agent.config import load_agent_config
from chatchannels.secret_files import write_secret
from chatchannels.settings import Settings

PASSWORD = "s3cret-password-of-alice"


def _config(tmp_path: Path, **keys: str) -> Path:
    path = tmp_path / "agent.toml"
    lines = [
        'host_id = "alice-pc"',
        f"spool = {json.dumps(str(tmp_path / 'spool.db'))}",
        'chats = ["#a/$b;1"]',
        f"dbus_address = {json.dumps('unix:path=' + str(tmp_path / 'no-bus'))}",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ca(tmp_path: Path) -> Path:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    return ca


def _run(config: Path):
    return CliRunner().invoke(main, ["agent", "run", "--config", str(config)])


def test_run_without_a_password_file_refuses_and_says_where_to_get_one(tmp_path):
    result = _run(_config(tmp_path))
    assert result.exit_code == 2, result.output
    assert "kafka_password_file is not set for agent-alice-pc" in result.output
    assert "chatchannels hosts add alice-pc" in result.output


def test_run_refuses_a_password_file_others_can_read(tmp_path):
    secret = tmp_path / "kafka.password"
    write_secret(secret, PASSWORD)
    secret.chmod(0o644)
    config = _config(tmp_path, kafka_password_file=str(secret), kafka_ca_file=str(_ca(tmp_path)))
    result = _run(config)
    assert result.exit_code == 2, result.output
    assert f"chmod 600 {secret}" in result.output
    assert PASSWORD not in result.output
    # Nothing was started: no spool was made.
    assert not (tmp_path / "spool.db").exists()


def test_run_refuses_a_missing_ca(tmp_path):
    secret = tmp_path / "kafka.password"
    write_secret(secret, PASSWORD)
    config = _config(
        tmp_path, kafka_password_file=str(secret), kafka_ca_file=str(tmp_path / "none.pem")
    )
    result = _run(config)
    assert result.exit_code == 2, result.output
    assert "CA certificate" in result.output and "none.pem" in result.output


def test_the_login_is_scram_over_tls_as_the_hosts_principal(tmp_path):
    secret = tmp_path / "kafka.password"
    write_secret(secret, PASSWORD)
    ca = _ca(tmp_path)
    config = load_agent_config(
        _config(tmp_path, kafka_password_file=str(secret), kafka_ca_file=str(ca)), Settings()
    )
    assert config.kafka_login().client_options() == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(ca),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "agent-alice-pc",
        "sasl_plain_password": PASSWORD,
    }
    named = load_agent_config(
        _config(tmp_path, kafka_user="desk-7", kafka_password_file=str(secret)),
        Settings(stack_dir=tmp_path),
    )
    assert named.kafka_login().user == "desk-7"
    # Without kafka_ca_file: the CA of the settings (the stack's, or `kafka_ca_file`).
    assert named.kafka_login().ca_file == tmp_path / "kafka" / "tls" / "ca.pem"
