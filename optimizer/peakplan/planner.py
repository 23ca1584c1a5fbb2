"""`plan(problem) -> Plan`: the joint allocation, its fallback, and its explanation."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from peakplan.curves import Curve, build_curve, needed_replicas, penalty
from peakplan.greedy import budget_use, greedy_counts
from peakplan.ilp import Formulation, IlpResult, SolverName, solve_ilp
from peakplan.plan import Binding, Plan, Relaxation, SolverReport, WorkloadDecision
from peakplan.problem import Budget, LatencySLO, Problem, Workload, usage

TOL = 1e-6
RESOURCE_LABEL = {"cost": "cost budget", "cpu": "CPU budget", "memory": "memory budget"}


@dataclass(frozen=True)
class SolveOptions:
    solver: SolverName = "highs"
    time_limit: float = 3.0  # seconds given to the solver
    deadline: float | None = None  # seconds for the whole solve; default time_limit + 1
    gap: float = 1e-3  # relative optimality gap accepted
    formulation: Formulation = "auto"
    explain: bool = True  # re-solve with each binding limit relaxed, to price it
    relax_fraction: float = 0.10  # how much to relax a binding limit when pricing it
    cbc_path: str | None = None  # a specific CBC binary (default: the one PuLP ships)
    always_solve: bool = False  # run the solver even when no shared limit binds


@dataclass(frozen=True)
class _Allocation:
    counts: list[int]
    objective: float
    report: SolverReport


def objective_value(
    curves: Sequence[Curve],
    counts: Sequence[int],
    limits: Mapping[str, float],
    soft_penalty: Mapping[str, float],
) -> float:
    """The objective of the program, recomputed from the curves (money per hour)."""
    value = sum(c.total(n) for c, n in zip(curves, counts, strict=True))
    for r, price in soft_penalty.items():
        value += price * max(0.0, budget_use(curves, counts, r) - limits[r])
    return value


def _soft_penalties(
    curves: Sequence[Curve], limits: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """Soft limits (the floors alone exceed them) with a penalty no replica's gain outweighs."""
    floors = [c.counts[0] for c in curves]
    soft: dict[str, float] = {}
    effective: dict[str, float] = {}
    for r, limit in limits.items():
        floor_use = budget_use(curves, floors, r)
        if floor_use > limit + TOL:
            steepest = 0.0
            for c in curves:
                per = usage(c.workload, r, 1)
                if per > 0 and len(c.counts) > 1:
                    drops = (
                        (a - b) / (kb - ka)
                        for a, b, ka, kb in zip(
                            c.totals, c.totals[1:], c.counts, c.counts[1:], strict=False
                        )
                    )
                    steepest = max(steepest, max(drops) / per)
            soft[r] = 10.0 * steepest + 1.0
            effective[r] = floor_use
        else:
            effective[r] = limit
    return soft, effective


def _feasible(
    curves: Sequence[Curve], counts: Sequence[int], hard: Mapping[str, float]
) -> bool:
    for c, n in zip(curves, counts, strict=True):
        if n not in c.counts:
            return False
    return all(budget_use(curves, counts, r) <= limit * (1 + 1e-9) + TOL for r, limit in hard.items())


def _run_with_deadline(
    curves: Sequence[Curve],
    limits: Mapping[str, float],
    soft: Mapping[str, float],
    start: Sequence[int],
    options: SolveOptions,
    seconds_left: float,
) -> IlpResult | BaseException | None:
    """Solve in a worker thread; None when it overran the deadline (its answer is dropped)."""
    box: list[IlpResult | BaseException] = []

    def work() -> None:
        try:
            box.append(
                solve_ilp(
                    curves,
                    limits,
                    soft,
                    start,
                    solver=options.solver,
                    time_limit=max(0.01, min(options.time_limit, seconds_left)),
                    gap=options.gap,
                    formulation=options.formulation,
                    cbc_path=options.cbc_path,
                )
            )
        except Exception as exc:  # any solver failure means: use the greedy plan
            box.append(exc)

    worker = threading.Thread(target=work, name="peakplan-solver", daemon=True)
    worker.start()
    worker.join(max(0.0, seconds_left))
    return box[0] if box else None


