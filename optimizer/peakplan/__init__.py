"""peakplan: PeakPilot's pure decision core. No Kubernetes, no Prometheus, no clock, no I/O.

This module is the core's facade: the shell (`peakpilot`) imports these names from here and
nothing from the modules behind them (an import contract in pyproject.toml holds it to that).
The replay model has a facade of its own, `peakplan.replay`.

- one decision: `decide(policy, observation, memory) -> Decision` (controller), `warm` to feed a
  forecaster history, and the values it reads and writes (`Observation`, `Memory`, ...);
- one allocation: `plan(problem) -> Plan` (planner), the integer program under shared limits;
- the policy as the core sees it (`Policy`, `WorkloadPolicy`, `CalendarEvent`, ...).
"""

from peakplan.allocation import (
    Binding,
    Plan,
    Relaxation,
    SolverReport,
    WorkloadDecision,
    format_amount,
)
from peakplan.controller import (
    MISSING_DATA_RULE,
    Decision,
    ForecastUse,
    Memory,
    Observation,
    WorkloadInput,
    WorkloadObservation,
    decide,
    warm,
)
from peakplan.epoch import MAX_EPOCH, MIN_EPOCH, RANGE_HINT, check_epoch
from peakplan.ilp import solver_missing
from peakplan.planner import SolveOptions, plan
from peakplan.policy import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    CalendarEvent,
    ForecastSettings,
    MetricFailure,
    Policy,
    ScalingRules,
    StepLimit,
    WorkloadPolicy,
)
from peakplan.problem import SLO, Budget, LatencySLO, Problem, UtilizationSLO, Workload

__all__ = [
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "MAX_EPOCH",
    "MIN_EPOCH",
    "MISSING_DATA_RULE",
    "RANGE_HINT",
    "SLO",
    "Behavior",
    "Binding",
    "Budget",
    "CalendarEvent",
    "Decision",
    "ForecastSettings",
    "ForecastUse",
    "LatencySLO",
    "Memory",
    "MetricFailure",
    "Observation",
    "Plan",
    "Policy",
    "Problem",
    "Relaxation",
    "ScalingRules",
    "SolveOptions",
    "SolverReport",
    "StepLimit",
    "UtilizationSLO",
    "Workload",
    "WorkloadDecision",
    "WorkloadInput",
    "WorkloadObservation",
    "WorkloadPolicy",
    "check_epoch",
    "decide",
    "format_amount",
    "plan",
    "solver_missing",
    "warm",
]
