"""`plan(problem) -> Plan`: the joint allocation, its fallback, and its explanation."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from peakplan.allocation import (
    Binding,
    Plan,
    Relaxation,
    SolverReport,
    WorkloadDecision,
    format_amount,
)
from peakplan.curves import Curve, build_curve, outside_slo, slo_weight
from peakplan.greedy import budget_use, greedy_counts
from peakplan.ilp import Formulation, IlpModel, IlpResult, SolverName
from peakplan.problem import Budget, LatencySLO, Problem, Workload, usage

TOL = 1e-6
RESOURCE_LABEL = {"cost": "cost budget", "cpu": "CPU budget", "memory": "memory budget"}
MIN_SOLVE = 0.02  # seconds: below this a (re-)solve is not worth starting


@dataclass(frozen=True)
class SolveOptions:
    solver: SolverName = "highs"
    time_limit: float = 3.0  # seconds given to the solver
    deadline: float | None = None  # seconds for the whole plan() call; default time_limit + 1
    gap: float = 1e-3  # relative optimality gap accepted
    formulation: Formulation = "auto"
    explain: bool = True  # re-solve with each binding limit relaxed, to price it
    relax_fraction: float = 0.10  # how much to relax a binding limit when pricing it
    cbc_path: str | None = None  # a specific CBC binary (default: the one PuLP ships)
    always_solve: bool = False  # run the solver even when no shared limit binds
    fast_path: bool = True  # one workload and no shared limit: its own best count, directly


@dataclass(frozen=True)
class _Allocation:
    counts: list[int]
    objective: float
    report: SolverReport
    model: IlpModel | None = None  # the solved model, reusable for relaxations


@dataclass(frozen=True)
class _Limits:
    """The shared limits as given, which are soft (and at what price), and the effective ones."""

    given: Mapping[str, float]
    soft: Mapping[str, float]  # resource -> penalty per unit over the limit
    effective: Mapping[str, float]  # a soft limit's effective value is the floors' own usage


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


def _steepest_gain(curves: Sequence[Curve], resource: str) -> float:
    """The largest objective gain per unit of `resource` any single replica step offers."""
    steepest = 0.0
    for c in curves:
        per = usage(c.workload, resource, 1)
        if per > 0 and len(c.counts) > 1:
            drops = (
                (a - b) / (kb - ka)
                for a, b, ka, kb in zip(
                    c.totals, c.totals[1:], c.counts, c.counts[1:], strict=False
                )
            )
            steepest = max(steepest, max(drops) / per)
    return steepest


def _soft_penalties(curves: Sequence[Curve], limits: Mapping[str, float]) -> _Limits:
    """Soft limits (the floors alone exceed them) with a penalty no replica's gain outweighs."""
    floors = [c.counts[0] for c in curves]
    soft: dict[str, float] = {}
    effective: dict[str, float] = {}
    for r, limit in limits.items():
        floor_use = budget_use(curves, floors, r)
        if floor_use > limit + TOL:
            # Also positive when no step gains anything: one money/h per largest replica's use
            # (not per unit: a byte of memory must not cost a money/h).
            largest = max(usage(c.workload, r, 1) for c in curves)
            soft[r] = 10.0 * _steepest_gain(curves, r) + 1.0 / largest
            effective[r] = floor_use
        else:
            effective[r] = max(limit, floor_use)  # within the tolerance: the floors still fit
    return _Limits(dict(limits), soft, effective)


def _feasible(curves: Sequence[Curve], counts: Sequence[int], hard: Mapping[str, float]) -> bool:
    if not all(c.is_candidate(n) for c, n in zip(curves, counts, strict=True)):
        return False
    return all(
        budget_use(curves, counts, r) <= limit * (1 + 1e-9) + TOL for r, limit in hard.items()
    )


def _in_thread[T](work: Callable[[], T], seconds: float) -> T | BaseException | None:
    """Run `work` in a worker thread; None when it overran `seconds` (its answer is dropped)."""
    box: list[T | BaseException] = []

    def run() -> None:
        try:
            box.append(work())
        except Exception as exc:  # any solver failure means: use the greedy plan
            box.append(exc)

    worker = threading.Thread(target=run, name="peakplan-solver", daemon=True)
    worker.start()
    worker.join(max(0.0, seconds))
    return box[0] if box else None


