"""The integer program, built with PuLP and solved by HiGHS (default, PuLP's highspy interface) or
CBC (PuLP's COIN_CMD).

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

The model is a pulp.LpProblem whichever solver runs; a workload's rows are expressions made from
lists of terms (LpAffineExpression.from_list), the long limit rows and the objective with
lpSum_vars_coefs. PuLP is imported only when a model is built, i.e. when a shared
limit binds: importing it costs ~0.07-0.1 s of CPU after PeakPilot's own imports (its solver-log
parsers), and building, handing over and reading back a 1000-workload model ~0.02 s more than the
same program as plain arrays (bench/ilp_arrays.py; docs/BENCHMARKS.md, "PuLP against the array
path").
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
from typing import TYPE_CHECKING, Any, Literal

from peakplan.curves import Curve
from peakplan.problem import usage

if TYPE_CHECKING:
    import pulp

Formulation = Literal["auto", "envelope", "choice"]
SolverName = Literal["highs", "cbc"]
# Seconds kept back from the deadline for handing the model to the solver and reading the answer
# back, which its own clock does not count: measured ~1e-5 s per column and row.
HANDOVER_FIXED, HANDOVER_PER_ITEM = 0.02, 1e-5
PRESOLVE_BELOW = 1000  # columns: see _solver


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
    select: pulp.LpVariable | None  # binary, or None
    count: pulp.LpVariable | None  # integer count, or None for a single count
    cost: pulp.LpVariable | None  # epigraph variable, or None for a single count


def _value(variable: pulp.LpVariable | None) -> float:
    return (variable.value() or 0.0) if variable is not None else 0.0


@dataclass
class _Workload:
    curve: Curve
    pieces: list[_Piece] = field(default_factory=list)

    def read(self) -> int:
        if len(self.pieces) == 1 and self.pieces[0].select is None:
            piece = self.pieces[0]
        else:
            piece = max(self.pieces, key=lambda p: _value(p.select))
        return piece.first if piece.count is None else round(_value(piece.count))

    def warm(self, n: int) -> None:
        """Give every variable the value that puts this workload at count n."""
        for p in self.pieces:
            inside = p.first <= n <= p.last
            if p.select is not None:
                p.select.setInitialValue(1.0 if inside else 0.0, check=False)
            if p.count is not None and p.cost is not None:
                p.count.setInitialValue(float(n) if inside else 0.0, check=False)
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
    import pulp

    if name == "highs":
        time_limit = max(time_limit, 1e-3)
        _swallow_highs_banner()
        # HiGHS' MIP presolve halves the median solve of small models but measured slower than
        # the whole rest of the solve on large ones, whose root LP is nearly integral anyway.
        # msg=False only keeps HiGHS' log off the console; output_flag=False silences it.
        return pulp.HiGHS(
            mip=mip,
            msg=False,
            timeLimit=time_limit,
            gapRel=gap,
            warmStart=warm,
            threads=1,
            presolve="on" if size < PRESOLVE_BELOW else "off",
            output_flag=False,
        )
    # CBC gets the limit as given, as before the model moved to PuLP: a floor (1 ms) let it find
    # an answer now and then where the fault matrix's 1 us limit means "no answer".
    kwargs: dict[str, Any] = {"msg": False, "timeLimit": time_limit, "gapRel": gap}
    if cbc_path:
        kwargs["path"] = cbc_path
    return pulp.COIN_CMD(mip=mip, warmStart=warm, **kwargs)  # type: ignore[no-untyped-call]


def _status(status: int) -> str:
    """PuLP's LpSolveStatus as IlpResult.status says it: "optimal", "time-limit", ..."""
    import pulp

    name = pulp.LpSolveStatus(status).name
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


# What to install when a solver is asked for and missing (HiGHS comes with PeakPilot itself).
_INSTALL_HINT = {"highs": "pip install 'pulp[highs]'", "cbc": "pip install 'peakpilot[cbc]'"}


