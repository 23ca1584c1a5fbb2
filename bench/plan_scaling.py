"""How the planner scales with the number of workloads, under a binding budget.

For N workloads (realistic random instances: demand, capacity, prices, priorities, 20 % latency
SLOs, current replicas, HPA-style behaviour limits folded into the bounds) it prints a markdown
table of median-of-3 seconds for each phase, the whole `plan()` call with its explanation, the
gap of the solver's and of the greedy's plan to the LP bound, and the same program built as plain
arrays and solved with highspy (bench/ilp_arrays.py, the path PeakPilot used before its model went
back to PuLP), build + solve and the whole plan() call, for the ratios PuLP / arrays.

    python bench/plan_scaling.py            # N = 10, 50, 200, 1000, 5000
    python bench/plan_scaling.py --quick    # N = 10, 50, 200
    python bench/plan_scaling.py --wide     # bounds without behaviour limits: long curves
    python bench/plan_scaling.py --sizes 1000
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version

from ilp_arrays import ArrayIlpModel
from peakplan import Budget, LatencySLO, Problem, SolveOptions, UtilizationSLO, Workload, plan
from peakplan import planner as planner_module
from peakplan.curves import build_curve, slo_weight
from peakplan.greedy import greedy_counts
from peakplan.ilp import IlpModel
from peakplan.planner import _soft_penalties, objective_value
from peakplan.problem import usage

GAP = 1e-3


def instance(n: int, seed: int, wide: bool = False) -> Problem:
    """n workloads near their needs, with the cost and CPU budgets below what they would take."""
    rng = random.Random(seed)
    ws = []
    for i in range(n):
        capacity = rng.uniform(20.0, 200.0)
        demand = capacity * rng.lognormvariate(math.log(8.0), 1.0)
        if rng.random() < 0.2:
            service = rng.choice([10.0, 20.0, 25.0, 50.0])
            slo: UtilizationSLO | LatencySLO = LatencySLO(service * rng.uniform(1.2, 3.0), service)
        else:
            slo = UtilizationSLO(rng.choice([0.6, 0.7, 0.8, 0.85]))
        target = slo.target if isinstance(slo, UtilizationSLO) else 0.7
        current = max(1, round(demand / (capacity * target) * rng.uniform(0.6, 1.3)))
        floor, ceiling = rng.randint(1, 3), 500
        # Behaviour limits for one 15 s step: down 10 %, up max(100 %, 4 pods); or (wide)
        # only min/max replicas, the worst case for the length of the curves.
        lo = min(max(floor, current - math.ceil(0.1 * current)), ceiling)
        hi = max(lo, min(ceiling, max(2 * current, current + 4)))
        if wide:
            lo, hi = floor, ceiling
        ws.append(
            Workload(
                name=f"w{i}",
                demand=demand,
                current=current,
                lo=lo,
                hi=hi,
                capacity=capacity,
                slo=slo,
                priority=rng.choice([0.2, 1.0, 5.0, 20.0]),
                price=rng.uniform(0.02, 0.6),
                cpu=rng.choice([0.25, 0.5, 1.0, 2.0]),
                memory=rng.choice([0.5, 1.0, 2.0, 4.0]) * 2**30,
                churn=0.001,
            )
        )
    curves = [build_curve(w) for w in ws]

    def between(resource: str, fraction: float) -> float:
        floors = [c.counts[0] for c in curves]
        low = sum(usage(c.workload, resource, n) for c, n in zip(curves, floors, strict=True))
        high = sum(usage(c.workload, resource, c.best) for c in curves)
        return low + fraction * (high - low)

    # Hard and binding: between what the floors use and what the workloads would take.
    return Problem(
        tuple(ws), Budget(max_cost_per_hour=between("cost", 0.5), max_cpu=between("cpu", 0.7))
    )


def median_seconds[T](work: Callable[[], T], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(times), result


def plan_on_arrays(problem: Problem) -> float:
    """plan() with its integer programs built as arrays and solved by highspy: its objective."""
    # The planner's IlpModel is swapped for the duration (a bench's patch, not an API).
    original = getattr(planner_module, "IlpModel")  # noqa: B009
    setattr(planner_module, "IlpModel", ArrayIlpModel)  # noqa: B010
    try:
        return plan(problem, SolveOptions()).objective
    finally:
        setattr(planner_module, "IlpModel", original)  # noqa: B010


@dataclass
class Row:
    n: int
    columns: int
    rows: int
    curves: float
    greedy: float
    build: float
    solve: float
    plan_total: float
    status: str
    gap_lp: float
    greedy_gap_lp: float
    arrays: float
    ratio: float
    plan_arrays: float
    plan_ratio: float
    fallback: str
    binding: str


def measure(n: int, repeat: int, seed: int, wide: bool) -> Row:
    problem = instance(n, seed, wide)
    weight = slo_weight(problem.workloads)  # as plan() weighs them: objectives compare
    curves_s, curves = median_seconds(
        lambda: [build_curve(w, weight) for w in problem.workloads], repeat
    )
    limits = _soft_penalties(curves, problem.budget.limits())
    greedy_s, greedy = median_seconds(lambda: greedy_counts(curves, limits.effective), repeat)

    def build() -> IlpModel:
        return IlpModel(curves, limits.given, limits.soft)

    build_s, model = median_seconds(build, repeat)
    solve_s, result = median_seconds(lambda: model.solve(greedy, gap=GAP), repeat)
    lp = model.solve(relaxation=True)
    plan_s, full = median_seconds(lambda: plan(problem, SolveOptions()), repeat)
    assert result.counts is not None and lp.best_bound is not None

    def value(counts: Sequence[int]) -> float:
        return objective_value(curves, counts, limits.given, limits.soft)

    bound = lp.best_bound
    exact = value(result.counts)
    arrays_build_s, arrays = median_seconds(
        lambda: ArrayIlpModel(curves, limits.given, limits.soft), repeat
    )
    arrays_solve_s, other = median_seconds(lambda: arrays.solve(greedy, gap=GAP), repeat)
    assert other.counts == result.counts, "PuLP and the arrays disagree"
    plan_arrays_s, other_objective = median_seconds(lambda: plan_on_arrays(problem), repeat)
    assert other_objective == full.objective, "plan() differs on the arrays"
    assert full.objective <= value(greedy) + 1e-9 * abs(value(greedy)), "worse than greedy"
    return Row(
        n=n,
        columns=result.variables,
        rows=result.constraints,
        curves=curves_s,
        greedy=greedy_s,
        build=build_s,
        solve=solve_s,
        plan_total=plan_s,
        status=full.solver.status,
        gap_lp=(exact - bound) / abs(exact),
        greedy_gap_lp=(value(greedy) - bound) / abs(exact),
        arrays=arrays_build_s + arrays_solve_s,
        ratio=(build_s + solve_s) / (arrays_build_s + arrays_solve_s),
        plan_arrays=plan_arrays_s,
        plan_ratio=plan_s / plan_arrays_s,
        fallback="greedy" if full.solver.used_greedy else "-",
        binding=",".join(b.constraint + (" (soft)" if b.soft else "") for b in full.binding),
    )


def table(rows: Sequence[Row]) -> str:
    head = (
        "| N | cols | rows | curves s | greedy s | build s | solve s | plan() s | status "
        "| gap to LP | greedy gap | arrays s | PuLP/arrays | plan() arrays s | plan() PuLP/arrays "
        "| fallback | binding |"
    )
    lines = [head, "|" + "---|" * 17]
    for r in rows:
        lines.append(
            f"| {r.n} | {r.columns} | {r.rows} | {r.curves:.3f} | {r.greedy:.3f} | {r.build:.3f} "
            f"| {r.solve:.3f} | {r.plan_total:.3f} | {r.status} | {r.gap_lp:.1e} "
            f"| {r.greedy_gap_lp:.1e} | {r.arrays:.3f} | {r.ratio:.2f} | {r.plan_arrays:.3f} "
            f"| {r.plan_ratio:.2f} | {r.fallback} "
            f"| {r.binding} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10, 50, 200 only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--wide", action="store_true", help="bounds are min/max replicas only (no behaviour limits)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="these N instead")
    args = parser.parse_args()
    sizes = [10, 50, 200] if args.quick else [10, 50, 200, 1000, 5000]
    sizes = args.sizes or sizes
    rows = [measure(n, args.repeat, args.seed, args.wide) for n in sizes]
    print(table(rows))
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PuLP {version('pulp')}, "
        f"highspy {version('highspy')}; "
        f"median of {args.repeat}; gaps relative to the solver's objective."
    )


if __name__ == "__main__":
    main()