def _solve(
    curves: Sequence[Curve],
    limits: _Limits,
    start: Sequence[int],
    options: SolveOptions,
    deadline: float,
) -> tuple[IlpResult, IlpModel]:
    model = IlpModel(curves, limits.given, limits.soft, options.formulation)
    result = model.solve(
        start,
        solver=options.solver,
        time_limit=options.time_limit,
        gap=options.gap,
        cbc_path=options.cbc_path,
        deadline=deadline,
    )
    return result, model


def _allocate(
    curves: Sequence[Curve], limits: _Limits, options: SolveOptions, deadline: float
) -> _Allocation:
    started = time.perf_counter()
    best = [c.best for c in curves]
    if not options.always_solve and _feasible(curves, best, limits.effective):
        # No shared limit binds: the problem separates and each curve's minimum is exact.
        value = objective_value(curves, best, limits.given, limits.soft)
        report = SolverReport("none", "optimal", time.perf_counter() - started, 0.0)
        return _Allocation(best, value, report)

    greedy = greedy_counts(curves, limits.effective)
    greedy_value = objective_value(curves, greedy, limits.given, limits.soft)
    outcome = _in_thread(
        lambda: _solve(curves, limits, greedy, options, deadline),
        deadline - time.perf_counter(),
    )
    seconds = time.perf_counter() - started

    def fallback(
        status: str, why: str, gap: float | None = None, result: IlpResult | None = None
    ) -> _Allocation:
        report = SolverReport(
            options.solver,
            status,
            seconds,
            gap,
            used_greedy=True,
            fallback_reason=why,
            formulation=result.formulation if result else "",
            variables=result.variables if result else 0,
            constraints=result.constraints if result else 0,
        )
        return _Allocation(greedy, greedy_value, report)

    if outcome is None:
        left = deadline - started
        return fallback("deadline", f"the solver overran the deadline ({left:.2f}s were left)")
    if isinstance(outcome, BaseException):
        return fallback("failed", f"the solver failed: {type(outcome).__name__}: {outcome}")
    result, model = outcome
    if result.counts is None:
        why = f"the solver returned no solution ({result.status})"
        return fallback(result.status, why, result=result)
    if not _feasible(curves, result.counts, limits.effective):
        why = "the solver's answer failed the feasibility re-check"
        return fallback(result.status, why, result=result)
    value = objective_value(curves, result.counts, limits.given, limits.soft)
    gap = None
    if result.best_bound is not None:
        gap = max(0.0, (value - result.best_bound) / max(1.0, abs(value)))
    if value > greedy_value + TOL * max(1.0, abs(greedy_value)):
        return fallback(result.status, "the greedy plan beat the solver's answer", gap, result)
    report = SolverReport(
        options.solver,
        result.status,
        seconds,
        gap,
        formulation=result.formulation,
        variables=result.variables,
        constraints=result.constraints,
    )
    return _Allocation(result.counts, value, report, model)