def solver_missing(name: str, cbc_path: str | None = None) -> str | None:
    """None when `name` can solve here; else one line saying what to install."""
    if name not in _INSTALL_HINT:
        return f"unknown solver {name!r}: use 'highs' or 'cbc'"
    if name == "highs":
        # What pulp.HiGHS().available() says (highspy imports), without importing PuLP: a plan
        # with no binding limit never needs it.
        from importlib.util import find_spec

        try:
            import highspy  # noqa: F401
        except ImportError:
            return f"solver highs is not installed: {_INSTALL_HINT['highs']}"
        return None if find_spec("pulp") else "PuLP is not installed: pip install 'pulp[highs]'"
    import pulp

    found = pulp.COIN_CMD(msg=False, path=cbc_path).available()  # type: ignore[no-untyped-call]
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
        import pulp

        self.curves = list(curves)
        self.limits = dict(limits)
        self.prob = pulp.LpProblem("peakplan", pulp.LpMinimize)
        self.workloads: list[_Workload] = []
        self.fixed_use = dict.fromkeys(limits, 0.0)
        self.floor_use = {
            r: sum(usage(c.workload, r, c.counts[0]) for c in self.curves) for r in limits
        }
        self.soft = dict(soft_penalty)
        self.slack: dict[str, pulp.LpVariable] = {}
        self.rows: dict[str, pulp.LpConstraint] = {}
        self.constant = 0.0
        self.forms: set[str] = set()
        self.lock = threading.Lock()  # held while a solve runs (it may outlive its deadline)
        self.variables = 0
        self.constraints = 0
        objective: list[tuple[pulp.LpVariable, float]] = []
        use_terms: dict[str, list[tuple[pulp.LpVariable, float]]] = {r: [] for r in limits}
        for i, curve in enumerate(self.curves):
            self.workloads.append(self._add_workload(i, curve, formulation, objective, use_terms))
        for r in limits:
            terms = use_terms[r]
            if r in soft_penalty:
                self.slack[r] = self._variable(f"over_{r}", 0.0, None)
                terms.append((self.slack[r], -1.0))
                objective.append((self.slack[r], soft_penalty[r]))
            if terms:
                row = pulp.lpSum_vars_coefs(terms) <= self._base(r) - self.fixed_use[r]
                self.rows[r] = self._row(row, f"limit_{r}")
        self.prob.setObjective(pulp.lpSum_vars_coefs(objective) + self.constant)
        self.has_variables = bool(self.variables)
        self.build_seconds = time.perf_counter() - started

    @property
    def formulation(self) -> str:
        if len(self.forms) > 1:
            return "mixed"
        return next(iter(self.forms)) if self.forms else "fixed"

    @property
    def size(self) -> tuple[int, int]:
        """(variables, constraints)."""
        return self.variables, self.constraints

    def _variable(
        self, name: str, lower: float | None, upper: float | None, integer: bool = False
    ) -> pulp.LpVariable:
        self.variables += 1
        return self.prob.add_variable(name, lower, upper, "Integer" if integer else "Continuous")

    def _row(self, row: pulp.LpAffineExpression, name: str | None = None) -> pulp.LpConstraint:
        self.constraints += 1
        return self.prob.addConstraint(row, name)

    def _add_workload(
        self,
        i: int,
        curve: Curve,
        formulation: Formulation,
        objective: list[tuple[pulp.LpVariable, float]],
        use_terms: dict[str, list[tuple[pulp.LpVariable, float]]],
    ) -> _Workload:
        from pulp import LpAffineExpression

        expression = LpAffineExpression.from_list  # a row's few terms: measured the cheapest

        w = curve.workload
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
            select = None if alone else self._variable(f"y_{i}_{j}", 0.0, 1.0, integer=True)
            if first == last:
                assert select is not None  # a run of one count is alone only with one count
                objective.append((select, curve.totals[first]))
                for r in use_terms:
                    if unit[r]:
                        use_terms[r].append((select, unit[r] * lo))
                out.pieces.append(_Piece(lo, hi, select, None, None))
                continue
            count = self._variable(f"r_{i}_{j}", float(lo) if alone else 0.0, float(hi), True)
            cost = self._variable(f"z_{i}_{j}", None, None)
            for k, total, slope in curve.segments(first, last):
                # z >= total + slope * (r - k), times y when the run may be off
                if select is None:
                    self._row(expression([(cost, 1.0), (count, -slope)]) >= total - slope * k)
                else:
                    terms = [(cost, 1.0), (count, -slope), (select, slope * k - total)]
                    self._row(expression(terms) >= 0.0)
            if select is not None:
                self._row(expression([(count, 1.0), (select, -float(lo))]) >= 0.0)
                self._row(expression([(count, 1.0), (select, -float(hi))]) <= 0.0)
            objective.append((cost, 1.0))
            for r in use_terms:
                if unit[r]:
                    use_terms[r].append((count, unit[r]))
            out.pieces.append(_Piece(lo, hi, select, count, cost))
        if not alone:
            selects = [(p.select, 1.0) for p in out.pieces if p.select is not None]
            self._row(expression(selects) == 1.0)
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
        """Give every variable its value in the plan `counts` (a start for the solver)."""
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
        if solver not in ("highs", "cbc"):
            raise ValueError(f"unknown solver {solver!r}: use 'highs' or 'cbc'")
        size = self.size
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
            warm = start is not None and not relaxation
            if warm:
                assert start is not None
                self.warm_start(start)
            started = time.perf_counter()
            options = (solver, time_limit, gap, cbc_path, not relaxation, size[0], warm)
            stats = self.prob.solve(_solver(*options))
            seconds = time.perf_counter() - started
        status = _status(stats.status)
        extra = (self.build_seconds, seconds)
        has = stats.has_solution and stats.objective is not None
        bound = stats.best_bound if not relaxation else (stats.objective if has else None)
        if bound is None and has and status == "optimal":
            # No integer variable left (only slacks): HiGHS solved an LP, whose optimum is proven.
            bound = stats.objective
        bound = bound + self.offset if bound is not None and math.isfinite(bound) else None
        if not has or stats.objective is None:
            return IlpResult(None, status, None, bound, self.formulation, *size, *extra)
        read = None if relaxation else [wl.read() for wl in self.workloads]
        value = stats.objective + self.offset
        return IlpResult(read, status, value, bound, self.formulation, *size, *extra)
