"""The raw-event contract (design.md, "Raw event"): build, encode, decode and validate.

Every producer builds events here and every consumer decodes them here, so the shape
on the wire has exactly one definition besides its JSON Schema in schemas/.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs
import orjson

SCHEMA_ID = "chatchannels.raw.v1"
SOURCES = ("skype-api", "skype-export", "skype-maindb")


class RawEventError(ValueError):
    """A record is not a valid raw event; ``str()`` says what and where."""


@cache
def raw_event_schema() -> dict[str, Any]:
    text = resources.files("chatchannels.schemas").joinpath("raw-event.v1.json").read_text()
    return json.loads(text)


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = raw_event_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@cache
def _fast_validator() -> jsonschema_rs.Validator:
    """The schema compiled by jsonschema-rs (Rust): every consumed event is validated, so
    this is on the processor's hot path (bench_processor reports its rate)."""
    return jsonschema_rs.validator_for(raw_event_schema())


def validate_raw_event(event: Mapping[str, Any]) -> None:
    """Raise RawEventError naming the first offending field, or return None."""
    try:
        if _fast_validator().is_valid(event):
            return
    except (TypeError, ValueError):
        # A value JSON does not have (an integer beyond 64 bits, a tuple): the reference
        # decides.
        pass
    # jsonschema is the reference: it words the message, and it decides the corners where
    # the compiled one is stricter (a pattern's `$` before a trailing newline).
    error = jsonschema.exceptions.best_match(_validator().iter_errors(event))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise RawEventError(f"raw event field {where}: {error.message}")


@dataclass(frozen=True)
class EventClock:
    utc: float
    tz_offset_s: int


def skype_api_event(
    *,
    host: str,
    session: str,
    seq: int,
    clock: EventClock,
    reason: str,
    obj: str,
    obj_id: str,
    trigger: str | None,
    lines: Sequence[str],
    anomalies: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """A `skype-api` raw event; lines are kept verbatim."""
    payload: dict[str, Any] = {
        "reason": reason,
        "object": obj,
        "id": obj_id,
        "trigger": trigger,
        "lines": list(lines),
    }
    if anomalies:
        payload["anomalies"] = [dict(a) for a in anomalies]
    return raw_event("skype-api", host=host, session=session, seq=seq, clock=clock, payload=payload)


def raw_event(
    source: str, *, host: str, session: str, seq: int, clock: EventClock, payload: dict[str, Any]
) -> dict[str, Any]:
    """The envelope every source's payload travels in."""
    return {
        "schema": SCHEMA_ID,
        "host": host,
        "session": session,
        "seq": seq,
        "clock": {"utc": clock.utc, "tz_offset_s": clock.tz_offset_s},
        "source": source,
        "payload": payload,
    }


def encode_raw_event(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON with sorted keys: the same event always encodes to the same bytes."""
    try:
        # orjson, because encoding an imported main.db row's 150 values with json is a large
        # share of an import's time (bench_import).
        return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # Integers beyond 64 bits (a main.db column can hold anything), which orjson refuses.
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def parse_raw_event(data: bytes) -> dict[str, Any]:
    """One record value as a JSON object, not yet validated; RawEventError says why not."""
    try:
        text = data.decode("utf-8")
        try:
            # orjson, for the same reason as in encode_raw_event.
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            # json decides what orjson refuses (integers beyond 64 bits) and words the error.
            event = json.loads(text)
    except UnicodeDecodeError as exc:
        raise RawEventError(f"record is not UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise RawEventError(f"record is not JSON: {exc.msg} at char {exc.pos}") from exc
    if not isinstance(event, dict):
        raise RawEventError(f"record is JSON {type(event).__name__}, not an object")
    return event


def decode_raw_event(data: bytes) -> dict[str, Any]:
    """Parse and validate one record value; RawEventError says why it was refused."""
    event = parse_raw_event(data)
    validate_raw_event(event)
    return event
