"""Exceptions of the Desktop API client.

`ERROR <code> <text>` replies become `SkypeApiError` subclasses keyed on the code, because
the description text is free-form and varies between Skype builds (spec §1.5); everything
else (unparseable lines, refused attach, Skype gone, timeouts) has its own type.
"""

from __future__ import annotations

from typing import Protocol


class DesktopApiError(Exception):
    """Base of every error raised by chatchannels.ingest.desktop_api."""


class ApiParseError(DesktopApiError, ValueError):
    """A line (or a value inside one) is not valid Desktop API text; `line` is kept verbatim."""

    def __init__(self, line: str, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"not a Desktop API line ({reason}): {line!r}")


class SkypeApiError(DesktopApiError):
    """Skype answered a command with `ERROR <code> [text]`."""

    codes: frozenset[int] = frozenset()

    def __init__(self, code: int, text: str, command: str) -> None:
        self.code = code
        self.text = text
        self.command = command
        detail = f" {text}" if text else ""
        super().__init__(f"ERROR {code}{detail} (command: {command!r})")


class GeneralSyntaxError(SkypeApiError):
    codes = frozenset({1})


class UnknownCommand(SkypeApiError):
    codes = frozenset({2})


class SearchError(SkypeApiError):
    """Unknown SEARCH noun, missing or forbidden target."""

    codes = frozenset({3, 4, 67, 107})


class UnknownObject(SkypeApiError):
    """The object (or general parameter) named in GET/SET does not exist or is malformed."""

    codes = frozenset({7, 8, 9, 14, 15, 18, 26, 30, 31})


class InvalidProperty(SkypeApiError):
    """The object exists but the property (or SET action) is not valid for it."""

    codes = frozenset({10, 16, 32, 106})


class InvalidProtocolVersion(SkypeApiError):
    codes = frozenset({27})


class EmptyMessage(SkypeApiError):
    codes = frozenset({43})


class AccessDenied(SkypeApiError):
    """The application is not (or no longer) authorised; NAME refusal is the bare `ERROR 68`."""

    codes = frozenset({68})


class InvalidChatName(UnknownObject):
    """GET CHAT of an unknown chat, and of every cloud `19:…@thread.skype` chat (spec §5.1)."""

    codes = frozenset({105})


class ChatCommandFailed(SkypeApiError):
    """A CHAT / ALTER CHAT / CHATMESSAGE command failed (errors 500–511, 527, 615)."""

    codes = frozenset({500, *range(502, 512), 527, 615})


class ChatNotFound(ChatCommandFailed, UnknownObject):
    codes = frozenset({501})


class InternalError(SkypeApiError):
    codes = frozenset({9901})


_BY_CODE: dict[int, type[SkypeApiError]] = {
    code: cls
    for cls in (
        GeneralSyntaxError,
        UnknownCommand,
        SearchError,
        UnknownObject,
        InvalidProperty,
        InvalidProtocolVersion,
        EmptyMessage,
        AccessDenied,
        InvalidChatName,
        ChatCommandFailed,
        ChatNotFound,
        InternalError,
    )
    for code in cls.codes
}


class _ErrorLike(Protocol):
    # protocol.ErrorReply; named structurally because protocol.py imports this module.
    code: int
    text: str


def error_from_reply(reply: _ErrorLike, command: str) -> SkypeApiError:
    """The typed exception for an ERROR reply; unknown codes give the plain base class."""
    return _BY_CODE.get(reply.code, SkypeApiError)(reply.code, reply.text, command)


class AttachRefused(DesktopApiError):
    """The user refused the application (`NAME` answered with `ERROR 68`)."""

    def __init__(self, app_name: str, reply: str) -> None:
        self.app_name = app_name
        self.reply = reply
        super().__init__(f"Skype refused the application {app_name!r}: {reply!r}")


class SkypeOffline(DesktopApiError):
    """Skype runs but is not signed in (`NAME` answered with `CONNSTATUS OFFLINE`)."""


class SkypeNotRunning(DesktopApiError):
    """Nobody owns com.Skype.API on the bus, or Skype went away while a command was pending."""


class TransportError(DesktopApiError):
    """The bus refused or failed a call for a reason other than Skype's absence."""

    def __init__(self, error_name: str, text: str) -> None:
        self.error_name = error_name
        self.text = text
        super().__init__(f"D-Bus error {error_name}: {text}")


class NotAttached(DesktopApiError):
    """A command was issued while the client is not attached to Skype."""


class CommandTimeout(DesktopApiError):
    """No reply arrived within the timeout, neither as return value nor through Notify."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        super().__init__(f"no reply within {timeout:g} s to {command!r}")


class UnexpectedReply(DesktopApiError):
    """Skype answered a command with a well-formed reply of the wrong shape or object."""

    def __init__(self, command: str, reply: object) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"unexpected reply to {command!r}: {reply!r}")
