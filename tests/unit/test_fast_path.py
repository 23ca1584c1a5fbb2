"""The single-workload fast path of `plan()` gives the general path's answer, step for step;
so do the cheaper ways the controller builds its values (a Load to size, a raised floor).

With one workload and no shared limit the plan is the workload's own best count; `plan()` then
skips the allocation and the pricing of limits. Replays here run both paths on the same
synthetic traces (in memory, no files) and compare every step and every plan.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest

from peakplan import controller, planner
from peakplan.curves import Load, needed_replicas
from peakplan.planner import SolveOptions, plan
from peakplan.policy import ForecastSettings, Policy, WorkloadPolicy
from peakplan.problem import Budget, LatencySLO, Problem, UtilizationSLO, Workload
from peakplan.replay import ReplaySettings, Trace, replay

T0 = 1_000_000_020.0


def shaped_trace(hours: int, seed: int) -> Trace:
    """1-minute counts: a daily-like swell, noise, bursts, drops to near zero, missing minutes."""
    rng = random.Random(seed)
    counts: list[float | None] = []
    for k in range(hours * 60):
        swell = 1.0 + 0.8 * math.sin(2 * math.pi * k / 240)
        burst = 4.0 if rng.random() < 0.03 else (0.05 if rng.random() < 0.02 else 1.0)
        missing = k > 0 and rng.random() < 0.01
        counts.append(None if missing else 3000 * swell * burst * rng.uniform(0.8, 1.2))
    return Trace.from_counts(counts, 60.0, T0)


POLICIES = {
    "new user's template": Policy(
        (WorkloadPolicy("app", 2, 1000, capacity=3.0, price=1.0, startup=60.0),)
    ),
    "latency SLO, priority 50": Policy(
        (
            WorkloadPolicy(
                "app",
                1,
                400,
                capacity=5.0,
                slo=LatencySLO(latency_ms=120.0, service_time_ms=50.0),
                priority=50.0,
                price=0.2,
                startup=30.0,
            ),
        )
    ),
    "reactive, utilisation 0.6": Policy(
        (WorkloadPolicy("app", 2, 300, capacity=4.0, slo=UtilizationSLO(0.6), price=0.5),),
        forecast=ForecastSettings(method="reactive"),
    ),
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_a_replay_is_the_same_with_and_without_the_fast_path(name: str) -> None:
    policy = POLICIES[name]
    trace = shaped_trace(6, seed=len(name))
    fast = ReplaySettings(options=SolveOptions(explain=False))
    general = ReplaySettings(options=SolveOptions(explain=False, fast_path=False))
    a = replay(policy, {"app": trace}, fast).controllers["peakpilot"].workloads["app"]
    b = replay(policy, {"app": trace}, general).controllers["peakpilot"].workloads["app"]
    assert len(a.desired) == 6 * 60 * 4
    assert len(set(a.desired)) > 5  # the replay really scales
    assert a.desired == b.desired
    assert a.extra == b.extra
    assert a.score == b.score


def _plans_equal(workload: Workload, options: SolveOptions) -> None:
    problem = Problem((workload,))
    fast = plan(problem, options)
    general = plan(problem, replace(options, fast_path=False))
    assert fast.workloads == general.workloads
    assert (fast.objective, fast.cost_per_hour) == (general.objective, general.cost_per_hour)
    assert (fast.binding, fast.notes) == (general.binding, general.notes)
    assert (fast.solver.solver, fast.solver.status) == (general.solver.solver, "optimal")


@pytest.mark.parametrize("seed", range(40))
def test_a_single_plan_is_the_same_with_and_without_the_fast_path(seed: int) -> None:
    rng = random.Random(seed)
    lo = rng.randint(0, 20)
    hi = lo + rng.randint(0, 200)
    slo = (
        UtilizationSLO(rng.uniform(0.3, 1.0))
        if rng.random() < 0.6
        else LatencySLO(latency_ms=rng.uniform(60, 400), service_time_ms=rng.uniform(5, 50))
    )
    workload = Workload(
        "app",
        demand=rng.choice([0.0, rng.uniform(0, 2000)]),
        current=rng.randint(lo, hi),
        lo=lo,
        hi=hi,
        capacity=rng.uniform(0.5, 50),
        slo=slo,
        priority=rng.choice([0.001, 1.0, rng.uniform(0.01, 1000)]),
        value=rng.choice([None, None, rng.uniform(0, 1000)]),
        price=rng.choice([0.0, rng.uniform(0, 10)]),
        churn=rng.uniform(0, 1),
    )
    _plans_equal(workload, SolveOptions())
    _plans_equal(workload, SolveOptions(explain=False))


def test_the_fast_path_runs_no_allocation_and_a_shared_limit_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_allocation(*args: object, **kwargs: object) -> None:
        raise AssertionError("the allocation ran")

    monkeypatch.setattr(planner, "_allocate", no_allocation)
    w = Workload("a", demand=100.0, current=5, lo=1, hi=50, capacity=10.0, price=1.0)
    assert plan(Problem((w,))).workloads[0].desired == 13  # 100 rps at 0.8 x 10 rps a replica
    for problem in (
        Problem((w,), Budget(max_cost_per_hour=1e6)),
        Problem((w, replace(w, name="b"))),
    ):
        with pytest.raises(AssertionError, match="the allocation ran"):
            plan(problem)
    with pytest.raises(AssertionError, match="the allocation ran"):
        plan(Problem((w,)), SolveOptions(fast_path=False))


@pytest.mark.parametrize("seed", range(40))
def test_a_load_needs_what_a_workload_with_its_demand_needs(seed: int) -> None:
    # The controller sizes each demand from a Load (nothing to validate), not a Workload.
    rng = random.Random(seed)
    slo = (
        UtilizationSLO(rng.uniform(0.3, 1.0))
        if rng.random() < 0.5
        else LatencySLO(latency_ms=rng.uniform(60, 400), service_time_ms=rng.uniform(5, 50))
    )
    demand, capacity = rng.choice([0.0, rng.uniform(0, 5000)]), rng.uniform(0.5, 50)
    workload = Workload("app", demand, 3, 0, 10, capacity, slo)
    assert needed_replicas(Load(demand, capacity, slo)) == needed_replicas(workload)


@pytest.mark.parametrize("demand", [math.nan, math.inf, -1.0])
def test_sizing_an_invalid_demand_fails_as_a_workload_would(demand: float) -> None:
    wp = WorkloadPolicy("app", 2, 10, capacity=3.0)
    with pytest.raises(ValueError, match="workload app: demand must be finite and >= 0"):
        controller._needed(wp, demand)


def test_a_raised_floor_is_the_replaced_workload() -> None:
    w = Workload("a", 100.0, 5, 3, 50, 10.0, price=1.0, churn=0.1, floor_reason="minReplicas")
    raised = controller._floored(w, 7, "a hold")
    assert raised == replace(w, lo=7, floor_reason="a hold")
    assert repr(raised) == repr(replace(w, lo=7, floor_reason="a hold"))
    assert (w.lo, w.floor_reason) == (3, "minReplicas")  # the original is untouched


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"priority": math.nan}, "priority must be finite"),
        ({"priority": 0.0}, "priority must be > 0"),
        ({"priority": 0.0, "price": -1.0}, "price must be finite"),  # the first named wins
        ({"cpu": math.inf}, "cpu must be finite"),
        ({"memory": -1.0}, "memory must be finite"),
        ({"churn": math.nan}, "churn must be finite"),
        ({"value": -0.5}, "value must be finite"),
    ],
)
def test_each_invalid_amount_is_named(changes: dict[str, float], message: str) -> None:
    fields: dict[str, Any] = {"name": "a", "demand": 1.0, "current": 1, "lo": 0, "hi": 5}
    with pytest.raises(ValueError, match=f"workload a: {message}"):
        Workload(**fields, capacity=1.0, **changes)


def test_budget_limits_in_their_order() -> None:
    assert Budget().limits() == {}
    both = Budget(max_memory=2.0, max_cost_per_hour=1.0)
    assert list(both.limits().items()) == [("cost", 1.0), ("memory", 2.0)]
    assert Budget(max_cpu=0.0).limits() == {"cpu": 0.0}