def plan(problem: Problem, options: SolveOptions | None = None) -> Plan:
    """The cheapest replica counts, jointly for all workloads, with what the budget costs.

    The deadline covers the whole call: allocation first, then pricing the binding limits with
    whatever time is left (a greedy estimate when none is).
    """
    options = options or SolveOptions()
    started = time.perf_counter()
    allowed = options.deadline if options.deadline is not None else options.time_limit + 1.0
    deadline = started + allowed
    weight = slo_weight(problem.workloads)  # one W for the whole problem: priorities compare
    curves = [build_curve(w, weight) for w in problem.workloads]
    given = problem.budget.limits()
    if options.fast_path and not options.always_solve and len(curves) == 1 and not given:
        # Nothing to share, nothing to price: the answer is the curve's own minimum, as the
        # allocation below would find it. A replay makes this call at every step.
        (curve,) = curves
        report = SolverReport("none", "optimal", time.perf_counter() - started, 0.0)
        decision = _decision(curve, curve.best, [])
        # The best count's total is the last candidate's; no binding limit, no notes.
        return Plan((decision,), report, curve.totals[-1], decision.cost_per_hour)
    limits = _soft_penalties(curves, given)
    alloc = _allocate(curves, limits, options, deadline)

    notes: list[str] = []
    for r in limits.soft:
        floor = budget_use(curves, [c.counts[0] for c in curves], r)
        used = budget_use(curves, alloc.counts, r)
        notes.append(
            f"the {RESOURCE_LABEL[r]} ({format_amount(r, limits.given[r])}) cannot be met: the "
            f"floors alone need {format_amount(r, floor)}; kept as a soft limit with a high "
            f"penalty, exceeded by {format_amount(r, used - limits.given[r])}"
        )
    if alloc.report.used_greedy:
        notes.append(f"greedy plan used: {alloc.report.fallback_reason}")
    binding = _bindings(curves, limits, alloc, options, deadline)
    if options.explain and any(b.relax is None for b in binding):
        notes.append("no time left before the deadline to price the binding limits")
    if any(b.relax is not None and b.relax.estimated for b in binding):
        notes.append(
            "what relaxing a limit buys is a greedy estimate: no solver answer to re-solve from, "
            "or no time left before the deadline"
        )

    bound_names = [b.constraint for b in binding]
    decisions = tuple(
        _decision(c, n, [r for r in bound_names if usage(c.workload, r, 1) > 0])
        for c, n in zip(curves, alloc.counts, strict=True)
    )
    return Plan(
        workloads=decisions,
        solver=alloc.report,
        objective=alloc.objective,
        cost_per_hour=sum(d.cost_per_hour for d in decisions),
        binding=tuple(binding),
        notes=tuple(notes),
    )


def _decision(c: Curve, n: int, binding: Sequence[str]) -> WorkloadDecision:
    w = c.workload
    reason, limited = _reason(w, n, c.needed, c.best, binding)
    util = w.demand / (n * w.capacity) if n > 0 else (math.inf if w.demand > 0 else 0.0)
    # In field order, not by keyword: CPython 3.13 builds a dict for a keyword call to a class.
    return WorkloadDecision(
        w.name,
        w.current,
        n,  # desired
        w.demand,
        c.needed,
        util,
        w.price * n,  # cost_per_hour
        outside_slo(w, n),
        reason,
        limited,
    )


def _reason(
    w: Workload, desired: int, needed: int, best: int, binding: Sequence[str]
) -> tuple[str, str | None]:
    """Why `desired`, in one line, and what limits it (None when the SLO alone decides)."""
    if desired < best:
        names = ", ".join(RESOURCE_LABEL[r] for r in binding) or "shared budget"
        limited = "budget:" + ",".join(binding) if binding else "budget"
        return (
            f"squeezed by the {names}: {desired} of the {best} it would get; load needs {needed}",
            limited,
        )
    if desired == w.lo and desired > needed:
        return f"held at {w.floor_reason} ({w.lo}); load needs {needed}", "floor"
    if desired == w.hi and desired < needed:
        return f"capped by {w.ceiling_reason} ({w.hi}); load needs {needed}", "ceiling"
    if desired != needed and desired == w.current and w.churn > 0:
        return f"kept at current {w.current} (churn); load needs {needed}", "churn"
    if desired < needed and w.value is not None:
        return (
            f"the {needed - desired} more replicas the SLO needs ({needed}) cost more than the "
            f"load they keep inside it is worth (value {w.value:g}/h per request/s)",
            "value",
        )
    if desired < needed:  # not expected with SLO first: say so rather than explain it wrongly
        return f"{needed - desired} below the {needed} the SLO needs", "other"
    if desired > needed:
        return f"kept near current {w.current} (churn); load needs {needed}", "churn"
    if isinstance(w.slo, LatencySLO):
        return (
            f"{w.demand:.1f} rps needs {needed} for mean latency <= {w.slo.latency_ms:g} ms",
            None,
        )
    return f"{w.demand:.1f} rps needs {needed} at {w.slo.target:.0%} target", None


