"""The array path, kept for measurement and comparison: the integer program as plain arrays handed
to HiGHS through highspy, without PuLP (peakplan/ilp.py as of commit 8f028b7, HiGHS only).

PeakPilot itself builds the program with PuLP (optimizer/peakplan/ilp.py). This module is what it
replaced: bench/plan_scaling.py and bench/thousand.py time the two side by side, and
tests/unit/test_ilp_pulp_vs_arrays.py checks that they give the same answers.

    python bench/ilp_arrays.py plan POLICY --metrics SNAPSHOT   # `peakpilot plan` on the arrays
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from peakplan.curves import Curve
from peakplan.ilp import IlpResult, _swallow_highs_banner
from peakplan.problem import usage

Formulation = Literal["auto", "envelope", "choice"]
# Seconds kept back from the deadline for handing the model to the solver and reading the answer
# back, which its own clock does not count: measured ~1e-5 s per column and row.
HANDOVER_FIXED, HANDOVER_PER_ITEM = 0.02, 1e-5
PRESOLVE_BELOW = 1000  # columns: see _highs_options
INF = math.inf


@dataclass
class _Piece:
    """A convex run of one curve: its selector (None when it is the only run) and variables,
    as column indices."""

    first: int  # candidate count range
    last: int
    select: int | None  # binary column, or None
    count: int | None  # integer count column, or None for a single count
    cost: int | None  # epigraph column, or None for a single count


@dataclass
class _Workload:
    curve: Curve
    pieces: list[_Piece] = field(default_factory=list)

    def read(self, values: Sequence[float]) -> int:
        if len(self.pieces) == 1 and self.pieces[0].select is None:
            piece = self.pieces[0]
            return piece.first if piece.count is None else round(values[piece.count])
        piece = max(self.pieces, key=lambda p: values[p.select] if p.select is not None else 0.0)
        return piece.first if piece.count is None else round(values[piece.count])

    def warm(self, n: int, values: list[float]) -> None:
        """Set every column to the values that put this workload at count n."""
        for p in self.pieces:
            inside = p.first <= n <= p.last
            if p.select is not None:
                values[p.select] = 1.0 if inside else 0.0
            if p.count is not None and p.cost is not None:
                values[p.count] = float(n) if inside else 0.0
                values[p.cost] = self.curve.total(n) if inside else 0.0


@dataclass
class _Row:
    lower: float
    upper: float
    columns: list[int]
    coefficients: list[float]


class _Program:
    """Columns and rows of a minimisation, as arrays a solver takes."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.cost: list[float] = []
        self.rows: list[_Row] = []

    def column(self, lower: float, upper: float, integer: bool = False) -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(integer)
        self.cost.append(0.0)
        return len(self.lower) - 1

    def row(self, lower: float, upper: float, terms: Sequence[tuple[int, float]]) -> int:
        self.rows.append(_Row(lower, upper, [j for j, _ in terms], [c for _, c in terms]))
        return len(self.rows) - 1


@dataclass(frozen=True)
class _Answer:
    status: str
    has_solution: bool
    objective: float | None  # with the constant
    best_bound: float | None  # a MIP's proven bound (with the constant), or the LP's value
    values: list[float] | None


# HiGHS model statuses by name, as IlpResult.status says them.
_HIGHS_STATUS = {
    "kOptimal": "optimal",
    "kTimeLimit": "time-limit",
    "kObjectiveBound": "gap-limit",
    "kObjectiveTarget": "gap-limit",
    "kInfeasible": "infeasible",
    "kUnbounded": "unbounded",
    "kUnboundedOrInfeasible": "infeasible",
    "kNotset": "not-solved",
    "kModelEmpty": "not-solved",
    "kInterrupt": "interrupted",
    "kIterationLimit": "iteration-limit",
    "kSolutionLimit": "solution-limit",
    "kMemoryLimit": "memory-limit",
}
# Statuses of a solve stopped before it proved optimality: its incumbent, if any, is usable.
_STOPPED_EARLY = {
    "kObjectiveBound",
    "kObjectiveTarget",
    "kInterrupt",
    "kTimeLimit",
    "kIterationLimit",
    "kSolutionLimit",
    "kMemoryLimit",
}


def _highs_options(time_limit: float, gap: float, size: int) -> list[tuple[str, Any]]:
    # HiGHS' MIP presolve halves the median solve of small models but measured slower than
    # the whole rest of the solve on large ones, whose root LP is nearly integral anyway.
    return [
        ("output_flag", False),
        ("threads", 1),
        ("presolve", "on" if size < PRESOLVE_BELOW else "off"),
        ("mip_rel_gap", gap),
        ("time_limit", max(time_limit, 1e-3)),
    ]


