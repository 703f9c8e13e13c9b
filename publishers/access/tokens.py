"""Feed tokens: random secrets Atom readers carry in the feed URL (they cannot sign in).

Only a token's sha256 is stored: a copy of the table gives no one a working URL. A plain
digest suffices (no slow hash): the token is 32 random bytes, not a guessable password.
"""

from __future__ import annotations

import hashlib
import secrets
import string

TOKEN_BYTES = 32
# urlsafe base64 of TOKEN_BYTES: what a token looks like; anything else is not looked up.
TOKEN_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
TOKEN_LENGTH = 43


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def looks_like_token(text: str) -> bool:
    return len(text) == TOKEN_LENGTH and set(text) <= TOKEN_ALPHABET
