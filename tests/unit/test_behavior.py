"""HPA `behavior` as solver bounds: step limits, selectPolicy and stabilisation windows.

Scenario tables in the style of Kubernetes' pkg/controller/podautoscaler/horizontal_test.go; each
expected value is computed by hand in the comment next to it. A property test then checks that the
bounds, given to a single workload whose optimum is the raw recommendation, give exactly what the
HPA's own normalisation (stabilise, then rate-limit) gives.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peakplan.behavior import (
    scale_down_limit,
    scale_up_limit,
    stabilized_ceiling,
    stabilized_floor,
)
from peakplan.policy import HPA_SCALE_DOWN, HPA_SCALE_UP, ScalingRules, StepLimit

NOW = 10_000.0
UNLIMITED = 2**31 - 1
Select = Literal["Max", "Min", "Disabled"]


def pods(value: int, period: float = 60.0) -> StepLimit:
    return StepLimit("Pods", value, period)


def percent(value: int, period: float = 60.0) -> StepLimit:
    return StepLimit("Percent", value, period)


def rules(*limits: StepLimit, select: Select = "Max", window: float = 0.0) -> ScalingRules:
    return ScalingRules(window, select, limits)


@dataclass(frozen=True)
class Step:
    current: int
    rules: ScalingRules
    expected: int
    changes: tuple[tuple[float, int], ...] = ()  # (seconds ago, signed change)


SCALE_UP = {
    # The HPA default: max(+100 %, +4 pods) per 15 s.
    "default-1-replica": Step(1, HPA_SCALE_UP, 5),  # max(ceil(1 x 2)=2, 1+4=5)
    "default-3-replicas": Step(3, HPA_SCALE_UP, 7),  # max(6, 7)
    "default-4-replicas-tie": Step(4, HPA_SCALE_UP, 8),  # max(8, 8)
    "default-10-replicas": Step(10, HPA_SCALE_UP, 20),  # max(20, 14)
    "pods-only": Step(10, rules(pods(2)), 12),  # 10 + 2
    "percent-rounds-up": Step(5, rules(percent(50)), 8),  # ceil(5 x 1.5) = ceil(7.5)
    # Exact integers: 25 x 1.12 = 28 (float64 gives 28.000000000000004, which would round to 29).
    "percent-exact-12-of-25": Step(25, rules(percent(12)), 28),
    "percent-exact-10-of-10": Step(10, rules(percent(10)), 11),  # 10 x 1.1 = 11
    "percent-tiny-still-one-pod": Step(3, rules(percent(1)), 4),  # ceil(3.03)
    "select-max": Step(10, rules(pods(4), percent(100)), 20),  # max(14, 20)
    "select-min": Step(10, rules(pods(4), percent(100), select="Min"), 14),  # min(14, 20)
    "select-min-small": Step(2, rules(pods(4), percent(100), select="Min"), 4),  # min(6, 4)
    "select-disabled": Step(10, rules(pods(4), select="Disabled"), 10),  # no scale-up at all
    # Changes already made in the period come off the allowance: start = current - added.
    "added-in-period-uses-it-up": Step(
        8, HPA_SCALE_UP, 8, ((10, +4),)
    ),  # start 4: max(8, 8) = 8 = current
    "added-exactly-one-period-ago-is-gone": Step(
        8, HPA_SCALE_UP, 16, ((15, +4),)
    ),  # 15 s ago is outside (now - t < 15 fails): start 8, max(16, 12)
    "per-policy-periods-max": Step(
        12, rules(pods(4, 60), percent(100, 15)), 16, ((30, +4), (10, +4))
    ),  # Pods: start 12-8=4 -> 8; Percent: start 12-4=8 -> 16; Max -> 16
    "per-policy-periods-min": Step(
        12, rules(pods(4, 60), percent(100, 15), select="Min"), 12, ((30, +4), (10, +4))
    ),  # min(8, 16) = 8 < current 12: hold at current until the changes age out
    # The current HPA also adds back what was removed in the period: start = 6 + 4 = 10.
    "removed-in-period-adds-back": Step(6, rules(pods(4)), 14, ((30, -4),)),  # 10 + 4
    "older-than-period-ignored": Step(10, rules(pods(4)), 14, ((61, +10),)),  # start 10
    # From zero: +4 pods works; a percentage of nothing is nothing, so it allows one pod.
    "from-zero-default": Step(0, HPA_SCALE_UP, 4),  # max(1, 0+4)
    "from-zero-percent-only": Step(0, rules(percent(100)), 1),  # max(ceil(0), 0+1)
    "from-zero-select-min": Step(0, rules(pods(4), percent(100), select="Min"), 1),  # min(4, 1)
}


@pytest.mark.parametrize("step", SCALE_UP.values(), ids=SCALE_UP.keys())
def test_scale_up_limit(step: Step) -> None:
    changes = [(NOW - ago, d) for ago, d in step.changes]
    assert scale_up_limit(step.current, step.rules, changes, NOW) == step.expected


SCALE_DOWN = {
    # The HPA default: -100 % per 15 s, i.e. straight to the recommendation.
    "default-anything": Step(10, HPA_SCALE_DOWN, 0),  # floor(10 x 0)
    "percent-10": Step(10, rules(percent(10)), 9),  # floor(10 x 0.9)
    "percent-rounds-down": Step(25, rules(percent(10)), 22),  # floor(22.5)
    # Exact integers: 10 x (1 - 0.9) = 1 (float64 gives 0.9999999999999998 -> 0).
    "percent-exact-90-of-10": Step(10, rules(percent(90)), 1),
    "pods-3": Step(10, rules(pods(3)), 7),  # 10 - 3
    "select-max-most-change": Step(10, rules(pods(3), percent(50)), 5),  # min(7, 5)
    "select-min-least-change": Step(10, rules(pods(3), percent(50), select="Min"), 7),  # max(7, 5)
    "select-disabled": Step(10, rules(percent(50), select="Disabled"), 10),  # no scale-down
    "removed-in-period-uses-it-up": Step(
        9, rules(percent(10)), 9, ((30, -1),)
    ),  # start 9+1=10: floor(9) = 9 = current
    "removed-in-period-partly": Step(8, rules(pods(5)), 5, ((59, -2),)),  # start 10: 10 - 5
    "removed-exactly-one-period-ago-is-gone": Step(8, rules(pods(5)), 3, ((60, -2),)),  # 8 - 5
    # The current HPA also takes off what was added in the period: start = 20 - 10 = 10.
    "added-in-period-takes-off": Step(20, rules(percent(50)), 5, ((20, +10),)),  # floor(10 x .5)
    "never-below-zero": Step(3, rules(pods(5)), 0),  # 3 - 5 -> 0
    "from-zero": Step(0, HPA_SCALE_DOWN, 0),
}


@pytest.mark.parametrize("step", SCALE_DOWN.values(), ids=SCALE_DOWN.keys())
def test_scale_down_limit(step: Step) -> None:
    changes = [(NOW - ago, d) for ago, d in step.changes]
    assert scale_down_limit(step.current, step.rules, changes, NOW) == step.expected


@dataclass(frozen=True)
class Window:
    current: int
    window: float
    recommendations: tuple[tuple[float, int], ...]  # (seconds ago, replicas)
    expected: int


STABILISED_FLOOR = {
    # Scale-down: not below the highest recommendation in the window (capped at current).
    "highest-above-current-holds": Window(10, 300, ((200, 12), (100, 8)), 10),  # min(10, 12)
    "highest-below-current": Window(10, 300, ((200, 6), (100, 8)), 8),  # min(10, max(6, 8))
    "boundary-drops-out": Window(10, 300, ((300, 12), (10, 7)), 7),  # 300 s ago is outside
    "all-too-old": Window(10, 300, ((400, 12),), 0),  # nothing in the window: no floor
    "empty": Window(10, 300, (), 0),
    "window-zero": Window(10, 0, ((1, 12),), 0),  # the window is off
}


@pytest.mark.parametrize("case", STABILISED_FLOOR.values(), ids=STABILISED_FLOOR.keys())
def test_stabilized_floor(case: Window) -> None:
    recs = [(NOW - ago, r) for ago, r in case.recommendations]
    rules_ = ScalingRules(case.window, "Max", ())
    assert stabilized_floor(case.current, rules_, recs, NOW) == case.expected


STABILISED_CEILING = {
    # Scale-up: not above the lowest recommendation in the window (never below current).
    "lowest-above-current": Window(10, 60, ((30, 14), (10, 18)), 14),  # max(10, min(14, 18))
    "lowest-below-current-holds": Window(10, 60, ((30, 8), (10, 18)), 10),  # max(10, 8)
    "boundary-drops-out": Window(10, 60, ((60, 11), (10, 18)), 18),  # 60 s ago is outside
    "empty": Window(10, 60, (), UNLIMITED),
    "window-zero": Window(10, 0, ((1, 11),), UNLIMITED),  # the HPA's scale-up default
}


@pytest.mark.parametrize("case", STABILISED_CEILING.values(), ids=STABILISED_CEILING.keys())
def test_stabilized_ceiling(case: Window) -> None:
    recs = [(NOW - ago, r) for ago, r in case.recommendations]
    rules_ = ScalingRules(case.window, "Max", ())
    assert stabilized_ceiling(case.current, rules_, recs, NOW) == case.expected


@given(
    times=st.lists(st.integers(0, 400), max_size=40),
    window=st.integers(0, 400),
    now=st.integers(0, 500),
    current=st.integers(0, 30),
)
def test_the_ordered_scan_reads_the_same_window(
    times: list[int], window: int, now: int, current: int
) -> None:
    """In time order, the windows scan newest first and stop at the first entry outside: the
    same answers as the full scan (the controller keeps an hour; a window reads minutes)."""
    recs = [(float(t), (t * 7) % 23) for t in sorted(times)]
    rules_ = ScalingRules(float(window), "Max", ())
    for fn in (stabilized_floor, stabilized_ceiling):
        full = fn(current, rules_, recs, float(now))
        for kept in (recs, tuple(recs), deque(recs)):  # the controller keeps a deque
            assert fn(current, rules_, kept, float(now), ordered=True) == full


@pytest.mark.parametrize("tick", [0.1, 0.3, 1 / 3, 0.7, 15.0])
def test_the_ordered_scan_agrees_at_rounded_edges(tick: float) -> None:
    """Times and windows that are not whole in binary: t > now - window and now - t < window
    round apart at the window's edge now and then (680 of these 320,000 cases for the first
    four ticks); the bisection must still find the exact edge."""
    recs = deque((k * tick, k % 11) for k in range(40))
    for window, now in itertools.product(range(40), range(50)):
        rules_ = ScalingRules(window * tick, "Max", ())
        for fn in (stabilized_floor, stabilized_ceiling):
            full = fn(5, rules_, recs, now * tick)
            assert fn(5, rules_, recs, now * tick, ordered=True) == full


# ----------------------------------------------------------------------------------------------
# Equivalence with the HPA's normalisation for one workload.


def _hpa_normalize(
    current: int,
    raw: int,
    up: ScalingRules,
    down: ScalingRules,
    recs: list[tuple[float, int]],
    changes: list[tuple[float, int]],
    lo: int,
    hi: int,
) -> int:
    """The HPA's stabilizeRecommendationWithBehaviors + convertDesiredReplicasWithBehaviorRate."""
    up_rec = min([r for t, r in recs if NOW - t < up.window] + [raw])
    down_rec = max([r for t, r in recs if NOW - t < down.window] + [raw])
    stabilised = min(max(current, up_rec), down_rec)
    if stabilised > current:
        return min(stabilised, hi, scale_up_limit(current, up, changes, NOW))
    if stabilised < current:
        return max(stabilised, lo, scale_down_limit(current, down, changes, NOW))
    return stabilised