def _solve_highs(
    program: _Program,
    constant: float,
    time_limit: float,
    gap: float,
    mip: bool,
    warm: Sequence[float] | None,
) -> _Answer:
    import highspy
    import numpy as np

    _swallow_highs_banner()
    n = len(program.lower)
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    for option, setting in _highs_options(time_limit, gap, n):
        h.setOptionValue(option, setting)
    inf = highspy.kHighsInf
    lower = np.array([max(v, -inf) for v in program.lower], dtype=np.float64)
    upper = np.array([min(v, inf) for v in program.upper], dtype=np.float64)
    empty = np.array([], dtype=np.int32)
    h.addCols(n, np.array(program.cost), lower, upper, 0, empty, empty, np.array([]))
    integer = np.array([j for j, i in enumerate(program.integer) if i], dtype=np.int32)
    if mip and len(integer):
        kinds = np.full(len(integer), highspy.HighsVarType.kInteger)
        h.changeColsIntegrality(len(integer), integer, kinds)
    h.changeObjectiveOffset(constant)
    starts: list[int] = []
    index: list[int] = []
    value: list[float] = []
    for row in program.rows:
        starts.append(len(index))
        index.extend(row.columns)
        value.extend(row.coefficients)
    h.addRows(
        len(program.rows),
        np.array([max(r.lower, -inf) for r in program.rows], dtype=np.float64),
        np.array([min(r.upper, inf) for r in program.rows], dtype=np.float64),
        len(index),
        np.array(starts, dtype=np.int32),
        np.array(index, dtype=np.int32),
        np.array(value, dtype=np.float64),
    )
    if warm is not None and mip:
        h.setSolution(n, np.arange(n, dtype=np.int32), np.array(warm, dtype=np.float64))
    h.run()
    status = h.getModelStatus().name
    info = h.getInfo()
    objective = float(info.objective_function_value)
    has = status == "kOptimal" or (status in _STOPPED_EARLY and math.isfinite(objective))
    if mip and len(integer):
        bound: float | None = float(info.mip_dual_bound)
    else:  # an LP (asked for, or no integer column): its optimum is its own bound
        bound = objective if has else None
    values = list(h.getSolution().col_value) if has else None
    return _Answer(
        _HIGHS_STATUS.get(status, "failed"),
        has,
        objective if has else None,
        bound if bound is not None and math.isfinite(bound) else None,
        values,
    )


