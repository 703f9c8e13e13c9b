"""The built-in sign-in's pages: `/login` (GET the form, POST the name and password) and
`/logout` (GET a button, POST to sign out), over Werkzeug requests.

Both POSTs need the form's CSRF field (csrf.py). Failed sign-ins are limited per address and
per name (ratelimit.py): past the limit the answer is 429 with Retry-After, before the
password is even checked. Success sets the session cookie (HttpOnly, SameSite, Secure unless
turned off for plain-http development, Path=/, Max-Age the session's lifetime) and goes to
`next`, which must be a path on this site. Signing out removes the cookie from the browser;
the reader's other sessions live on until they expire or `users passwd` ends them.
"""

from __future__ import annotations

import logging
import math

from jinja2 import Environment
from werkzeug.wrappers import Request, Response

from chatchannels.publishers.access.csrf import CsrfSigner, new_nonce
from chatchannels.publishers.access.identity import Identity
from chatchannels.publishers.access.passwords import verify_password
from chatchannels.publishers.access.ratelimit import FailureLimiter
from chatchannels.publishers.access.readers import Reader

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
# Form fields longer than this are not a name or a password anyone typed.
MAX_FIELD = 1024


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site, never another origin."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or not target.isprintable()
        or len(target) > 2000
    ):
        return "/"
    return target


class SignIn:
    def __init__(
        self, identity: Identity, limiter: FailureLimiter, key: bytes, env: Environment
    ) -> None:
        self.identity = identity
        self.limiter = limiter
        self.csrf = CsrfSigner(key)
        self.env = env

    def login(self, request: Request, reader: Reader) -> Response:
        if request.method == "POST":
            return self._sign_in(request)
        return self._form(request, "signin.html", reader, next=safe_next(request.args.get("next")))

    def logout(self, request: Request, reader: Reader) -> Response:
        if request.method != "POST":
            return self._form(request, "signout.html", reader)
        if not self._csrf_ok(request):
            return self._form(request, "signout.html", reader, status=400)
        response = Response(status=303, headers={"Location": "/"})
        response.delete_cookie(self.identity.config.session_cookie, **self._session_attributes())
        return response

    def _sign_in(self, request: Request) -> Response:
        name = request.form.get("name", "")[:MAX_FIELD]
        password = request.form.get("password", "")[:MAX_FIELD]
        target = safe_next(request.form.get("next"))
        again = {"name": name, "next": target}
        if not self._csrf_ok(request):
            expired = "The form expired; try again."
            return self._form(request, "signin.html", None, status=400, error=expired, **again)
        client = self.identity.client_address(request.remote_addr, request.headers)
        keys = [("address", client), ("name", name.casefold())]
        wait = self.limiter.retry_after(keys)
        if wait > 0:
            log.warning("sign-in refused: too many failures (from %s)", client)
            response = self._form(
                request,
                "signin.html",
                None,
                status=429,
                error="Too many failed attempts; wait a few minutes.",
                **again,
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        record = self.identity.directory.fresh_reader(name) if name else None
        if not verify_password(record.password_hash if record else None, password):
            self.limiter.failed(keys)
            log.info("sign-in failed from %s", client)
            return self._form(
                request, "signin.html", None, status=401, error="Wrong name or password.", **again
            )
        assert record is not None
        self.limiter.succeeded(keys[1])
        log.info("%s signed in from %s", record.name, client)
        config = self.identity.config
        response = Response(status=303, headers={"Location": target})
        response.set_cookie(
            config.session_cookie,
            self.identity.sessions.issue(self.identity.session_claim(record)),
            max_age=config.session_max_age_s,
            **self._session_attributes(),
        )
        return response

    def _session_attributes(self) -> dict:
        """The session cookie's attributes: a browser deletes a cookie only when they match."""
        config = self.identity.config
        return {
            "path": "/",
            "secure": config.cookie_secure,
            "httponly": True,
            "samesite": config.cookie_samesite,
        }

    def _csrf_ok(self, request: Request) -> bool:
        field = request.form.get("csrf", "")[:MAX_FIELD]
        nonce = request.cookies.get(self.identity.config.csrf_cookie, "")
        return self.csrf.verify(field, nonce)

    def _form(
        self,
        request: Request,
        template: str,
        reader: Reader | None,
        status: int = 200,
        **fields: str,
    ) -> Response:
        config = self.identity.config
        nonce = request.cookies.get(config.csrf_cookie) or new_nonce()
        fields.setdefault("name", "")
        fields.setdefault("next", "/")
        fields.setdefault("error", "")
        body = self.env.get_template(template).render(
            root="/",
            reader=reader.name if reader else None,
            csrf=self.csrf.form_field(nonce),
            **fields,
        )
        response = Response(body, status=status, content_type=HTML)
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(
            config.csrf_cookie,
            nonce,
            path="/",
            secure=config.cookie_secure,
            httponly=True,
            samesite="Strict",
        )
        return response