def _allocate(
    curves: Sequence[Curve], limits: Mapping[str, float], options: SolveOptions
) -> _Allocation:
    started = time.perf_counter()
    deadline = options.deadline if options.deadline is not None else options.time_limit + 1.0
    soft, effective = _soft_penalties(curves, limits)
    hard = {r: v for r, v in effective.items()}
    best = [c.best for c in curves]
    if not options.always_solve and (
        not limits or _feasible(curves, best, hard)
    ):
        # No shared limit binds: the problem separates and each curve's minimum is exact.
        value = objective_value(curves, best, limits, soft)
        report = SolverReport("none", "optimal", time.perf_counter() - started, 0.0)
        return _Allocation(best, value, report)

    greedy = greedy_counts(curves, effective)
    greedy_value = objective_value(curves, greedy, limits, soft)
    result = _run_with_deadline(
        curves, limits, soft, greedy, options, deadline - (time.perf_counter() - started)
    )
    seconds = time.perf_counter() - started

    def fallback(status: str, why: str, gap: float | None = None, **size: int) -> _Allocation:
        report = SolverReport(
            options.solver, status, seconds, gap, used_greedy=True, fallback_reason=why, **size
        )
        return _Allocation(greedy, greedy_value, report)

    if result is None:
        return fallback("deadline", f"the solver overran the {deadline:.2f}s deadline")
    if isinstance(result, BaseException):
        return fallback("failed", f"the solver failed: {type(result).__name__}: {result}")
    size = {"variables": result.variables, "constraints": result.constraints}
    if result.counts is None:
        return fallback(result.status, f"the solver returned no solution ({result.status})", **size)
    if not _feasible(curves, result.counts, hard):
        return fallback(result.status, "the solver's answer failed the feasibility re-check", **size)
    value = objective_value(curves, result.counts, limits, soft)
    gap = None
    if result.best_bound is not None:
        gap = max(0.0, (value - result.best_bound) / max(1.0, abs(value)))
    if value > greedy_value + TOL * max(1.0, abs(greedy_value)):
        return fallback(result.status, "the greedy plan beat the solver's answer", gap, **size)
    report = SolverReport(
        options.solver, result.status, seconds, gap, formulation=result.formulation, **size
    )
    return _Allocation(result.counts, value, report)


def _reason(
    w: Workload, desired: int, needed: int, best: int, binding: Sequence[str]
) -> tuple[str, str | None]:
    if desired < best:
        names = ", ".join(RESOURCE_LABEL[r] for r in binding) or "shared budget"
        return (f"squeezed by the {names}: {desired} of the {best} it needs", "budget:" + ",".join(binding))
    if desired == w.lo and desired > needed:
        return f"held at {w.floor_reason} ({w.lo}); load needs {needed}", "floor"
    if desired == w.hi and desired < needed:
        return f"capped by {w.ceiling_reason} ({w.hi}); load needs {needed}", "ceiling"
    if desired != needed:
        return f"kept near current {w.current} (churn); load needs {needed}", None
    if isinstance(w.slo, LatencySLO):
        return (
            f"{w.demand:.1f} rps needs {needed} for mean latency <= {w.slo.latency_ms:g} ms",
            None,
        )
    return f"{w.demand:.1f} rps needs {needed} at {w.slo.target:.0%} target", None


