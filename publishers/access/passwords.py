"""Reader passwords as argon2id hashes (argon2-cffi, the library's own defaults, RFC 9106's
low-memory profile): nothing here stores or logs a password, only its PHC string."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong
# password and the answer's timing does not tell which names exist.
_DUMMY = _HASHER.hash("not anyone's password")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("an empty password")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; None (no such reader, or a proxy-only one
    without a password) never matches but takes the same time."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
