"""The integer program, built with PuLP and solved by HiGHS (default) or CBC.

Per workload, one of two exact forms:
- envelope: the candidates are split into convex runs (a convex curve is one run). One run: an
  integer count r and an epigraph variable z >= each line of the run; a handful of rows per
  workload. Several runs (a non-convex curve, e.g. a latency SLO's cliff at the stability edge):
  one binary y per run, and per run a count r_j in [first y, last y] and z_j >= the run's lines
  scaled by y (the perspective form, exact and tight); a run of one count is just its binary;
- choice: one binary per candidate count (exact for any curve).
"auto" is the envelope, which measures faster (far fewer binaries). Shared limits are linear rows
over the counts; a soft limit gets a penalised slack variable for the overrun beyond what the
floors force (that part is the same in every plan: it is added to the objective after the solve, so
the huge penalty does not swamp the relative gap).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulp

from peakplan.curves import Curve
from peakplan.problem import usage

Formulation = Literal["auto", "envelope", "choice"]
SolverName = Literal["highs", "cbc"]
# Seconds kept back from the deadline for handing the model to HiGHS and reading the answer back,
# which its own clock does not count: measured ~1e-5 s per column and row.
HANDOVER_FIXED, HANDOVER_PER_ITEM = 0.02, 1e-5
PRESOLVE_BELOW = 1000  # columns: see _solver

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
    build_seconds: float = 0.0
    solve_seconds: float = 0.0


@dataclass
class _Piece:
    """A convex run of one curve: its selector (None when it is the only run) and variables."""

    first: int  # candidate count range
    last: int
    select: Any  # binary, or None
    count: Any  # integer count variable, or None for a single count
    cost: Any  # epigraph variable, or None for a single count


@dataclass
class _Workload:
    curve: Curve
    pieces: list[_Piece] = field(default_factory=list)

    def read(self) -> int:
        if len(self.pieces) == 1 and self.pieces[0].select is None:
            piece = self.pieces[0]
            return piece.first if piece.count is None else round(piece.count.value() or 0.0)
        piece = max(self.pieces, key=lambda p: p.select.value() or 0.0)
        return piece.first if piece.count is None else round(piece.count.value() or 0.0)

    def warm(self, n: int) -> None:
        """Set every variable to the values that put this workload at count n."""
        for p in self.pieces:
            inside = p.first <= n <= p.last
            if p.select is not None:
                p.select.setInitialValue(1 if inside else 0, check=False)
            if p.count is not None:
                p.count.setInitialValue(n if inside else 0, check=False)
                p.cost.setInitialValue(self.curve.total(n) if inside else 0.0, check=False)


_banner_lock = threading.Lock()
_banner_done = False


def _swallow_highs_banner() -> None:
    """Create one throwaway HiGHS instance with the process's stdout and stderr sent to /dev/null.

    HiGHS >= 1.16 writes its copyright banner from C++ to file descriptor 1 when the first
    instance in a process is created, whatever `output_flag` says; that line would corrupt
    `plan -o json` and the operator's JSON log. It is written once per process, so swallowing it
    once here keeps every later solve silent. Done under a lock, once, before the first solve.
    """
    global _banner_done
    with _banner_lock:
        if _banner_done:
            return
        _banner_done = True
        try:
            import highspy
        except ImportError:  # HiGHS missing: PuLP reports it when a solve asks for it
            return
        # Python's own buffered output is written out first, so none of it is lost.
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            highspy.Highs()  # type: ignore[no-untyped-call]
            # C stdio buffers too, while they still lead nowhere.
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, devnull):
                os.close(fd)


def _solver(
    name: SolverName,
    time_limit: float,
    gap: float,
    cbc_path: str | None,
    mip: bool,
    size: int,
    warm: bool,
) -> pulp.LpSolver:
    if name == "highs":
        _swallow_highs_banner()
        # HiGHS' MIP presolve halves the median solve of small models but measured slower than
        # the whole rest of the solve on large ones, whose root LP is nearly integral anyway.
        return pulp.HiGHS(
            mip=mip,
            msg=False,
            timeLimit=time_limit,
            gapRel=gap,
            warmStart=warm,
            threads=1,
            presolve="on" if size < PRESOLVE_BELOW else "off",
        )
    if name == "cbc":
        kwargs: dict[str, Any] = {"msg": False, "timeLimit": time_limit, "gapRel": gap}
        if cbc_path:
            kwargs["path"] = cbc_path
        return pulp.COIN_CMD(mip=mip, warmStart=warm, **kwargs)  # type: ignore[no-untyped-call]
    raise ValueError(f"unknown solver {name!r}: use 'highs' or 'cbc'")


# What to install when a solver is asked for and missing (HiGHS comes with PeakPilot itself).
_INSTALL_HINT = {"highs": "pip install highspy", "cbc": "pip install 'peakpilot[cbc]'"}


def solver_missing(name: str, cbc_path: str | None = None) -> str | None:
    """None when `name` can solve here; else one line saying what to install."""
    if name not in _INSTALL_HINT:
        return f"unknown solver {name!r}: use 'highs' or 'cbc'"
    solver: Any = pulp.HiGHS(msg=False)
    if name == "cbc":
        solver = pulp.COIN_CMD(msg=False, path=cbc_path)  # type: ignore[no-untyped-call]
    found = solver.available()
    return None if found else f"solver {name} is not installed: {_INSTALL_HINT[name]}"


class IlpModel:
    """The program for one set of curves and limits; solvable several times (limits may change)."""

    def __init__(
        self,
        curves: Sequence[Curve],
        limits: Mapping[str, float],
        soft_penalty: Mapping[str, float],
        formulation: Formulation = "auto",
    ) -> None:
        started = time.perf_counter()
        if formulation not in ("auto", "envelope", "choice"):
            raise ValueError(f"unknown formulation {formulation!r}")
        self.curves = list(curves)
        self.limits = dict(limits)
        self.prob = pulp.LpProblem("peakplan", pulp.LpMinimize)
        self.workloads: list[_Workload] = []
        self.fixed_use = dict.fromkeys(limits, 0.0)
        self.floor_use = {
            r: sum(usage(c.workload, r, c.counts[0]) for c in self.curves) for r in limits
        }
        self.soft = dict(soft_penalty)
        self.slack: dict[str, Any] = {}
        self.rows: dict[str, Any] = {}
        self.constant = 0.0
        self.forms: set[str] = set()
        self.lock = threading.Lock()  # held while a solve runs (it may outlive its deadline)
        objective: list[tuple[Any, float]] = []
        use_terms: dict[str, list[tuple[Any, float]]] = {r: [] for r in limits}
        for i, curve in enumerate(self.curves):
            self.workloads.append(self._add_workload(i, curve, formulation, objective, use_terms))
        for r in limits:
            terms = use_terms[r]
            if r in soft_penalty:
                self.slack[r] = self.prob.add_variable(f"over_{r}", 0, None)
                terms.append((self.slack[r], -1.0))
                objective.append((self.slack[r], soft_penalty[r]))
            if terms:
                row = pulp.lpSum_vars_coefs(terms) <= self._base(r) - self.fixed_use[r]
                self.rows[r] = self.prob.addConstraint(row, f"limit_{r}")
        self.prob += pulp.lpSum_vars_coefs(objective) + self.constant
        self.has_variables = bool(objective)
        self.build_seconds = time.perf_counter() - started

    @property
    def formulation(self) -> str:
        if len(self.forms) > 1:
            return "mixed"
        return next(iter(self.forms)) if self.forms else "fixed"

    def _add_workload(
        self,
        i: int,
        curve: Curve,
        formulation: Formulation,
        objective: list[tuple[Any, float]],
        use_terms: dict[str, list[tuple[Any, float]]],
    ) -> _Workload:
        w, prob = curve.workload, self.prob
        unit = {r: usage(w, r, 1) for r in use_terms}
        out = _Workload(curve)
        if len(curve.counts) == 1:  # nothing to decide
            self.constant += curve.totals[0]
            for r in use_terms:
                self.fixed_use[r] += unit[r] * curve.counts[0]
            out.pieces.append(_Piece(curve.counts[0], curve.counts[0], None, None, None))
            return out
        if formulation == "choice":
            runs = [(k, k) for k in range(len(curve.counts))]
            self.forms.add("choice")
        else:
            runs = list(curve.runs)
            self.forms.add("envelope")
        alone = len(runs) == 1
        for j, (first, last) in enumerate(runs):
            lo, hi = curve.counts[first], curve.counts[last]
            select: Any = None if alone else prob.add_variable(f"y_{i}_{j}", 0, 1, cat="Binary")
            if first == last:
                objective.append((select, curve.totals[first]))
                for r in use_terms:
                    if unit[r]:
                        use_terms[r].append((select, unit[r] * lo))
                out.pieces.append(_Piece(lo, hi, select, None, None))
                continue
            count = prob.add_variable(f"r_{i}_{j}", lo if alone else 0, hi, cat="Integer")
            cost = prob.add_variable(f"z_{i}_{j}", None, None)
            for k, total, slope in curve.segments(first, last):
                # z >= total + slope * (r - k), times y when the run may be off
                terms = [(cost, 1.0), (count, -slope)]
                if alone:
                    prob += pulp.lpSum_vars_coefs(terms) >= total - slope * k
                else:
                    terms.append((select, slope * k - total))
                    prob += pulp.lpSum_vars_coefs(terms) >= 0.0
            if not alone:
                prob += pulp.lpSum_vars_coefs([(count, 1.0), (select, -float(lo))]) >= 0.0
                prob += pulp.lpSum_vars_coefs([(count, 1.0), (select, -float(hi))]) <= 0.0
            objective.append((cost, 1.0))
            for r in use_terms:
                if unit[r]:
                    use_terms[r].append((count, unit[r]))
            out.pieces.append(_Piece(lo, hi, select, count, cost))
        if not alone:
            prob += pulp.lpSum_vars([p.select for p in out.pieces]) == 1
        return out

    def _base(self, resource: str) -> float:
        """The limit, or the floors' usage when that is more: for a soft limit by design, for a
        hard one by rounding (the planner keeps a limit hard when the floors overrun it by less
        than its tolerance, and a row below the floors would make the program infeasible)."""
        return max(self.limits[resource], self.floor_use[resource])

    @property
    def offset(self) -> float:
        """The soft limits' forced overrun penalty, the same for every plan."""
        return sum(p * max(0.0, self.floor_use[r] - self.limits[r]) for r, p in self.soft.items())

    def set_limit(self, resource: str, limit: float) -> None:
        """Change one shared limit (for pricing its relaxation) without rebuilding."""
        self.limits[resource] = limit
        if resource in self.rows:
            self.rows[resource].changeRHS(self._base(resource) - self.fixed_use[resource])

    def warm_start(self, counts: Sequence[int]) -> None:
        for wl, n in zip(self.workloads, counts, strict=True):
            wl.warm(n)
        for r, slack in self.slack.items():
            used = sum(usage(c.workload, r, n) for c, n in zip(self.curves, counts, strict=True))
            slack.setInitialValue(max(0.0, used - self._base(r)), check=False)

    def solve(
        self,
        start: Sequence[int] | None = None,
        *,
        solver: SolverName = "highs",
        time_limit: float = 3.0,
        gap: float = 1e-3,
        cbc_path: str | None = None,
        deadline: float | None = None,
        relaxation: bool = False,
    ) -> IlpResult:
        """Solve (its LP relaxation when `relaxation`); `deadline` is a time.perf_counter() time."""
        size = (self.prob.numVariables(), self.prob.numConstraints())
        if not self.has_variables:
            counts = [wl.read() for wl in self.workloads]
            value = self.constant + self.offset
            return IlpResult(counts, "optimal", value, value, "fixed", *size)
        if deadline is not None:
            handover = HANDOVER_FIXED + HANDOVER_PER_ITEM * (size[0] + size[1])
            time_limit = min(time_limit, deadline - time.perf_counter() - handover)
            if time_limit <= 0.0:
                return IlpResult(None, "deadline", None, None, self.formulation, *size)
        with self.lock:
            if start is not None:
                self.warm_start(start)
            started = time.perf_counter()
            warm = start is not None and not relaxation
            options = (solver, time_limit, gap, cbc_path, not relaxation, size[0], warm)
            stats = self.prob.solve(_solver(*options))
            seconds = time.perf_counter() - started
        status = _STATUS.get(stats.status, str(stats.status).lower())
        extra = (self.build_seconds, seconds)
        bound = stats.objective if relaxation else stats.best_bound
        bound = bound + self.offset if bound is not None and math.isfinite(bound) else None
        if not stats.has_solution or stats.objective is None:
            return IlpResult(None, status, None, bound, self.formulation, *size, *extra)
        read: list[int] | None = None if relaxation else [wl.read() for wl in self.workloads]
        value = stats.objective + self.offset
        return IlpResult(read, status, value, bound, self.formulation, *size, *extra)


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
    deadline: float | None = None,
) -> IlpResult:
    """Solve exactly (up to `gap`); `soft_penalty[r]` makes limit r soft at that price per unit."""
    model = IlpModel(curves, limits, soft_penalty, formulation)
    return model.solve(
        start,
        solver=solver,
        time_limit=time_limit,
        gap=gap,
        cbc_path=cbc_path,
        deadline=deadline,
    )