def plan(problem: Problem, options: SolveOptions | None = None) -> Plan:
    """The cheapest replica counts, jointly for all workloads, with what the budget costs."""
    options = options or SolveOptions()
    curves = [build_curve(w) for w in problem.workloads]
    limits = problem.budget.limits()
    alloc = _allocate(curves, limits, options)
    counts = alloc.counts
    soft, _ = _soft_penalties(curves, limits)

    binding: list[Binding] = []
    notes: list[str] = []
    best = [c.best for c in curves]
    for r, limit in limits.items():
        used = budget_use(curves, counts, r)
        needed = budget_use(curves, best, r)
        if r in soft:
            floor = budget_use(curves, [c.counts[0] for c in curves], r)
            notes.append(
                f"the {RESOURCE_LABEL[r]} ({_fmt(r, limit)}) cannot be met: the floors alone "
                f"need {_fmt(r, floor)}; kept as a soft limit, exceeded by {_fmt(r, used - limit)}"
            )
        if needed <= limit + TOL and r not in soft:
            continue
        # Squeezed by this limit: below its best count, and one more replica would not fit.
        squeezed = {
            c.workload.name: b - n
            for c, n, b in zip(curves, counts, best, strict=True)
            if n < b and 0 < usage(c.workload, r, 1) and used + usage(c.workload, r, 1) > limit + TOL
        }
        if not squeezed and r not in soft:
            continue
        relax = _relax(curves, limits, r, alloc, options) if options.explain else None
        binding.append(Binding(r, limit, used, needed, r in soft, squeezed, relax))
    if alloc.report.used_greedy:
        notes.append(f"greedy plan used: {alloc.report.fallback_reason}")

    bound_names = [b.constraint for b in binding]
    decisions = []
    for c, n, b in zip(curves, counts, best, strict=True):
        w = c.workload
        need = needed_replicas(w)
        uses = [r for r in bound_names if usage(w, r, 1) > 0]
        reason, limited = _reason(w, n, need, b, uses)
        util = w.demand / (n * w.capacity) if n > 0 else (math.inf if w.demand > 0 else 0.0)
        decisions.append(
            WorkloadDecision(
                name=w.name,
                current=w.current,
                desired=n,
                demand=w.demand,
                needed=need,
                utilization=util,
                cost_per_hour=w.price * n,
                outside_slo=penalty(w, n),
                reason=reason,
                limited_by=limited,
            )
        )
    return Plan(
        workloads=tuple(decisions),
        solver=alloc.report,
        objective=alloc.objective,
        cost_per_hour=sum(d.cost_per_hour for d in decisions),
        binding=tuple(binding),
        notes=tuple(notes),
    )


def _relax(
    curves: Sequence[Curve],
    limits: Mapping[str, float],
    resource: str,
    base: _Allocation,
    options: SolveOptions,
) -> Relaxation:
    """Re-solve with one limit raised by `relax_fraction` and report what that buys."""
    amount = limits[resource] * options.relax_fraction
    if amount <= 0:
        amount = max(usage(c.workload, resource, 1) for c in curves)
    raised = dict(limits)
    raised[resource] = limits[resource] + amount
    quick = replace(options, explain=False, time_limit=min(1.0, options.time_limit))
    other = _allocate(curves, raised, quick)
    cost = sum(usage(c.workload, "cost", 1) * (b - a) for c, a, b in zip(curves, base.counts, other.counts, strict=True))
    late = sum(
        penalty(c.workload, b) - penalty(c.workload, a)
        for c, a, b in zip(curves, base.counts, other.counts, strict=True)
    )
    replicas = {
        c.workload.name: b - a
        for c, a, b in zip(curves, base.counts, other.counts, strict=True)
        if b != a
    }
    return Relaxation(
        amount=amount,
        new_limit=raised[resource],
        objective_gain=sum(
            c.total(a) - c.total(b) for c, a, b in zip(curves, base.counts, other.counts, strict=True)
        ),
        cost_change=cost,
        outside_slo_change=late,
        replicas=replicas,
    )


def _fmt(resource: str, value: float) -> str:
    if resource == "cost":
        return f"{value:.2f}/h"
    if resource == "cpu":
        return f"{value:.2f} cores"
    return f"{value / 2**30:.1f} GiB"


__all__ = ["Budget", "SolveOptions", "plan"]
