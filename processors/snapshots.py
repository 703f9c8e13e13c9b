"""The pure core's frozen values to JSON text and back: the store's snapshots of its state.

Decoding is generic over the dataclasses' type hints rather than one hand-written mapping
per class, so a field the matching code adds later is saved without touching this module; a
field missing from an older snapshot takes its default.
Round trip: `load_value(T, dump_value(x)) == x`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
_UNIONS = (types.UnionType, typing.Union)
_Decoder = Callable[[Any], Any]


def dump_value(value: Any) -> str:
    # orjson walks dataclasses (fields in declaration order) and tuples in C: a snapshot is
    # made per changed host message and canonical message, on the processor's hot path.
    return orjson.dumps(value).decode()


def load_value(cls: type[T], data: str | bytes | dict[str, Any]) -> T:
    plain = orjson.loads(data) if isinstance(data, str | bytes) else data
    return _decoder(cls)(plain)


@cache
def _decoder(hint: Any) -> _Decoder:
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in _UNIONS:
        arms = [a for a in args if a is not type(None)]
        if len(arms) != 1:
            raise TypeError(f"cannot decode union {hint}")
        inner = _decoder(arms[0])
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [_decoder(a) for a in args]
        return lambda v: tuple(d(x) for d, x in zip(items, v, strict=True))
    if hint is float:
        return float
    if hint in (int, str, bool, Any):
        return lambda v: v
    raise TypeError(f"cannot decode {hint}")


def _dataclass_decoder(cls: type) -> _Decoder:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls) if f.init]

    def decode(plain: dict[str, Any]) -> Any:
        return cls(**{name: dec(plain[name]) for name, dec in fields if name in plain})

    return decode