def _bindings(
    curves: Sequence[Curve],
    limits: _Limits,
    alloc: _Allocation,
    options: SolveOptions,
    deadline: float,
) -> list[Binding]:
    """The shared limits that change the answer, each with what relaxing it would buy."""
    best = [c.best for c in curves]
    out: list[Binding] = []
    for r, limit in limits.given.items():
        used = budget_use(curves, alloc.counts, r)
        needed = budget_use(curves, best, r)
        soft = r in limits.soft
        # Squeezed by this limit: below its best count, and its next step would not fit in what
        # is left of the limit. The limit binds when the best counts do not fit and someone is.
        room = limits.effective[r] - used
        squeezed = {
            c.workload.name: b - n
            for c, n, b in zip(curves, alloc.counts, best, strict=True)
            if n < b and usage(c.workload, r, c.counts[c.index(n) + 1] - n) > room + TOL
        }
        if not soft and (needed <= limit + TOL or not squeezed):
            continue
        # Past the deadline even the greedy estimate is not worth the wait.
        price = options.explain and time.perf_counter() < deadline
        relax = _relax(curves, limits, r, alloc, options, deadline) if price else None
        out.append(Binding(r, limit, used, needed, soft, squeezed, relax))
    return out


def _relax(
    curves: Sequence[Curve],
    limits: _Limits,
    resource: str,
    base: _Allocation,
    options: SolveOptions,
    deadline: float,
) -> Relaxation:
    """Raise one limit and report what that buys: re-solved when time allows, else estimated.

    The raise is `relax_fraction` of the limit, at least one replica of the smallest workload
    using it, on top of the overrun when the limit is soft.
    """
    given = limits.given[resource]
    users = [usage(c.workload, resource, 1) for c in curves if usage(c.workload, resource, 1) > 0]
    amount = max(given * options.relax_fraction, min(users, default=0.0))
    amount += limits.effective[resource] - given  # a soft limit's overrun
    raised = _soft_penalties(curves, {**limits.given, resource: given + amount})
    counts = greedy_counts(curves, raised.effective, start=base.counts)
    estimated = True
    solved = _resolve(base.model, resource, given + amount, counts, options, deadline)
    if solved is not None and _feasible(curves, solved, raised.effective):
        estimated = False
        better = objective_value(curves, solved, raised.given, raised.soft) <= objective_value(
            curves, counts, raised.given, raised.soft
        )
        counts = solved if better else counts
    pairs = list(zip(curves, base.counts, counts, strict=True))
    return Relaxation(
        amount=amount,
        new_limit=given + amount,
        objective_gain=sum(c.total(a) - c.total(b) for c, a, b in pairs),
        cost_change=sum(usage(c.workload, "cost", b - a) for c, a, b in pairs),
        outside_slo_change=sum(
            outside_slo(c.workload, b) - outside_slo(c.workload, a) for c, a, b in pairs
        ),
        replicas={c.workload.name: b - a for c, a, b in pairs if b != a},
        estimated=estimated,
    )


def _resolve(
    model: IlpModel | None,
    resource: str,
    limit: float,
    start: Sequence[int],
    options: SolveOptions,
    deadline: float,
) -> list[int] | None:
    """Re-solve the allocation's own model with one limit changed, within the deadline."""
    if model is None or model.lock.locked() or deadline - time.perf_counter() < MIN_SOLVE:
        return None  # no model, one still solving past its deadline, or no time
    old = model.limits[resource]
    model.set_limit(resource, limit)

    def work() -> list[int] | None:
        return model.solve(
            start,
            solver=options.solver,
            time_limit=options.time_limit,
            gap=options.gap,
            cbc_path=options.cbc_path,
            deadline=deadline,
        ).counts

    outcome = _in_thread(work, deadline - time.perf_counter())
    if outcome is None:
        return None  # still running: leave the model alone
    model.set_limit(resource, old)
    return None if isinstance(outcome, BaseException) else outcome


__all__ = ["Budget", "SolveOptions", "objective_value", "plan"]
