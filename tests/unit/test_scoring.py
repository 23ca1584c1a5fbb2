"""Scoring (DESIGN section 5) against small cases computed by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peakplan.replay.scoring import Score, oracle_replicas, ready_series, score, total

KEYS = {
    "billed_replica_seconds",
    "oracle_replica_seconds",
    "cost_ratio",
    "unserved_pct",
    "overload_minutes",
    "scale_changes",
}


def test_scale_up_late_then_down() -> None:
    # step 15 s, startup 30 s = 2 steps, capacity 10 rps, minReplicas 1, 2 pods ready at start.
    demand = [15, 15, 35, 35, 35, 35, 5, 5]
    desired = [2, 2, 4, 4, 4, 4, 1, 1]
    result = score(15, demand, desired, startup=30, capacity=10, min_replicas=1)
    # Asked for at step 2 (t=30 s), the 2 new pods serve from step 4 (t=60 s).
    assert result.ready == (2, 2, 2, 2, 4, 4, 1, 1)
    # Steps 2 and 3: 35 - 2 x 10 = 15 rps unserved, 15 s each.
    assert result.unserved == (0, 0, 15, 15, 0, 0, 0, 0)
    assert result.unserved_requests == 15 * 15 + 15 * 15  # 450
    assert result.total_requests == (15 + 15 + 4 * 35 + 5 + 5) * 15  # 2700
    assert result.unserved_pct == pytest.approx(100 * 450 / 2700)  # 16.67 %
    # Billed: every pod asked for, ready or not: (2+2+4+4+4+4+1+1) x 15 = 330.
    assert result.billed_replica_seconds == 22 * 15
    # Oracle: ceil(1.5)=2, 2, ceil(3.5)=4 x 4, max(1, ceil(0.5))=1, 1 -> 22 pods x 15 s = 330.
    assert result.oracle_replica_seconds == 22 * 15
    assert result.cost_ratio == 1.0
    # Unserved load only in t = 30..60 s: minute 0.
    assert result.overload_minutes == 1
    assert result.scale_changes == 2  # 2 -> 4 at step 2, 4 -> 1 at step 6


def test_as_dict_has_exactly_the_contract_keys() -> None:
    result = score(15, [10, 10], [1, 1], startup=0, capacity=10)
    assert set(result.as_dict()) == KEYS
    assert result.as_dict()["cost_ratio"] == 1.0


def test_a_pod_removed_before_it_was_ready_never_serves() -> None:
    # step 10 s, startup 30 s = 3 steps, 1 pod ready at start.
    # Step 1 asks for 2 more (ready at step 4); step 2 removes them (newest first); step 3 asks
    # again: the clock restarts, they serve from step 6.
    ready = ready_series([1, 3, 1, 3, 3, 3, 3], step=10, startup=30, initial_replicas=1)
    assert ready == (1, 1, 1, 1, 1, 1, 3)


def test_scale_down_removes_not_ready_pods_first() -> None:
    # 4 ready pods; step 1 asks for 6 (2 starting); step 2 asks for 5: one starting pod goes.
    ready = ready_series([4, 6, 5, 5, 5], step=15, startup=45, initial_replicas=4)
    assert ready == (4, 4, 4, 4, 5)  # the surviving new pod serves from step 1 + 3 = 4


def test_startup_not_a_multiple_of_the_step_serves_from_the_next_step() -> None:
    # startup 20 s with 15 s steps: asked at t=0, ready at 20 s, serves from step 2 (t=30 s).
    assert ready_series([2, 2, 2, 2], step=15, startup=20, initial_replicas=0) == (0, 0, 2, 2)


def test_zero_startup_serves_at_once() -> None:
    assert ready_series([1, 5, 2], step=15, startup=0, initial_replicas=1) == (1, 5, 2)


def test_initial_replicas_counts_a_first_step_change() -> None:
    result = score(15, [20, 20], [2, 2], startup=15, capacity=10, initial_replicas=1)
    # One pod ready; one more asked at t=0 serves from step 1: 10 rps unserved for 15 s.
    assert result.ready == (1, 2)
    assert result.unserved_requests == 150
    assert result.scale_changes == 1


def test_cost_ratio_against_min_replicas_oracle() -> None:
    # No load at all: the oracle still runs minReplicas=2; 3 pods cost 1.5 times that.
    result = score(60, [0, 0, 0], [3, 3, 3], startup=0, capacity=5, min_replicas=2)
    assert result.oracle_replica_seconds == 2 * 3 * 60
    assert result.cost_ratio == pytest.approx(1.5)
    assert result.unserved_pct == 0.0


def test_overload_minutes_are_wall_clock_buckets() -> None:
    # 15 s steps: steps 3 and 4 straddle minute 0 and minute 1; step 8 is in minute 2.
    unserved_steps = {3, 4, 8}
    demand = [20.0 if k in unserved_steps else 5.0 for k in range(12)]
    result = score(15, demand, [1] * 12, startup=0, capacity=10)
    assert result.overloaded_minutes == frozenset({0, 1, 2})
    # A 90 s step with unserved load overlaps minutes 1 and 2 (t = 90..180 s).
    wide = score(90, [5, 20], [1, 1], startup=0, capacity=10)
    assert wide.overloaded_minutes == frozenset({1, 2})


def test_oracle_replicas_is_exact_at_multiples_of_capacity() -> None:
    assert oracle_replicas(0.3 * 3, 0.3, 0) == 3  # 0.9 / 0.3 is 3.0000000000000004 in floats
    assert oracle_replicas(0.0, 10, 0) == 0
    assert oracle_replicas(0.0, 10, 2) == 2
    assert oracle_replicas(10.01, 10, 0) == 2


def test_total_sums_seconds_and_requests_and_recomputes_ratios() -> None:
    a = score(60, [10, 30], [1, 1], startup=0, capacity=10)  # minute 1 overloaded, 20 rps
    b = score(60, [10, 10], [4, 4], startup=0, capacity=10)  # over-provisioned
    both = total([a, b])
    assert both.billed_replica_seconds == (1 + 1 + 4 + 4) * 60
    assert both.oracle_replica_seconds == (1 + 3 + 1 + 1) * 60
    assert both.cost_ratio == pytest.approx(10 / 6)  # not the mean of 2/4 and 8/2
    assert both.unserved_pct == pytest.approx(100 * 20 * 60 / ((10 + 30 + 10 + 10) * 60))
    assert both.overload_minutes == 1
    assert both.scale_changes == 0
    assert set(both.as_dict()) == KEYS


def test_total_counts_a_wall_clock_minute_once() -> None:
    a = score(60, [30], [1], startup=0, capacity=10)
    assert total([a, a]).overload_minutes == 1


def test_degenerate_ratios() -> None:
    idle = Score(0, 0, 0, 0, frozenset(), 0)
    assert idle.cost_ratio == 1.0 and idle.unserved_pct == 0.0
    assert math.isinf(Score(10, 0, 0, 0, frozenset(), 0).cost_ratio)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: score(0, [1], [1], startup=0, capacity=1), "step must be > 0"),
        (lambda: score(15, [1, 1], [1], startup=0, capacity=1), "2 demand steps but 1 desired"),
        (lambda: score(15, [1], [1], startup=0, capacity=0), "capacity must be > 0"),
        (lambda: score(15, [1], [1], startup=-1, capacity=1), "startup must be >= 0"),
        (lambda: score(15, [1, -1], [1, 1], startup=0, capacity=1), "step 1: demand must be"),
        (lambda: score(15, [1, 1], [1, -1], startup=0, capacity=1), "step 1: desired replicas"),
        (lambda: score(15, [], [], startup=0, capacity=1), "no steps"),
    ],
)
def test_invalid_inputs(call: Callable[[], Score], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


demands = st.lists(st.floats(min_value=0, max_value=500), min_size=1, max_size=60)


@given(demand=demands, capacity=st.floats(min_value=0.5, max_value=50), floor=st.integers(0, 3))
def test_the_oracle_schedule_itself_scores_perfectly(
    demand: list[float], capacity: float, floor: int
) -> None:
    oracle = [oracle_replicas(r, capacity, floor) for r in demand]
    result = score(15, demand, oracle, startup=0, capacity=capacity, min_replicas=floor)
    assert result.unserved_requests == pytest.approx(0, abs=1e-6)
    assert result.overload_minutes == 0
    assert result.cost_ratio == pytest.approx(1.0)


@given(
    desired=st.lists(st.integers(0, 20), min_size=1, max_size=60),
    startup=st.sampled_from([0, 15, 30, 45, 100]),
    initial=st.integers(0, 20),
)
def test_ready_never_exceeds_running_and_catches_up(
    desired: list[int], startup: int, initial: int
) -> None:
    ready = ready_series(desired, 15, startup, initial)
    assert all(0 <= r <= d for r, d in zip(ready, desired, strict=True))
    # Holding a count for longer than the startup makes every pod ready.
    steady = ready_series([*desired, *([desired[-1]] * 8)], 15, startup, initial)
    assert steady[-1] == desired[-1]
