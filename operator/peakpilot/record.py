"""Record one reconcile: the status (conditions, `lastPlan`), the Events and the metrics.

Conditions keep their lastTransitionTime while their status holds, and an Event is posted when a
condition enters a state with a new reason: repeating the same warning every interval would flood
the namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from peakpilot import telemetry
from peakpilot.observe import Observed, Refused
from peakpilot.report import iso, plan_document
from peakplan import Decision, Memory

CONDITION_TYPES = ("Ready", "MetricsAvailable", "BudgetBinding", "FallbackActive", "Paused")
# What changes every reconcile although the plan does not: when it was made (lastPlan.at) and
# how long the solver took (lastPlan.solver.seconds).
VOLATILE_PLAN_KEYS = ("at",)
VOLATILE_SOLVER_KEYS = ("seconds",)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


class Conditions:
    """Builds status.conditions, keeping lastTransitionTime when a status does not change."""

    def __init__(self, previous: list[dict[str, Any]] | None, generation: int | None, now: float):
        self._previous = {c.get("type"): c for c in previous or []}
        self._generation = generation
        self._now = iso(now)
        self.items: dict[str, dict[str, Any]] = {}

    def set(self, kind: str, ok: bool | None, reason: str, message: str = "") -> None:
        status = "Unknown" if ok is None else ("True" if ok else "False")
        before = self._previous.get(kind) or {}
        changed = before.get("status") != status
        self.items[kind] = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": self._now
            if changed
            else before.get("lastTransitionTime", self._now),
            "observedGeneration": self._generation,
        }

    def as_list(self) -> list[dict[str, Any]]:
        return [self.items[k] for k in CONDITION_TYPES if k in self.items]

    def entered(self, kind: str, status: str) -> bool:
        """Condition `kind` is now `status` with a reason it did not have before (an event's
        worth: repeating the same warning every interval would flood the namespace)."""
        now = self.items.get(kind)
        if now is None or now["status"] != status:
            return False
        before = self._previous.get(kind) or {}
        return (before.get("status"), before.get("reason")) != (status, now["reason"])


def refused(conditions: Conditions, refusal: Refused) -> list[Event]:
    """The conditions of a policy that is not planned; a Warning when Ready turns False."""
    for kind, ok, reason, message in refusal.conditions:
        conditions.set(kind, ok, reason, message)
    if refusal.warning is None or not conditions.entered("Ready", "False"):
        return []
    return [Event("Warning", refusal.warning, conditions.items["Ready"]["message"])]


def record(
    conditions: Conditions,
    decision: Decision,
    observed: Observed,
    problems: Sequence[str],
    enforce: bool,
    memory: Memory,
    policy: tuple[str, str],
) -> tuple[dict[str, Any], list[Event]]:
    """The status fields of a planned policy (`lastPlan`; `conditions` is set) and its Events;
    the metrics of `policy` (namespace, name) exported."""
    export_metrics(*policy, decision, memory, decision.at)
    plan = decision.plan
    events: list[Event] = []
    missing = [i for i in decision.inputs if i.source != "observed"]
    if missing:
        missing_text = "; ".join(f"{i.name}: {i.note}" for i in missing)
        conditions.set("MetricsAvailable", False, "MetricsUnavailable", missing_text)
        if conditions.entered("MetricsAvailable", "False"):
            events.append(Event("Warning", "MetricsUnavailable", missing_text))
    else:
        conditions.set("MetricsAvailable", True, "AllLoadsRead")
    if plan.binding:
        parts = []
        for b in plan.binding:
            text = f"{b.constraint} limit {b.limit:g} binds (meeting every SLO needs {b.needed:g})"
            if b.relax and b.relax.replicas:
                gains = ", ".join(f"{k} +{v}" for k, v in b.relax.replicas.items())
                text += f"; +{b.relax.amount:g} would buy {gains}"
            parts.append(text)
        conditions.set("BudgetBinding", True, "Binding", "; ".join(parts))
    else:
        conditions.set("BudgetBinding", False, "NotBinding")
    fallbacks = []
    if plan.solver.used_greedy:
        fallbacks.append(f"greedy plan: {plan.solver.fallback_reason}")
    fallbacks.extend(f"{i.name}: {i.note}" for i in missing)
    if fallbacks:
        reason = "GreedyPlan" if plan.solver.used_greedy else "MetricFallback"
        conditions.set("FallbackActive", True, reason, "; ".join(fallbacks))
        if plan.solver.used_greedy and conditions.entered("FallbackActive", "True"):
            events.append(Event("Warning", "GreedyPlan", fallbacks[0]))
    else:
        conditions.set("FallbackActive", False, "None")
    if not enforce:
        conditions.set("Paused", True, "Preview", "spec.mode is Preview: planning, not applying")
    elif observed.paused:
        conditions.set("Paused", True, "WorkloadsPaused", ", ".join(observed.paused))
    else:
        conditions.set("Paused", False, "Active")
    if problems:
        conditions.set("Ready", False, "WorkloadProblems", "; ".join(problems))
        if conditions.entered("Ready", "False"):
            events.append(Event("Warning", "WorkloadProblems", "; ".join(problems)))
    else:
        conditions.set("Ready", True, "Reconciled", f"planned {len(plan.workloads)} workloads")
    return {"lastPlan": plan_document(decision, compact=True)}, events


def export_metrics(
    namespace: str, name: str, decision: Decision, memory: Memory, now: float
) -> None:
    plan = decision.plan
    series = telemetry.series
    series(telemetry.SOLVE_SECONDS, namespace, name).observe(plan.solver.seconds)
    series(telemetry.SOLVE_GAP, namespace, name).set(plan.solver.gap or 0.0)
    series(telemetry.FALLBACK, namespace, name).set(1.0 if plan.solver.used_greedy else 0.0)
    series(telemetry.COST, namespace, name).set(plan.cost_per_hour)
    for d in plan.workloads:
        series(telemetry.DESIRED, namespace, name, d.name).set(d.desired)
        series(telemetry.CURRENT, namespace, name, d.name).set(d.current)
        last = memory.of(d.name).last_load_at
        age = now - last if last is not None else float("inf")
        series(telemetry.METRIC_AGE, namespace, name, d.name).set(age)


def summary(
    decision: Decision | None, conditions: Conditions, budget_per_hour: float | None
) -> dict[str, Any]:
    """status.summary, what `kubectl get sp` shows: the plan's totals and the policy's state.
    Every key is written (None when there is no plan) because status is merge-patched: a key
    left out would keep a stale figure from an earlier plan."""

    def true(kind: str) -> bool:
        return (conditions.items.get(kind) or {}).get("status") == "True"

    out: dict[str, Any] = {
        "workloads": None,
        "desiredReplicas": None,
        "currentReplicas": None,
        "costPerHour": None,
        "budgetPerHour": budget_per_hour,
        "binding": None,
        "fallback": true("FallbackActive"),
        "paused": true("Paused"),
    }
    if decision is not None:
        plan = decision.plan
        out["workloads"] = len(plan.workloads)
        out["desiredReplicas"] = sum(d.desired for d in plan.workloads)
        out["currentReplicas"] = sum(d.current for d in plan.workloads)
        out["costPerHour"] = round(plan.cost_per_hour, 4)
        out["binding"] = ",".join(b.constraint for b in plan.binding) or "none"
    return out


def unchanged(written: Mapping[str, Any] | None, status: Mapping[str, Any]) -> bool:
    """`status` says what `written` (the status last written) says, but for when the plan was
    made and the solver's time: writing it would change nothing a reader acts on."""
    return written is not None and _steady(written) == _steady(status)


def _steady(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    plan = out.get("lastPlan")
    if isinstance(plan, Mapping):
        steady = {k: v for k, v in plan.items() if k not in VOLATILE_PLAN_KEYS}
        solver = plan.get("solver")
        if isinstance(solver, Mapping):
            steady["solver"] = {k: v for k, v in solver.items() if k not in VOLATILE_SOLVER_KEYS}
        out["lastPlan"] = steady
    return out