class ArrayIlpModel:
    """peakplan.ilp.IlpModel's interface over the arrays (HiGHS only)."""

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
        self.program = _Program()
        self.workloads: list[_Workload] = []
        self.fixed_use = dict.fromkeys(limits, 0.0)
        self.floor_use = {
            r: sum(usage(c.workload, r, c.counts[0]) for c in self.curves) for r in limits
        }
        self.soft = dict(soft_penalty)
        self.slack: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.constant = 0.0
        self.forms: set[str] = set()
        self.lock = threading.Lock()  # held while a solve runs (it may outlive its deadline)
        use_terms: dict[str, list[tuple[int, float]]] = {r: [] for r in limits}
        for i, curve in enumerate(self.curves):
            self.workloads.append(self._add_workload(i, curve, formulation, use_terms))
        for r in limits:
            terms = use_terms[r]
            if r in soft_penalty:
                self.slack[r] = self.program.column(0.0, INF)
                self.program.cost[self.slack[r]] = soft_penalty[r]
                terms.append((self.slack[r], -1.0))
            if terms:
                base = self._base(r) - self.fixed_use[r]
                self.rows[r] = self.program.row(-INF, base, terms)
        self.has_variables = bool(self.program.lower)
        self.build_seconds = time.perf_counter() - started

    @property
    def formulation(self) -> str:
        if len(self.forms) > 1:
            return "mixed"
        return next(iter(self.forms)) if self.forms else "fixed"

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows)."""
        return len(self.program.lower), len(self.program.rows)

    def _add_workload(
        self,
        i: int,
        curve: Curve,
        formulation: Formulation,
        use_terms: dict[str, list[tuple[int, float]]],
    ) -> _Workload:
        w, prog = curve.workload, self.program
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
        for first, last in runs:
            lo, hi = curve.counts[first], curve.counts[last]
            select = None if alone else prog.column(0.0, 1.0, integer=True)
            if first == last:
                assert select is not None  # a run of one count is alone only with one count
                prog.cost[select] += curve.totals[first]
                for r in use_terms:
                    if unit[r]:
                        use_terms[r].append((select, unit[r] * lo))
                out.pieces.append(_Piece(lo, hi, select, None, None))
                continue
            count = prog.column(float(lo) if alone else 0.0, float(hi), integer=True)
            cost = prog.column(-INF, INF)
            for k, total, slope in curve.segments(first, last):
                # z >= total + slope * (r - k), times y when the run may be off
                if select is None:
                    prog.row(total - slope * k, INF, [(cost, 1.0), (count, -slope)])
                else:
                    terms = [(cost, 1.0), (count, -slope), (select, slope * k - total)]
                    prog.row(0.0, INF, terms)
            if select is not None:
                prog.row(0.0, INF, [(count, 1.0), (select, -float(lo))])
                prog.row(-INF, 0.0, [(count, 1.0), (select, -float(hi))])
            prog.cost[cost] += 1.0
            for r in use_terms:
                if unit[r]:
                    use_terms[r].append((count, unit[r]))
            out.pieces.append(_Piece(lo, hi, select, count, cost))
        if not alone:
            selects = [p.select for p in out.pieces if p.select is not None]
            prog.row(1.0, 1.0, [(j, 1.0) for j in selects])
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
            row = self.program.rows[self.rows[resource]]
            row.upper = self._base(resource) - self.fixed_use[resource]

    def warm_start(self, counts: Sequence[int]) -> list[float]:
        """Every column's value for the plan `counts` (a start for the solver)."""
        values = [0.0] * len(self.program.lower)
        for wl, n in zip(self.workloads, counts, strict=True):
            wl.warm(n, values)
        for r, slack in self.slack.items():
            used = sum(usage(c.workload, r, n) for c, n in zip(self.curves, counts, strict=True))
            values[slack] = max(0.0, used - self._base(r))
        return values

    def solve(
        self,
        start: Sequence[int] | None = None,
        *,
        solver: str = "highs",
        time_limit: float = 3.0,
        gap: float = 1e-3,
        cbc_path: str | None = None,
        deadline: float | None = None,
        relaxation: bool = False,
    ) -> IlpResult:
        """Solve (its LP relaxation when `relaxation`); `deadline` is a time.perf_counter() time."""
        if solver != "highs":
            raise ValueError("the array path solves with HiGHS only")
        size = self.size
        if not self.has_variables:
            counts = [wl.read([]) for wl in self.workloads]
            value = self.constant + self.offset
            return IlpResult(counts, "optimal", value, value, "fixed", *size)
        if deadline is not None:
            handover = HANDOVER_FIXED + HANDOVER_PER_ITEM * (size[0] + size[1])
            time_limit = min(time_limit, deadline - time.perf_counter() - handover)
            if time_limit <= 0.0:
                return IlpResult(None, "deadline", None, None, self.formulation, *size)
        with self.lock:
            warm = self.warm_start(start) if start is not None and not relaxation else None
            started = time.perf_counter()
            answer = _solve_highs(
                self.program, self.constant, time_limit, gap, not relaxation, warm
            )
            seconds = time.perf_counter() - started
        extra = (self.build_seconds, seconds)
        bound = answer.best_bound + self.offset if answer.best_bound is not None else None
        if not answer.has_solution or answer.objective is None or answer.values is None:
            return IlpResult(None, answer.status, None, bound, self.formulation, *size, *extra)
        values = answer.values
        read = None if relaxation else [wl.read(values) for wl in self.workloads]
        value = answer.objective + self.offset
        return IlpResult(read, answer.status, value, bound, self.formulation, *size, *extra)


def use_arrays() -> None:
    """Make peakplan's planner build and solve its integer programs on the arrays."""
    from peakplan import planner

    setattr(planner, "IlpModel", ArrayIlpModel)  # noqa: B010  (a bench's patch, not an API)


def main() -> None:
    """`python bench/ilp_arrays.py [--pulp] ARGS`: peakpilot's CLI with ARGS, its integer programs
    on the arrays (with --pulp: as PeakPilot builds them, with PuLP); decide()'s CPU and wall
    seconds are written to stderr, as `decide cpu=... wall=...`."""
    args = sys.argv[1:]
    if args[:1] == ["--pulp"]:
        args = args[1:]
    else:
        use_arrays()
    import peakplan

    real = peakplan.decide

    def timed(*given: Any, **named: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return real(*given, **named)
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"decide cpu={cpu:.4f} wall={wall:.4f}", file=sys.stderr)

    peakplan.decide = timed  # the CLI looks it up when it runs
    from peakpilot.cli import main as cli

    sys.argv = ["peakpilot", *args]
    cli()


if __name__ == "__main__":
    main()
