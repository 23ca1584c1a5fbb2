"""The output of one allocation: a plain value that a controller executes and a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from peakplan.values import quick_init


def format_amount(resource: str, value: float, grouped: bool = False) -> str:
    """A shared limit's amount as a person reads it: money/h, cores or GiB (`grouped`: with
    thousands separators, as the plan table prints them)."""
    sep = "," if grouped else ""
    if resource == "cost":
        return f"{value:{sep}.2f}/h"
    if resource == "cpu":
        return f"{value:{sep}.2f} cores"
    return f"{value / 2**30:{sep}.1f} GiB"


@quick_init
@dataclass(frozen=True)
class WorkloadDecision:
    name: str
    current: int
    desired: int
    demand: float  # requests/s the decision was sized for
    needed: int  # fewest replicas that meet the SLO, ignoring bounds and budgets
    utilization: float  # demand / (desired x capacity); inf when desired is 0 and demand > 0
    cost_per_hour: float  # price x desired
    outside_slo: float  # requests/s served outside the SLO at `desired`
    reason: str
    # "floor", "ceiling", "budget:cost", "churn", "value", ... when not at `needed`
    limited_by: str | None = None

    @property
    def change(self) -> int:
        return self.desired - self.current


@dataclass(frozen=True)
class Relaxation:
    """What raising one shared limit by `amount` would change."""

    amount: float
    new_limit: float
    objective_gain: float  # objective saved (positive = better); see Plan.objective
    cost_change: float  # money/h of running cost added
    outside_slo_change: float  # requests/s brought back inside the SLO (negative = fewer late)
    replicas: dict[str, int] = field(default_factory=dict)  # workload -> added replicas
    estimated: bool = False  # True: no time was left to re-solve; a greedy lower bound on the gain


@dataclass(frozen=True)
class Binding:
    """A shared limit that changes the answer: the plan would differ without it."""

    constraint: str  # "cost" | "cpu" | "memory"
    limit: float
    used: float
    needed: float  # usage if every workload had its unconstrained best count
    soft: bool = False  # the floors alone exceed it: kept as a soft limit with a high penalty
    squeezed: dict[str, int] = field(default_factory=dict)  # workload -> replicas below its best
    relax: Relaxation | None = None


@quick_init
@dataclass(frozen=True)
class SolverReport:
    solver: str  # "highs" | "cbc" | "none" (no limit binds: each workload's own best is exact)
    status: str  # "optimal", "time-limit", "gap-limit", "failed", "deadline", ...
    seconds: float  # wall time of model build + solve
    gap: float | None  # relative gap to the best proven bound; None when unknown
    used_greedy: bool = False
    fallback_reason: str | None = None
    formulation: str = ""  # "envelope", "choice", "mixed", "fixed"
    variables: int = 0
    constraints: int = 0


@quick_init
@dataclass(frozen=True)
class Plan:
    workloads: tuple[WorkloadDecision, ...]
    solver: SolverReport
    # W x priority x replicas short of the SLO + cost/h + churn (+ value x load outside the SLO
    # for a workload with a value): a score to compare plans of one problem, not money
    objective: float
    cost_per_hour: float
    binding: tuple[Binding, ...] = ()
    notes: tuple[str, ...] = ()

    def decision(self, name: str) -> WorkloadDecision:
        for d in self.workloads:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def desired(self) -> dict[str, int]:
        return {d.name: d.desired for d in self.workloads}
