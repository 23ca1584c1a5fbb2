"""One reconcile of one ScalingPolicy: observe -> decide -> apply -> record.

Synchronous and free of Kopf: the operator runs it in a worker thread, tests can run it directly
(with in-memory fakes for the cluster and Prometheus). What it returns (status, events, metrics)
is written by the caller. Every failure path keeps the workloads where they are: an invalid spec,
a Prometheus outage, a solver failure or a conflict never scales anything down.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from peakpilot import record, telemetry
from peakpilot.kube import KubeError, Target
from peakpilot.observe import Cluster, MetricsSource, Refused, SpecMemo, observe, read_policy
from peakpilot.prometheus import AllowList, PrometheusSource
from peakpilot.record import Conditions, Event
from peakplan import Decision, Memory, SolveOptions, decide

__all__ = ["Event", "Outcome", "PolicyState", "reconcile", "write_status"]


@dataclass
class PolicyState:
    """What the operator keeps in memory per policy between reconciles."""

    memory: Memory = field(default_factory=Memory)
    conditions: list[dict[str, Any]] | None = None  # as last written (the body may lag behind)
    warmed: set[str] = field(default_factory=set)  # workloads whose history was read (or given up)
    spec: SpecMemo = field(default_factory=SpecMemo)  # the spec as validated for its generation
    status: dict[str, Any] | None = None  # as last written to the API server (None: not yet)


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    decision: Decision | None = None
    outcome: str = "ok"  # ok | invalid | paused | error


class StatusWriter(Protocol):
    """Writes a policy's status subresource (`peakpilot.kube.Kube`)."""

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...


class Scaler(Cluster, Protocol):
    """The cluster, able to write a target's replicas too (`peakpilot.kube.Kube`)."""

    def set_replicas(
        self, target: Target, replicas: int, expected: int, attempts: int = 3
    ) -> int: ...


def reconcile(
    kube: Scaler,
    body: Mapping[str, Any],
    state: PolicyState,
    options: SolveOptions | None = None,
    now: float | None = None,
    allowed: AllowList | None = None,
    metrics: MetricsSource = PrometheusSource,
) -> Outcome:
    """`allowed`: the Prometheus URLs the operator may query (None or empty: any); `metrics`
    opens the metrics source for a policy's Prometheus settings."""
    now = time.time() if now is None else now
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "default")
    previous = state.conditions
    if previous is None:  # the first reconcile of this process: what the last one wrote
        previous = (body.get("status") or {}).get("conditions")
    conditions = Conditions(previous, meta.get("generation"), now)
    status: dict[str, Any] = {"observedGeneration": meta.get("generation")}

    def finish(outcome: str, events: list[Event], decision: Decision | None = None) -> Outcome:
        status["conditions"] = state.conditions = conditions.as_list()
        telemetry.series(telemetry.RECONCILES, namespace, name, outcome).inc()
        return Outcome(status, events, decision, outcome)

    read = read_policy(body, allowed, state.spec)
    if isinstance(read, Refused):
        refused = record.refused(conditions, read)
        status["summary"] = record.summary(None, conditions, None)
        return finish(read.outcome, refused)
    spec, policy = read
    observed = observe(kube, metrics, spec, policy, namespace, state.memory, state.warmed, now)
    decision = decide(policy, observed.observation, state.memory, options)
    enforce = spec.mode == "Enforce"
    events, failed = (
        apply(kube, decision, observed.targets, state.memory, (namespace, name))
        if enforce
        else ([], [])
    )
    problems = observed.problems + failed
    fields, recorded = record.record(
        conditions, decision, observed, problems, enforce, state.memory, (namespace, name)
    )
    status.update(fields)
    budget = spec.budget.max_cost_per_hour if spec.budget else None
    status["summary"] = record.summary(decision, conditions, budget)
    return finish("ok" if not problems else "error", events + recorded, decision)


def apply(
    kube: Scaler,
    decision: Decision,
    targets: Mapping[str, Target],
    memory: Memory,
    policy: tuple[str, str],
) -> tuple[list[Event], list[str]]:
    """Write each change of `decision` to its target's /scale (Enforce): (events, problems).
    Only the changes written count against the rate limits (`Memory.applied`)."""
    events: list[Event] = []
    problems: list[str] = []
    reasons = {d.name: d.reason for d in decision.plan.workloads}
    for change in decision.changes:
        target = targets[change.name]
        try:
            kube.set_replicas(target, change.desired, expected=change.current)
        except KubeError as exc:
            events.append(Event("Warning", "ScaleFailed", f"{change.name}: {exc}"))
            problems.append(f"{change.name}: scaling failed: {exc}")
            continue
        memory.applied(change)
        up = change.desired > change.current
        telemetry.series(telemetry.SCALES, *policy, change.name, "up" if up else "down").inc()
        events.append(
            Event(
                "Normal",
                "ScaledUp" if up else "ScaledDown",
                f"{change.name} ({target}): {change.current} -> {change.desired}: "
                f"{reasons[change.name]}",
            )
        )
    return events, problems


def write_status(
    kube: StatusWriter, namespace: str, name: str, state: PolicyState, status: dict[str, Any]
) -> bool:
    """PATCH the policy's status unless it says what was last written (`record.unchanged`: the
    time of the plan and the solver's seconds aside), so a steady policy costs no write an
    interval; True when written. A failed write raises, and the next status is written."""
    if record.unchanged(state.status, status):
        return False
    kube.patch_status(namespace, name, status)
    state.status = status
    return True
