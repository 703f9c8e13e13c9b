"""Cross-site request forgery on the sign-in and sign-out forms: a signed double submit.

The server gives the browser a random nonce in an HttpOnly, SameSite cookie and puts the
nonce, signed, into the form. A POST counts only when its form field verifies (this server
signed it, recently) and names the nonce of the cookie that came with it. Another site can
make a browser POST, but cannot read the form's field, nor set our cookie; SameSite stops
the browser sending the cookie on such a POST in the first place.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadData, URLSafeTimedSerializer

CSRF_SALT = "chatchannels.csrf"
# A form left open longer than this must be reloaded.
FORM_MAX_AGE_S = 3600


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


class CsrfSigner:
    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=CSRF_SALT)

    def form_field(self, nonce: str) -> str:
        return self._serializer.dumps(nonce)

    def verify(self, form_field: str, cookie_nonce: str) -> bool:
        if not form_field or not cookie_nonce:
            return False
        try:
            nonce = self._serializer.loads(form_field, max_age=FORM_MAX_AGE_S)
        except (BadData, ValueError, TypeError):
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, cookie_nonce)
