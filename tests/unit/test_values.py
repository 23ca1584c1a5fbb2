"""`quick_init`: a frozen dataclass built by storing its fields directly is the same value."""

from __future__ import annotations

import copy
import inspect
import pickle
from dataclasses import FrozenInstanceError, InitVar, dataclass, field, fields, replace
from typing import Any

import pytest

from peakplan import allocation, controller, curves, forecast, problem
from peakplan.values import quick_init


@quick_init
@dataclass(frozen=True)
class Sample:
    name: str
    count: int = 1
    tags: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must be >= 0")


@dataclass(frozen=True)
class Plain:  # Sample as dataclasses builds it
    name: str
    count: int = 1
    tags: dict[str, int] = field(default_factory=dict)


def test_a_quick_value_is_the_value_dataclasses_would_build() -> None:
    a, b = Sample("a", 2, {"x": 1}), Sample(name="a", count=2, tags={"x": 1})
    assert a == b and a != Sample("a", 2)
    assert repr(a) == repr(Plain("a", 2, {"x": 1})).replace("Plain", "Sample")
    assert Sample("a").tags == {} and Sample("a").tags is not Sample("a").tags  # a new dict each
    assert replace(a, count=3) == Sample("a", 3, {"x": 1})
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    assert str(inspect.signature(Sample)) == str(inspect.signature(Plain))
    with pytest.raises(FrozenInstanceError):
        a.count = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="count must be >= 0"):
        Sample("a", -1)  # __post_init__ still runs
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]


def test_what_quick_init_cannot_build_fails_at_decoration() -> None:
    @dataclass
    class Mutable:
        x: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclass(frozen=True)
    class KeywordOnly:
        x: int = field(kw_only=True)

    @dataclass(frozen=True)
    class NotInInit:
        x: int = field(default=0, init=False)

    @dataclass(frozen=True)
    class WithInitVar:
        x: int
        y: InitVar[int]

    for cls in (Mutable, Slotted, KeywordOnly, NotInInit, WithInitVar):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)


SAMPLES: list[Any] = [
    problem.Workload("w", 10.0, 3, 1, 9, 2.0, price=1.0, churn=0.1, floor_reason="a hold"),
    problem.Problem((problem.Workload("w", 1.0, 1, 0, 2, 1.0),), problem.Budget(1.0)),
    allocation.SolverReport("none", "optimal", 0.5, 0.0),
    allocation.WorkloadDecision("w", 1, 2, 3.0, 2, 0.75, 2.0, 0.0, "why", None),
    controller.WorkloadObservation(3, 1.5, ready=2),
    controller.Observation(1.0, {"w": controller.WorkloadObservation(3, None, "gone")}),
    controller.Change("w", 1.0, 3, 4),
    controller.ForecastUse("trend", "why", 60.0, 1.0, 2.0, "band", {"trend": 0.1}),
    controller.WorkloadInput("w", 1.0, 2.0, "observed", ("e",), "note"),
    controller.Hold(3, "why", step=True),
    curves.build_curve(problem.Workload("w", 10.0, 3, 1, 9, 2.0, price=1.0)),
    forecast.Forecast(2.0, 1.5, "trend", "why", {"trend": 0.1}),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_each_quick_core_value_equals_the_one_dataclasses_builds(value: Any) -> None:
    cls = type(value)
    built = object.__new__(cls)
    cls.__init__.__wrapped__(built, *(getattr(value, f.name) for f in fields(cls)))
    assert built == value and repr(built) == repr(value) and vars(built) == vars(value)
    if isinstance(value, problem.Workload):  # hashable: no dict inside
        assert hash(built) == hash(value)
