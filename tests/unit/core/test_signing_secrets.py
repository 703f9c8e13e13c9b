"""Where the signatures' secrets come from (chatchannels/signing_secrets.py), and the clear
refusals when they are missing or careless."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatchannels.event_signing import IMPORTER
from chatchannels.ingest.agent.config import AgentConfig, AgentConfigError
from chatchannels.ingest.agent.runner import Agent
from chatchannels.secret_files import MASTER_KEY, SecretFileError, derived_password, read_secret
from chatchannels.settings import Settings, SettingsError
from chatchannels.signing_secrets import (
    importer_signer,
    load_verifier,
    password_file,
    provision_password,
)


def settings(root: Path, **more) -> Settings:
    return Settings(secrets_dir=str(root / "secrets"), **more)


def test_the_processor_without_the_master_key_says_where_and_why(tmp_path):
    with pytest.raises(SecretFileError, match=r"master\.key.*checks who signed each event"):
        load_verifier(settings(tmp_path))


def test_a_provisioned_password_is_the_one_the_processor_derives(tmp_path):
    root = tmp_path / "secrets"
    path = provision_password(root, IMPORTER)
    assert path == password_file(root, IMPORTER)
    assert read_secret(path) == derived_password(read_secret(root / MASTER_KEY), IMPORTER)
    signer = importer_signer(settings(tmp_path))
    verifier = load_verifier(settings(tmp_path))
    assert verifier.signer(b"k", b"v", signer.headers(b"k", b"v"), broker_utc=1.0) == IMPORTER


def test_unsigned_until_is_an_iso_time_in_utc(tmp_path):
    provision_password(tmp_path / "secrets", IMPORTER)
    assert load_verifier(settings(tmp_path)).unsigned_until is None
    zoned = settings(tmp_path, unsigned_until="2026-12-07T22:00:00Z")
    assert load_verifier(zoned).unsigned_until == 1_796_680_800.0
    naive = settings(tmp_path, unsigned_until="2026-12-07T22:00:00")
    assert load_verifier(naive).unsigned_until == 1_796_680_800.0
    with pytest.raises(SettingsError, match="unsigned_until"):
        load_verifier(settings(tmp_path, unsigned_until="yesterday"))


def _config(tmp_path: Path, password_file: str) -> AgentConfig:
    return AgentConfig(
        "alice-pc", tmp_path / "spool.db", "k:1", "t", kafka_password_file=password_file
    )


def test_an_agent_without_a_password_file_refuses_to_start(tmp_path):
    with pytest.raises(AgentConfigError, match="kafka_password_file is not set"):
        Agent(_config(tmp_path, ""))


def test_an_agent_refuses_a_password_file_others_can_read(tmp_path):
    path = tmp_path / "kafka.password"
    path.write_text("secret\n")
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        Agent(_config(tmp_path, str(path)))
    path.chmod(0o600)
    assert Agent(_config(tmp_path, str(path))).signer.principal == "agent-alice-pc"