limit_st = st.builds(
    StepLimit,
    st.sampled_from(["Pods", "Percent"]),
    st.integers(1, 200),
    st.sampled_from([15.0, 60.0, 120.0]),
)
rules_st = st.builds(
    ScalingRules,
    st.sampled_from([0.0, 30.0, 300.0]),
    st.sampled_from(["Max", "Min", "Disabled"]),
    st.lists(limit_st, min_size=1, max_size=3).map(tuple),
)


@given(
    current=st.integers(1, 60),
    raw=st.integers(1, 60),
    up=rules_st,
    down=rules_st,
    recs=st.lists(st.tuples(st.integers(1, 400), st.integers(1, 60)), max_size=6),
    changes=st.lists(st.tuples(st.integers(1, 150), st.integers(-10, 10)), max_size=4),
)
def test_bounds_reproduce_the_hpa_for_one_workload(
    current: int,
    raw: int,
    up: ScalingRules,
    down: ScalingRules,
    recs: list[tuple[int, int]],
    changes: list[tuple[int, int]],
) -> None:
    recs_at = [(NOW - ago, r) for ago, r in recs]
    changes_at = [(NOW - ago, d) for ago, d in changes]
    lo, hi = 1, 60
    expected = _hpa_normalize(current, raw, up, down, recs_at, changes_at, lo, hi)
    # What decide() gives the solver; its optimum for one workload is the raw recommendation.
    upper = min(
        hi,
        scale_up_limit(current, up, changes_at, NOW),
        stabilized_ceiling(current, up, recs_at, NOW),
    )
    lower = max(
        lo,
        scale_down_limit(current, down, changes_at, NOW),
        stabilized_floor(current, down, recs_at, NOW),
    )
    assert lower <= current <= upper
    assert min(max(raw, lower), upper) == expected
