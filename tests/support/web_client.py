"""A plain HTTP client for tests of `serve`: no redirects followed, no cookie jar, every
Set-Cookie visible with its flags, so tests see exactly what a browser would be told."""

from __future__ import annotations

import http.client
import re
import socket
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_cookies(self) -> dict[str, str]:
        """name -> the whole Set-Cookie line (value and flags)."""
        found = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                found[value.split("=", 1)[0]] = value
        return found

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Browserless:
    """Requests to one server, keeping the cookies it sets (as a browser would, minus the
    flags' enforcement: the tests check the flags themselves)."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            sent = dict(headers or {})
            body = None
            if form is not None:
                body = urlencode(form).encode()
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request(method, path, body=body, headers=sent)
            reply = conn.getresponse()
            answer = Answer(reply.status, reply.getheaders(), reply.read())
        finally:
            conn.close()
        for line in answer.set_cookies().values():
            morsel = next(iter(SimpleCookie(line).values()))
            if morsel["max-age"] == "0" or morsel.value == "":
                self.cookies.pop(morsel.key, None)
            else:
                self.cookies[morsel.key] = morsel.value
        return answer

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers)

    def sign_in(self, name: str, password: str, next_path: str = "/") -> Answer:
        form = self.get("/login")
        token = CSRF_FIELD.search(form.text)
        assert token, form.text
        return self.request(
            "POST",
            "/login",
            form={"csrf": token[1], "name": name, "password": password, "next": next_path},
        )

    def sign_out(self) -> Answer:
        form = self.get("/logout")
        token = CSRF_FIELD.search(form.text)
        assert token, form.text
        return self.request("POST", "/logout", form={"csrf": token[1]})


def raw_exchange(
    host: str, port: int, data: bytes, timeout: float = 10, half_close: bool = True
) -> bytes:
    """Send `data` as it is and read until the server closes or `timeout` passes. With
    `half_close` the client says it has sent everything (a server must answer what it got);
    nginx takes that as the client leaving, so requests to it end in Connection: close."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
