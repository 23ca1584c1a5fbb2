"""The integer program, built with PuLP and solved by HiGHS (default) or CBC.

Per workload, one of two exact forms, picked per curve:
- envelope: an integer count r and an epigraph variable z >= each segment of the convex cost
  curve; a handful of rows per workload, fast for large N;
- choice: one binary per candidate count (exact for any curve, used when it is not convex).
Shared limits are linear rows over the counts; a soft limit gets a penalised slack variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulp

from peakplan.curves import Curve
from peakplan.problem import usage

Formulation = Literal["auto", "envelope", "choice"]
SolverName = Literal["highs", "cbc"]

_STATUS = {
    pulp.LpSolveStatus.Optimal: "optimal",
    pulp.LpSolveStatus.TimeLimit: "time-limit",
    pulp.LpSolveStatus.GapLimit: "gap-limit",
    pulp.LpSolveStatus.Infeasible: "infeasible",
    pulp.LpSolveStatus.Unbounded: "unbounded",
    pulp.LpSolveStatus.NotSolved: "not-solved",
}


@dataclass(frozen=True)
class IlpResult:
    counts: list[int] | None  # None when the solver returned no solution
    status: str
    objective: float | None
    best_bound: float | None
    formulation: str
    variables: int
    constraints: int


def _solver(
    name: SolverName, time_limit: float, gap: float, cbc_path: str | None
) -> pulp.LpSolver:
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=gap, warmStart=True, threads=1)
    if name == "cbc":
        kwargs: dict[str, Any] = {"msg": False, "timeLimit": time_limit, "gapRel": gap}
        if cbc_path:
            kwargs["path"] = cbc_path
        return pulp.COIN_CMD(warmStart=True, **kwargs)
    raise ValueError(f"unknown solver {name!r}: use 'highs' or 'cbc'")


def solve_ilp(
    curves: Sequence[Curve],
    limits: Mapping[str, float],
    soft_penalty: Mapping[str, float],
    start: Sequence[int],
    *,
    solver: SolverName = "highs",
    time_limit: float = 3.0,
    gap: float = 1e-3,
    formulation: Formulation = "auto",
    cbc_path: str | None = None,
) -> IlpResult:
    """Solve exactly (up to `gap`); `soft_penalty[r]` makes limit r soft at that price per unit."""
    prob = pulp.LpProblem("peakplan", pulp.LpMinimize)
    objective: list[tuple[Any, float]] = []
    resource_terms: dict[str, list[tuple[Any, float]]] = {r: [] for r in limits}
    constant = 0.0
    read_back: list[tuple[str, Any]] = []
    forms: set[str] = set()
    for i, (curve, first) in enumerate(zip(curves, start, strict=True)):
        w = curve.workload
        lo, hi = curve.counts[0], curve.counts[-1]
        use_envelope = formulation == "envelope" or (
            formulation == "auto" and curve.is_convex()
        )
        if lo == hi:
            constant += curve.totals[0]
            for r in limits:
                constant_use = usage(w, r, lo)
                resource_terms[r].append((None, constant_use))
            read_back.append(("fixed", lo))
            continue
        if use_envelope:
            if not curve.is_convex():
                raise ValueError(f"workload {w.name}: the envelope form needs a convex curve")
            forms.add("envelope")
            r_var = prob.add_variable(f"r_{i}", lo, hi, cat="Integer")
            z_var = prob.add_variable(f"z_{i}", None, None)
            r_var.setInitialValue(first)
            for k, total, slope in curve.segments():
                # z >= total + slope * (r - k)
                prob += pulp.lpSum_vars_coefs([(z_var, 1.0), (r_var, -slope)]) >= total - slope * k
            objective.append((z_var, 1.0))
            for r in limits:
                resource_terms[r].append((r_var, usage(w, r, 1)))
            read_back.append(("count", r_var))
        else:
            forms.add("choice")
            choice = [prob.add_variable(f"x_{i}_{k}", 0, 1, cat="Binary") for k in curve.counts]
            for var, k in zip(choice, curve.counts, strict=True):
                var.setInitialValue(1 if k == first else 0)
            prob += pulp.lpSum_vars(choice) == 1
            objective.extend(zip(choice, curve.totals, strict=True))
            for r in limits:
                resource_terms[r].extend(
                    (var, usage(w, r, k)) for var, k in zip(choice, curve.counts, strict=True)
                )
            read_back.append(("choice", list(zip(choice, curve.counts, strict=True))))
    for r, limit in limits.items():
        terms = [(v, c) for v, c in resource_terms[r] if v is not None and c != 0]
        fixed = sum(c for v, c in resource_terms[r] if v is None)
        if r in soft_penalty:
            slack = prob.add_variable(f"over_{r}", 0, None)
            terms.append((slack, -1.0))
            objective.append((slack, soft_penalty[r]))
        if terms:
            prob += pulp.lpSum_vars_coefs(terms) <= limit - fixed, f"limit_{r}"
    if objective:
        prob += pulp.lpSum_vars_coefs(objective) + constant
    else:
        # Every workload is fixed: nothing to decide.
        counts = [int(x[1]) for x in read_back]
        return IlpResult(counts, "optimal", constant, constant, "fixed", 0, 0)

    stats = prob.solve(_solver(solver, time_limit, gap, cbc_path))
    status = _STATUS.get(stats.status, str(stats.status).lower())
    form = "mixed" if len(forms) > 1 else (forms.pop() if forms else "fixed")
    size = (prob.numVariables(), prob.numConstraints())
    if not stats.has_solution:
        return IlpResult(None, status, None, stats.best_bound, form, *size)
    counts = []
    for kind, ref in read_back:
        if kind == "fixed":
            counts.append(int(ref))
        elif kind == "count":
            counts.append(round(ref.value() or 0.0))
        else:
            counts.append(max(ref, key=lambda vk: vk[0].value() or 0.0)[1])
    bound = stats.best_bound
    if bound is not None and not math.isfinite(bound):
        bound = None
    return IlpResult(counts, status, stats.objective, bound, form, *size)
