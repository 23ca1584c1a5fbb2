"""SLO first: the objective's units never decide how many replicas a workload gets.

Without a binding shared limit every workload gets exactly the fewest replicas that meet its SLO
(within its bounds), over capacities from 1e-3 to 1e5 requests/s, prices from 0 to 1000/h,
priorities from 0.01 to 1000, utilisation and latency SLOs. With a binding one, the higher
priority keeps its SLO first. Trading service for money happens only with `value` set.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from peakplan.curves import needed_replicas
from peakplan.planner import SolveOptions, plan
from peakplan.problem import SLO, Budget, LatencySLO, Problem, UtilizationSLO, Workload

capacities = st.floats(1e-3, 1e5)
prices = st.one_of(st.just(0.0), st.floats(0.0, 1000.0))
priorities = st.floats(0.01, 1000.0)


@st.composite
def slos(draw: st.DrawFn, capacity: float) -> SLO:
    if draw(st.booleans()):
        return UtilizationSLO(draw(st.floats(0.05, 1.0)))
    # A latency SLO whose workers (capacity x service time) stay a realistic number.
    service_ms = draw(st.floats(1.0, min(1000.0, 5e5 / capacity))) if capacity > 0 else 10.0
    return LatencySLO(service_ms * draw(st.floats(1.05, 20.0)), service_ms)


@st.composite
def workloads(draw: st.DrawFn, name: str) -> Workload:
    capacity = draw(capacities)
    slo = draw(slos(capacity))
    needed_at = draw(st.integers(0, 300))  # demand worth about this many replicas at 100 %
    demand = capacity * needed_at * draw(st.floats(0.3, 1.0))
    lo = draw(st.integers(0, 5))
    price = draw(prices)
    return Workload(
        name,
        demand=demand,
        current=draw(st.integers(0, 400)),
        lo=lo,
        hi=lo + draw(st.integers(0, 1500)),
        capacity=capacity,
        slo=slo,
        priority=draw(priorities),
        price=price,
        churn=draw(st.sampled_from([0.0, 0.1 * price, price])),
    )


def own_best(w: Workload) -> int:
    return min(max(needed_replicas(w), w.lo), w.hi)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=4, unique=True).flatmap(
    lambda ids: st.tuples(*(workloads(f"w{i}") for i in ids))
))  # fmt: skip
def test_without_a_binding_limit_every_workload_gets_what_its_slo_needs(
    ws: tuple[Workload, ...],
) -> None:
    alone = plan(Problem(ws))
    # A budget with room to spare (what every workload needs, and more) changes nothing.
    room = 2.0 * sum(w.price * max(own_best(w), w.current) for w in ws) + 1.0
    slack = plan(Problem(ws, Budget(max_cost_per_hour=room)))
    for w in ws:
        assert alone.decision(w.name).desired == own_best(w), w
        assert slack.decision(w.name).desired == own_best(w), w
    assert not slack.binding


@settings(max_examples=200, deadline=None)
@given(
    capacity=capacities,
    price=prices,
    low=priorities,
    # Load lost above 100 % counts twice (short of the SLO and not served), so the lower
    # priority's first replicas, which serve lost load, outweigh the higher one's last replica
    # (above its target, serving everything) up to a factor of two: above it, strictly first.
    factor=st.floats(2.01, 100.0),
    need=st.integers(4, 200),
    share=st.floats(0.1, 0.95),
)
def test_under_a_binding_budget_the_higher_priority_keeps_its_slo_first(
    capacity: float, price: float, low: float, factor: float, need: int, share: float
) -> None:
    # Two workloads alike in everything but priority; the budget covers `share` of their need.
    price = max(price, 0.01)
    demand = capacity * 0.8 * need
    a = Workload("a", demand, 0, 0, 10 * need, capacity, priority=low * factor, price=price)
    b = replace(a, name="b", priority=low)
    needs = needed_replicas(a)
    budget = Budget(max_cost_per_hour=price * math.floor(2 * needs * share))
    result = plan(Problem((a, b), budget), SolveOptions(gap=1e-9))
    got_a, got_b = result.decision("a").desired, result.decision("b").desired
    assert got_a + got_b <= math.floor(2 * needs * share)
    assert got_a == min(needs, math.floor(2 * needs * share))  # served first, fully if it fits
    assert got_a >= got_b
    assert result.binding and result.binding[0].squeezed.get("b", 0) > 0


def test_a_replica_that_costs_more_than_its_requests_are_worth_is_still_added() -> None:
    # A GPU inference pod: 4/h for 0.5 requests/s. The units never decide: the SLO does.
    gpu = Workload("llm", demand=30.0, current=2, lo=1, hi=500, capacity=0.5, price=4.0)
    assert plan(Problem((gpu,))).decision("llm").desired == needed_replicas(gpu) == 75


def test_trading_service_for_money_is_opt_in_and_says_so() -> None:
    gpu = Workload("llm", demand=30.0, current=2, lo=1, hi=500, capacity=0.5, price=4.0)
    # Worth 0.0001 per request: 0.36/h per request/s, while a replica (0.4 rps at the SLO)
    # costs 4/h: no replica beyond the floor pays for itself.
    cheap = replace(gpu, value=0.0001 * 3600)
    d = plan(Problem((cheap,))).decision("llm")
    assert d.desired == 1
    assert d.limited_by == "value" and "worth" in d.reason
    # Worth 1 per request: every replica the SLO needs pays for itself many times.
    dear = replace(gpu, value=1.0 * 3600)
    assert plan(Problem((dear,))).decision("llm").desired == 75
