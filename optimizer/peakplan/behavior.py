"""HPA `behavior` semantics as bounds for the solver (rate limits are constraints, not clipping).

- Step limits: per policy, the replicas at the start of its period (current minus what was added
  in the period plus what was removed, as the current HPA counts) bound the change;
  `select` picks the most (Max) or least (Min) permissive policy, or forbids the direction
  (Disabled). Percentages are computed exactly in integers (the HPA's float64 arithmetic makes
  +12 % of 25 come out as 29, not 28); `float64=True` computes them as Kubernetes does, for the
  replay's model of the HPA (`peakplan.replay.hpa`), which counts only the changes it is given.
- Stabilisation: scaling down never goes below the highest recommendation of the window; scaling
  up never goes above the lowest one (the HPA's rule, applied to the previous recommendations; the
  solver's own answer is the newest one).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import islice

from peakplan.policy import ScalingRules, StepLimit


def _period_start(current: int, changes: list[tuple[float, int]], now: float, period: float) -> int:
    """Replicas at the start of the period: undo every change made within it, up and down.

    A change at t is within the period when t is after now - period, as Kubernetes compares."""
    cutoff = now - period
    return current - sum([d for t, d in changes if t > cutoff])  # a list: faster than a generator


def _starts(
    current: int, rules: ScalingRules, changes: Iterable[tuple[float, int]], now: float
) -> list[tuple[StepLimit, int]]:
    """Each step limit with the replicas at the start of its period (each period summed once:
    the default scale-up limits share theirs)."""
    recent = list(changes)
    start: dict[float, int] = {}
    for limit in rules.limits:
        if limit.period not in start:
            start[limit.period] = _period_start(current, recent, now, limit.period)
    return [(limit, start[limit.period]) for limit in rules.limits]


def _raised(limit: StepLimit, start: int, float64: bool) -> int:
    if limit.kind == "Pods":
        return start + limit.value
    if float64:  # Kubernetes' own arithmetic, rounding included
        return math.ceil(float(start) * (1 + float(limit.value) / 100))
    # Rounded up so that a percentage always allows at least one more pod; from zero replicas
    # any percentage of nothing is nothing, which would never scale up.
    return max(-(-start * (100 + limit.value) // 100), start + 1)


def _lowered(limit: StepLimit, start: int, float64: bool) -> int:
    if limit.kind == "Pods":
        return start - limit.value
    if float64:  # Kubernetes' own arithmetic: int32() truncates
        return int(float(start) * (1 - float(limit.value) / 100))
    return start * (100 - limit.value) // 100  # rounded down, as the HPA does


def scale_up_limit(
    current: int,
    rules: ScalingRules,
    changes: Iterable[tuple[float, int]],
    now: float,
    *,
    float64: bool = False,
) -> int:
    """The most replicas allowed now; `changes` are (time, signed replica change) pairs."""
    if rules.select == "Disabled":
        return current
    limits = [_raised(lim, start, float64) for lim, start in _starts(current, rules, changes, now)]
    if not limits:
        return 2**31 - 1
    return max(current, max(limits) if rules.select == "Max" else min(limits))


def scale_down_limit(
    current: int,
    rules: ScalingRules,
    changes: Iterable[tuple[float, int]],
    now: float,
    *,
    float64: bool = False,
) -> int:
    """The fewest replicas allowed now."""
    if rules.select == "Disabled":
        return current
    limits = [_lowered(lim, start, float64) for lim, start in _starts(current, rules, changes, now)]
    if not limits:
        return 0
    return max(0, min(current, min(limits) if rules.select == "Max" else max(limits)))


def _in_window(
    recommendations: Iterable[tuple[float, int]], now: float, window: float, ordered: bool
) -> list[int]:
    """The recommendations made less than `window` seconds before `now`, in any order.
    `ordered`: they are in time order, so only those inside are read (the controller keeps an
    hour of them; a window reads a few minutes)."""
    if ordered and isinstance(recommendations, _INDEXED):
        first = _first_inside(recommendations, now, window)
        # Read back from the newest: a deque reaches its middle only by walking from an end.
        inside = islice(reversed(recommendations), len(recommendations) - first)
        return [r for _, r in inside]
    return [r for t, r in recommendations if now - t < window]


# The concrete types, not the Sequence ABC: its isinstance check costs about as much as the
# bisection.
_INDEXED = (deque, list, tuple)


def _first_inside(recommendations: Sequence[tuple[float, int]], now: float, window: float) -> int:
    """The index of the first recommendation in time order with now - t < window.

    now - t < window grows with t, so a bisection finds it. It bisects on t > now - window
    (tuples compared in C, no key function) and then steps to where the exact test, as
    rounded, changes: the two can differ by a rounding at the edge."""
    first = bisect_right(recommendations, (now - window, math.inf))
    while first > 0 and now - recommendations[first - 1][0] < window:
        first -= 1
    while first < len(recommendations) and not now - recommendations[first][0] < window:
        first += 1
    return first


def stabilized_floor(
    current: int,
    rules: ScalingRules,
    recommendations: Iterable[tuple[float, int]],
    now: float,
    *,
    ordered: bool = False,
) -> int:
    """Scale-down stabilisation: not below the highest recommendation in the window
    (`ordered`: `recommendations` are in time order, oldest first)."""
    if rules.window <= 0:  # before the scan: no window, nothing to read
        return 0
    window = _in_window(recommendations, now, rules.window, ordered)
    if not window:
        return 0
    return min(current, max(window))


def stabilized_ceiling(
    current: int,
    rules: ScalingRules,
    recommendations: Iterable[tuple[float, int]],
    now: float,
    *,
    ordered: bool = False,
) -> int:
    """Scale-up stabilisation: not above the lowest recommendation in the window
    (`ordered`: `recommendations` are in time order, oldest first)."""
    if rules.window <= 0:  # before the scan: no window, nothing to read
        return 2**31 - 1
    window = _in_window(recommendations, now, rules.window, ordered)
    if not window:
        return 2**31 - 1
    return max(current, min(window))
