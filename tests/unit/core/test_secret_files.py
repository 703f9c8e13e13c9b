import os
import stat

import pytest

from chatchannels.secret_files import (
    SecretFileError,
    derived_password,
    ensure_secret,
    fingerprint,
    read_secret,
    signing_key,
    write_secret,
)


def test_ensure_makes_an_owner_only_secret_once(tmp_path):
    path = tmp_path / "secrets" / "master.key"
    first = ensure_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(first) >= 40
    assert ensure_secret(path) == first


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_secret_others_can_read_is_refused_naming_the_fix(tmp_path, mode):
    path = tmp_path / "agent.password"
    write_secret(path, "hunter2")
    os.chmod(path, mode)
    with pytest.raises(SecretFileError) as err:
        read_secret(path)
    assert f"chmod 600 {path}" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_missing_and_empty_secrets_are_refused(tmp_path):
    with pytest.raises(SecretFileError, match="cannot read"):
        read_secret(tmp_path / "nope")
    write_secret(tmp_path / "empty", "  ")
    with pytest.raises(SecretFileError, match="empty"):
        read_secret(tmp_path / "empty")


def test_derived_passwords_differ_by_principal_and_master():
    a = derived_password("m1", "agent-alice-pc")
    assert a == derived_password("m1", "agent-alice-pc")
    assert a != derived_password("m1", "agent-bob-pc")
    assert a != derived_password("m2", "agent-alice-pc")
    assert signing_key(a) != signing_key(derived_password("m1", "agent-bob-pc"))
    assert len(signing_key(a)) == 32


def test_a_fingerprint_does_not_hold_the_secret():
    assert "hunter2" not in fingerprint("hunter2")
    assert fingerprint("a") != fingerprint("b")


def test_writing_without_replace_keeps_the_first_secret(tmp_path):
    path = tmp_path / "k"
    write_secret(path, "first", replace=False)
    with pytest.raises(FileExistsError):
        write_secret(path, "second", replace=False)
    write_secret(path, "third")
    assert read_secret(path) == "third"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]
