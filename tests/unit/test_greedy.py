"""The greedy allocation: always feasible, never below its start, optimal where theory says so."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from peakplan.curves import Curve, build_curve, total_cost
from peakplan.greedy import budget_use, greedy_counts
from peakplan.problem import LatencySLO, UtilizationSLO, Workload

slos = st.one_of(
    st.builds(UtilizationSLO, st.sampled_from([0.6, 0.8, 1.0])),
    st.builds(
        LatencySLO,
        latency_ms=st.sampled_from([30.0, 60.0]),
        service_time_ms=st.sampled_from([20.0, 25.0]),
    ),
)


@st.composite
def curve_sets(draw: st.DrawFn, slo: st.SearchStrategy[object] = slos) -> list[Curve]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        lo = draw(st.integers(0, 4))
        w = Workload(
            name=f"w{i}",
            demand=draw(st.floats(0.0, 300.0)),
            current=draw(st.integers(0, 20)),
            lo=lo,
            hi=draw(st.integers(lo, lo + 25)),
            capacity=draw(st.floats(10.0, 60.0)),
            slo=draw(slo),  # type: ignore[arg-type]
            priority=draw(st.sampled_from([0.1, 1.0, 10.0])),
            price=draw(st.sampled_from([0.05, 0.2, 1.0])),
            cpu=draw(st.sampled_from([0.0, 0.5, 2.0])),
            memory=draw(st.sampled_from([0.0, 1.0, 4.0])),
            churn=draw(st.sampled_from([0.0, 0.01])),
        )
        out.append(build_curve(w))
    return out


RESOURCES = ("cost", "cpu", "memory")


@settings(max_examples=200, deadline=None)
@given(curve_sets(), st.lists(st.floats(0.0, 1.2), min_size=3, max_size=3), st.data())
def test_greedy_is_feasible_and_stays_on_candidates(
    curves: list[Curve], fractions: list[float], data: st.DataObject
) -> None:
    floors = [c.counts[0] for c in curves]
    best = [c.best for c in curves]
    limits = {}
    for r, f in zip(RESOURCES, fractions, strict=True):
        low, high = budget_use(curves, floors, r), budget_use(curves, best, r)
        limits[r] = low + f * (high - low)
    start = [c.counts[data.draw(st.integers(0, len(c.counts) - 1))] for c in curves]
    start_ok = all(budget_use(curves, start, r) <= lim + 1e-9 for r, lim in limits.items())
    counts = greedy_counts(curves, limits, start if start_ok else None)
    for c, n in zip(curves, counts, strict=True):
        assert c.is_candidate(n)
    for r, limit in limits.items():
        assert budget_use(curves, counts, r) <= limit + 1e-6
    if start_ok:
        assert all(n >= s for n, s in zip(counts, start, strict=True))


@settings(max_examples=100, deadline=None)
@given(curve_sets())
def test_without_limits_the_greedy_reaches_every_curves_best(curves: list[Curve]) -> None:
    assert greedy_counts(curves, {}) == [c.best for c in curves]


@settings(max_examples=150, deadline=None)
@given(
    curve_sets(slo=st.builds(UtilizationSLO, st.sampled_from([0.6, 0.8, 1.0]))),
    st.floats(0.0, 1.0),
)
def test_greedy_is_optimal_for_convex_curves_under_one_budget_of_equal_steps(
    curves: list[Curve], fraction: float
) -> None:
    # Each replica uses one unit of the only limit (all prices equal): marginal analysis on
    # convex separable curves is then exact, so the greedy must match brute force.
    same = [
        build_curve(
            Workload(
                name=c.workload.name,
                demand=c.workload.demand,
                current=c.workload.current,
                lo=c.workload.lo,
                hi=min(c.workload.hi, c.workload.lo + 8),
                capacity=c.workload.capacity,
                slo=c.workload.slo,
                priority=c.workload.priority,
                price=1.0,
            )
        )
        for c in curves[:4]
    ]
    floors = sum(c.counts[0] for c in same)
    limit = floors + round(fraction * (sum(c.best for c in same) - floors))
    counts = greedy_counts(same, {"cost": float(limit)})
    value = sum(total_cost(c.workload, n) for c, n in zip(same, counts, strict=True))
    grid = itertools.product(*(range(c.workload.lo, c.workload.hi + 1) for c in same))
    brute = min(
        sum(total_cost(c.workload, n) for c, n in zip(same, combo, strict=True))
        for combo in grid
        if sum(combo) <= limit
    )
    assert value <= brute + 1e-6 * max(1.0, abs(brute))
