"""Secret files (passwords, keys) and the secrets derived from the server's one master key.

Every secret lives in its own file, never in a settings file, a flag or an environment
variable (those end up in shell histories, `ps` and logs). A secret file that anyone but its
owner may read is refused: the check is the one ssh makes of a private key, and it is the
only way a desktop's administrator learns that the file was copied carelessly.

The server keeps one random master key (`<secrets_dir>/master.key`). The Kafka password of
every principal but the administrator's is derived from it (`derived_password`), and each
principal signs its events with a key derived from its password (`signing_key`). So a desktop
holds one secret, its password file; and the processor, which holds the master key, can
recompute any principal's signing key to check who wrote an event, without a table of
passwords that could drift from the broker's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

MASTER_KEY = "master.key"
# Owner read/write only: what `ensure_secret` creates and `read_secret` demands.
SECRET_MODE = 0o600


class SecretFileError(ValueError):
    """A secret file is missing, empty, or readable by others; the message says which."""


def read_secret(path: Path) -> str:
    """The secret in `path` (surrounding whitespace removed), refusing a file others can read."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretFileError(f"cannot read secret file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"secret file {path} is open to others (mode {stat.S_IMODE(mode):04o});"
            f" run: chmod 600 {path}"
        )
    if not text:
        raise SecretFileError(f"secret file {path} is empty")
    return text


def write_secret(path: Path, value: str, replace: bool = True) -> None:
    """Write `value` to `path`, readable by its owner only from the first byte on; with
    `replace=False`, FileExistsError when `path` is there already (checked atomically)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # O_EXCL and the mode at creation: no moment when the file exists with wider rights.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_secret(path: Path, nbytes: int = 32) -> str:
    """The secret in `path`, made (random, URL-safe) the first time it is asked for."""
    path = Path(path).expanduser()
    if not path.exists():
        # Another process may make it first: theirs is the one everybody uses.
        with contextlib.suppress(FileExistsError):
            write_secret(path, secrets.token_urlsafe(nbytes), replace=False)
    return read_secret(path)


def derived_password(master: str, principal: str) -> str:
    """The Kafka password of `principal` (e.g. `agent-alice-pc`), derived from the master key."""
    digest = hmac.digest(master.encode(), b"kafka-password\0" + principal.encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signing_key(password: str) -> bytes:
    """The key a principal signs its events with, derived from its Kafka password."""
    return hmac.digest(password.encode(), b"chatchannels event signing", "sha256")


def fingerprint(secret: str) -> str:
    """A short name for a secret that can be logged: it tells two secrets apart, nothing more."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
