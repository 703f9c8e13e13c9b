"""Changed copies of the pure core's frozen dataclasses.

`dataclasses.replace` looks up the class's fields and calls `__init__` on every call; the
processor makes a few changed copies per event (a host's clock, a host message), enough for
that to be a tenth of its time. The core's dataclasses are plain (no `__post_init__`, no
`init=False` fields, no slots), so a copy of the instance's `__dict__` is the same value.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def evolve(value: T, **changes: Any) -> T:
    """`dataclasses.replace(value, **changes)` for a plain frozen dataclass."""
    fields = value.__dataclass_fields__  # type: ignore[attr-defined]
    if not changes.keys() <= fields.keys():
        unknown = sorted(changes.keys() - fields.keys())
        raise TypeError(f"{type(value).__name__} has no field {', '.join(unknown)}")
    copy = object.__new__(type(value))
    # Frozen dataclasses refuse setattr, not their __dict__ (which is how __init__ is not used).
    copy.__dict__.update(value.__dict__)
    copy.__dict__.update(changes)
    return copy
