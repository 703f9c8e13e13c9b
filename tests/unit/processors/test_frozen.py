"""frozen.evolve against dataclasses.replace, and the assumption it rests on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.clocks import ClockSample, HostClock
from chatchannels.processors.frozen import evolve
from chatchannels.processors.observations import BodySighting, HostMessage, ObjectObservation


@dataclass(frozen=True)
class Point:
    x: int
    ys: tuple[int, ...] = ()
    label: str | None = None


points = st.builds(Point, st.integers(), st.tuples(st.integers()), st.none() | st.text())
changes = st.fixed_dictionaries(
    {},
    optional={"x": st.integers(), "ys": st.tuples(st.integers()), "label": st.none() | st.text()},
)


@given(points, changes)
def test_evolve_is_replace(point: Point, change: dict) -> None:
    before = dataclasses.astuple(point)
    got = evolve(point, **change)
    assert type(got) is Point
    assert got == dataclasses.replace(point, **change)
    assert hash(got) == hash(dataclasses.replace(point, **change))
    assert dataclasses.astuple(point) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.x = 0  # type: ignore[misc]


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="Point has no field z"):
        evolve(Point(1), z=2)


@pytest.mark.parametrize(
    "cls", [Point, ClockSample, HostClock, BodySighting, HostMessage, ObjectObservation]
)
def test_the_evolved_classes_are_plain_frozen_dataclasses(cls: type) -> None:
    """What evolve skips (__init__) must do nothing but set the fields."""
    assert cls.__dataclass_params__.frozen
    assert not hasattr(cls, "__post_init__")
    assert not hasattr(cls, "__slots__")
    assert all(f.init for f in dataclasses.fields(cls))
