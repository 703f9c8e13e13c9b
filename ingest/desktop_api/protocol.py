"""Skype Desktop API text protocol: format commands, parse replies and notifications.

Pure functions and frozen values, no I/O. Replies and notifications share one grammar
(spec §1.4), so `parse_reply` serves both. The value of a line is everything after the single
space that follows the last header token, verbatim: newlines, leading and trailing spaces
survive (spec §1.1; a whitespace split would drop a body's leading spaces). A header with no
value at all (`CHAT x ACTIVEMEMBERS`) and one with an empty value (`... TOPIC `) both give "".
Keywords are matched case-insensitively and returned upper-case; ids are kept byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from chatchannels.ingest.desktop_api.errors import ApiParseError

__all__ = [
    "OBJECT_NOUNS",
    "SEARCH_NOUNS",
    "AlterReply",
    "ApiParseError",
    "ErrorReply",
    "ObjectProperty",
    "Ok",
    "Parameter",
    "Pong",
    "Reply",
    "SearchResult",
    "add_command_id",
    "format_alter",
    "format_alter_reply",
    "format_bool",
    "format_error",
    "format_get",
    "format_get_parameter",
    "format_handle_list",
    "format_id_list",
    "format_name",
    "format_parameter",
    "format_property",
    "format_protocol",
    "format_reply",
    "format_search",
    "format_search_result",
    "format_set",
    "format_set_parameter",
    "format_timestamp",
    "parse_bool",
    "parse_date",
    "parse_handle_list",
    "parse_id_list",
    "parse_int",
    "parse_reply",
    "parse_timestamp",
    "parse_timezone",
    "split_command_id",
]

# Objects addressed as `<NOUN> <id> <PROP> <value>`.
OBJECT_NOUNS = frozenset(
    {
        "APPLICATION",
        "CALL",
        "CHAT",
        "CHATMEMBER",
        "CHATMESSAGE",
        "FILETRANSFER",
        "GROUP",
        "MESSAGE",
        "SMS",
        "USER",
        "VOICEMAIL",
    }
)
# Fixed reply nouns of SEARCH (never the search word itself: SEARCH FRIENDS -> USERS ...).
SEARCH_NOUNS = frozenset(
    {
        "CALLS",
        "CHATMEMBERS",
        "CHATMESSAGES",
        "CHATS",
        "FILETRANSFERS",
        "GROUPS",
        "MESSAGES",
        "SMSS",
        "USERS",
        "VOICEMAILS",
    }
)

_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INT = re.compile(r"-?[0-9]+")
_LIST_SEPARATOR = ", "


@dataclass(frozen=True)
class ObjectProperty:
    """`CHAT <id> TOPIC <value>`, `CHATMESSAGE 293 STATUS RECEIVED`, `USER bob FULLNAME Bob`."""

    obj: str
    obj_id: str
    prop: str
    value: str


@dataclass(frozen=True)
class Parameter:
    """A general parameter: `CURRENTUSERHANDLE alice`, `PROTOCOL 8`, `CALLHISTORYCHANGED`."""

    name: str
    value: str


@dataclass(frozen=True)
class SearchResult:
    """`CHATS a, b`; an empty result has no items."""

    noun: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class ErrorReply:
    """`ERROR 105 Invalid chat name`; the NAME refusal is the bare `ERROR 68` (text "")."""

    code: int
    text: str


@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class AlterReply:
    """`ALTER CHAT SETTOPIC`, `ALTER CHATMEMBER CANSETROLETO TRUE`, `ALTER GROUP 70 ADDUSER x`.

    ALTER CHAT replies drop the chat id (spec §1.3) except BOOKMARK/UNBOOKMARK
    (`ALTER CHAT <id> BOOKMARKED TRUE`); `obj_id` holds the id when the reply carries one.
    """

    obj: str
    action: str
    rest: str
    obj_id: str | None = None


Reply = ObjectProperty | Parameter | SearchResult | ErrorReply | Ok | Pong | AlterReply


# --- command ids ------------------------------------------------------------------------


def split_command_id(text: str) -> tuple[str | None, str]:
    """`"#7 GET X"` -> `("7", "GET X")`; text without a `#<token> ` prefix -> `(None, text)`."""
    if not text.startswith("#"):
        return None, text
    space = text.find(" ")
    token = text[1:space] if space > 0 else ""
    if not token or _has_whitespace(token):
        return None, text
    return token, text[space + 1 :]


def add_command_id(cmd_id: str, text: str) -> str:
    _check_token("command id", cmd_id)
    return f"#{cmd_id} {text}"


# --- parsing ----------------------------------------------------------------------------


def parse_reply(text: str) -> Reply:
    """Parse one reply or notification (without its `#id` prefix).

    Raises `ApiParseError` naming the line for anything that is not Desktop API text, and
    never any other exception.
    """
    head, value = _split_token(text)
    if not _KEYWORD.fullmatch(head):
        raise ApiParseError(text, "does not start with a keyword")
    keyword = head.upper()
    if keyword in ("OK", "PONG"):
        if value:
            raise ApiParseError(text, f"{keyword} takes no value")
        return Ok() if keyword == "OK" else Pong()
    if keyword == "ERROR":
        return _parse_error(text, value)
    if keyword == "ALTER":
        return _parse_alter(text, value)
    if keyword in SEARCH_NOUNS:
        return SearchResult(keyword, _parse_items(text, value))
    if keyword in OBJECT_NOUNS:
        obj_id, rest = _split_token(value)
        prop, prop_value = _split_token(rest)
        if not obj_id or _has_whitespace(obj_id):
            raise ApiParseError(text, f"{keyword} without an object id")
        if not _KEYWORD.fullmatch(prop):
            raise ApiParseError(text, f"{keyword} {obj_id} without a property name")
        return ObjectProperty(keyword, obj_id, prop.upper(), prop_value)
    return Parameter(keyword, value)


def _parse_error(text: str, value: str) -> ErrorReply:
    code, description = _split_token(value)
    if not code.isascii() or not code.isdigit():
        raise ApiParseError(text, "ERROR without a numeric code")
    return ErrorReply(int(code), description)


def _parse_alter(text: str, value: str) -> AlterReply:
    obj, rest = _split_token(value)
    if not _KEYWORD.fullmatch(obj):
        raise ApiParseError(text, "ALTER reply without an object type")
    first, after_first = _split_token(rest)
    obj_id = None
    if first and not _KEYWORD.fullmatch(first):
        # Not a keyword, so it is the object id (GROUP 70, or a BOOKMARK reply's chat).
        obj_id = first
        first, after_first = _split_token(after_first)
    if not _KEYWORD.fullmatch(first) or (obj_id is not None and _has_whitespace(obj_id)):
        raise ApiParseError(text, "ALTER reply without an action")
    return AlterReply(obj.upper(), first.upper(), after_first, obj_id)


def _parse_items(text: str, value: str) -> tuple[str, ...]:
    try:
        return parse_id_list(value)
    except ApiParseError as exc:
        raise ApiParseError(text, exc.reason) from None


def _split_token(text: str) -> tuple[str, str]:
    """Split at the first space: the token before it and the verbatim rest after it."""
    token, _, rest = text.partition(" ")
    return token, rest


def _has_whitespace(token: str) -> bool:
    return any(ch.isspace() for ch in token)


# --- value codecs -----------------------------------------------------------------------


def parse_int(value: str) -> int:
    # Strict ASCII decimal: int() would also take "1_000", " 7" and non-ASCII digits.
    if not _INT.fullmatch(value):
        raise ApiParseError(value, "not a decimal integer")
    return int(value)


def parse_timestamp(value: str) -> datetime | None:
    """Unix seconds -> aware UTC datetime; `0` means "not set" and gives None (spec §8)."""
    seconds = parse_int(value)
    if seconds == 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ApiParseError(value, "timestamp out of range") from None


def format_timestamp(moment: datetime | None) -> str:
    if moment is None:
        return "0"
    if moment.tzinfo is None:
        raise ValueError("timestamps must be aware datetimes")
    return str(int(moment.timestamp()))


def parse_timezone(value: str) -> timedelta | None:
    """USER TIMEZONE is 86400 + the UTC offset in seconds; `0` means not set (spec §7.1)."""
    seconds = parse_int(value)
    if seconds == 0:
        return None
    return timedelta(seconds=seconds - 86400)


def parse_date(value: str) -> date | None:
    """USER BIRTHDAY: `YYYYMMDD`, or `0` when unset."""
    if value == "0":
        return None
    if len(value) != 8 or not _INT.fullmatch(value):
        raise ApiParseError(value, "not a YYYYMMDD date")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise ApiParseError(value, "not a valid calendar date") from None


def parse_bool(value: str) -> bool:
    upper = value.upper()
    if upper == "TRUE":
        return True
    if upper == "FALSE":
        return False
    raise ApiParseError(value, "not TRUE or FALSE")


def format_bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def parse_id_list(value: str) -> tuple[str, ...]:
    """`"34, 35, 36"` -> `("34", "35", "36")`: SEARCH results and CHATMESSAGES-like values.

    Items are split on ", " only, because handles inside chat ids may contain a bare comma.
    Stray spaces around items (a fixture's `CALLS  1, 2`) are tolerated.
    """
    items = tuple(item.strip(" ") for item in value.split(_LIST_SEPARATOR))
    items = tuple(item for item in items if item)
    for item in items:
        if _has_whitespace(item):
            raise ApiParseError(value, f"list item {item!r} contains whitespace")
    return items


def format_id_list(items: tuple[str, ...] | list[str]) -> str:
    for item in items:
        _check_token("list item", item)
    return _LIST_SEPARATOR.join(items)


def parse_handle_list(value: str) -> tuple[str, ...]:
    """`"bob cecil alice"` -> handles: MEMBERS, ACTIVEMEMBERS, POSTERS, USERS (single spaces)."""
    return tuple(value.split())


def format_handle_list(handles: tuple[str, ...] | list[str]) -> str:
    for handle in handles:
        _check_token("handle", handle)
    return " ".join(handles)


# --- reply formatters (the emulator's side) ---------------------------------------------


def format_property(obj: str, obj_id: str, prop: str, value: str) -> str:
    """`CHATMESSAGE 188 BODY x`; an empty value keeps the separating space (`... BODY `)."""
    _check_keyword("object type", obj)
    _check_token("object id", obj_id)
    _check_keyword("property", prop)
    return f"{obj.upper()} {obj_id} {prop.upper()} {value}"


def format_parameter(name: str, value: str) -> str:
    """`CURRENTUSERHANDLE alice`; an empty value gives the bare name (`CALLHISTORYCHANGED`)."""
    _check_keyword("parameter", name)
    return f"{name.upper()} {value}" if value else name.upper()


def format_search_result(noun: str, items: tuple[str, ...] | list[str]) -> str:
    """`CHATS a, b`; an empty result is the noun and one space (`CHATS `)."""
    _check_keyword("search noun", noun)
    return f"{noun.upper()} {format_id_list(items)}"


def format_error(code: int, text: str = "") -> str:
    """`ERROR 105 Invalid chat name`; text "" gives the bare `ERROR 68` of a NAME refusal."""
    if code < 0:
        raise ValueError(f"error code must not be negative: {code}")
    return f"ERROR {code} {text}" if text else f"ERROR {code}"


def format_alter_reply(obj: str, action: str, rest: str = "", obj_id: str | None = None) -> str:
    _check_keyword("object type", obj)
    _check_keyword("action", action)
    parts = ["ALTER", obj.upper()]
    if obj_id is not None:
        _check_token("object id", obj_id)
        if _KEYWORD.fullmatch(obj_id):
            raise ValueError(f"object id {obj_id!r} would read as an action keyword")
        parts.append(obj_id)
    parts.append(action.upper())
    line = " ".join(parts)
    return f"{line} {rest}" if rest else line


def format_reply(reply: Reply) -> str:
    """The line for a reply value; `parse_reply(format_reply(r)) == r` for canonical values."""
    match reply:
        case ObjectProperty(obj, obj_id, prop, value):
            return format_property(obj, obj_id, prop, value)
        case Parameter(name, value):
            return format_parameter(name, value)
        case SearchResult(noun, items):
            return format_search_result(noun, items)
        case ErrorReply(code, text):
            return format_error(code, text)
        case Ok():
            return "OK"
        case Pong():
            return "PONG"
        case AlterReply(obj, action, rest, obj_id):
            return format_alter_reply(obj, action, rest, obj_id)
    raise TypeError(f"not a reply value: {reply!r}")


# --- command formatters (the client's side) ---------------------------------------------


def format_name(app_name: str) -> str:
    # Skype cuts the name at the first space, so a name with one would attach as someone else.
    _check_token("application name", app_name)
    return f"NAME {app_name}"


def format_protocol(version: int) -> str:
    return f"PROTOCOL {int(version)}"


def format_get(obj: str, obj_id: str, prop: str) -> str:
    _check_keyword("object type", obj)
    _check_token("object id", obj_id)
    _check_keyword("property", prop)
    return f"GET {obj.upper()} {obj_id} {prop.upper()}"


def format_get_parameter(name: str) -> str:
    """`GET CURRENTUSERHANDLE`; `name` may carry a sub-key (`PROFILE FULLNAME`)."""
    for word in name.split(" "):
        _check_keyword("parameter", word)
    return f"GET {name.upper()}"


def format_set(obj: str, obj_id: str, prop: str, value: str | None = None) -> str:
    """`SET CHATMESSAGE 864 BODY text`; value None gives a bare `SET CHATMESSAGE 61 SEEN`."""
    _check_keyword("object type", obj)
    _check_token("object id", obj_id)
    _check_keyword("property", prop)
    line = f"SET {obj.upper()} {obj_id} {prop.upper()}"
    return line if value is None else f"{line} {value}"


def format_set_parameter(name: str, value: str) -> str:
    _check_keyword("parameter", name)
    return f"SET {name.upper()} {value}"


def format_alter(obj: str, obj_id: str, action: str, args: str = "") -> str:
    """`ALTER CHAT <id> SETTOPIC <text>`; list arguments use ", " (see format_id_list)."""
    _check_keyword("object type", obj)
    _check_token("object id", obj_id)
    _check_keyword("action", action)
    line = f"ALTER {obj.upper()} {obj_id} {action.upper()}"
    return f"{line} {args}" if args else line


def format_search(what: str, target: str | None = None) -> str:
    _check_keyword("search", what)
    line = f"SEARCH {what.upper()}"
    return line if target is None else f"{line} {target}"


def _check_keyword(role: str, word: str) -> None:
    if not _KEYWORD.fullmatch(word):
        raise ValueError(f"{role} must be a keyword ([A-Za-z][A-Za-z0-9_]*): {word!r}")


def _check_token(role: str, token: str) -> None:
    if not token or _has_whitespace(token):
        raise ValueError(f"{role} must be a non-empty token without whitespace: {token!r}")
