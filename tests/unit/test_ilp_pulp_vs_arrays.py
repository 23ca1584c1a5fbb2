"""The PuLP model against the array path it replaced (bench/ilp_arrays.py): the same program, so
HiGHS gives the same answers - every workload's count, the objective, the status and the bound -
on random problems small and large, in both exact forms, warm-started, relaxed and re-solved with
a limit changed; and plan() gives the same plan through either.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from test_ilp_bruteforce import problems

from peakplan import Problem, SolveOptions, plan
from peakplan import planner as planner_module
from peakplan.curves import build_curve, slo_weight
from peakplan.greedy import greedy_counts
from peakplan.ilp import IlpModel, IlpResult
from peakplan.planner import _soft_penalties

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from ilp_arrays import ArrayIlpModel
from plan_scaling import instance


def same(a: IlpResult, b: IlpResult) -> None:
    assert a.counts == b.counts
    assert a.status == b.status
    assert (a.variables, a.constraints, a.formulation) == (
        b.variables,
        b.constraints,
        b.formulation,
    )
    for x, y in ((a.objective, b.objective), (a.best_bound, b.best_bound)):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            assert x == pytest.approx(y, rel=1e-12, abs=1e-12)


def compare(problem: Problem, form: str, gap: float) -> None:
    curves = [build_curve(w, slo_weight(problem.workloads)) for w in problem.workloads]
    limits = _soft_penalties(curves, problem.budget.limits())
    start = greedy_counts(curves, limits.effective)
    models = [
        IlpModel(curves, limits.given, limits.soft, form),  # type: ignore[arg-type]
        ArrayIlpModel(curves, limits.given, limits.soft, form),  # type: ignore[arg-type]
    ]
    same(*(m.solve(start, gap=gap) for m in models))
    same(*(m.solve(relaxation=True) for m in models))
    same(*(m.solve(None, gap=gap) for m in models))  # no warm start
    for r in limits.given:  # re-solved with a limit 10 % looser, as the planner prices it
        for m in models:
            m.set_limit(r, limits.given[r] * 1.1)
        same(*(m.solve(start, gap=gap) for m in models))


def same_plan(problem: Problem, monkeypatch: pytest.MonkeyPatch) -> None:
    options = SolveOptions(always_solve=True, deadline=60.0, time_limit=30.0)
    ours = plan(problem, options)
    with monkeypatch.context() as patch:
        patch.setattr(planner_module, "IlpModel", ArrayIlpModel)
        theirs = plan(problem, options)
    assert ours.desired == theirs.desired
    assert ours.objective == theirs.objective
    assert (ours.solver.status, ours.solver.used_greedy) == (
        theirs.solver.status,
        theirs.solver.used_greedy,
    )
    assert [(b.constraint, b.relax) for b in ours.binding] == [
        (b.constraint, b.relax) for b in theirs.binding
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_small_random_problems_solve_the_same(problem: Problem) -> None:
    for form in ("envelope", "choice"):
        compare(problem, form, 1e-6)


@pytest.mark.parametrize(("n", "seed", "wide"), [(50, 1, False), (200, 2, True), (1000, 1, False)])
def test_large_random_problems_solve_the_same(n: int, seed: int, wide: bool) -> None:
    compare(instance(n, seed, wide), "auto", 1e-3)


@pytest.mark.parametrize(("n", "seed"), [(30, 4), (300, 5)])
def test_plan_is_the_same_through_either(
    n: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    same_plan(instance(n, seed), monkeypatch)
