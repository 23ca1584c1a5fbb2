"""peakplan: PeakPilot's pure decision core. No Kubernetes, no Prometheus, no clock, no I/O."""

from peakplan.plan import Binding, Plan, Relaxation, SolverReport, WorkloadDecision
from peakplan.planner import SolveOptions, plan
from peakplan.problem import Budget, LatencySLO, Problem, UtilizationSLO, Workload

__all__ = [
    "Binding",
    "Budget",
    "LatencySLO",
    "Plan",
    "Problem",
    "Relaxation",
    "SolveOptions",
    "SolverReport",
    "UtilizationSLO",
    "Workload",
    "WorkloadDecision",
    "plan",
]
