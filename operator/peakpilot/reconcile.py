"""One reconcile of one ScalingPolicy: observe -> plan -> apply -> record.

Synchronous and free of Kopf: the operator runs it in a worker thread, tests can run it directly.
What it returns (status, events, metrics) is recorded by the caller. Every failure path keeps the
workloads where they are: an invalid spec, a Prometheus outage, a solver failure or a conflict
never scales anything down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from peakpilot import api, telemetry
from peakpilot.kube import PAUSED_ANNOTATION, TAKE_OVER_ANNOTATION, Kube, KubeError, Target
from peakpilot.prometheus import (
    AllowList,
    MetricError,
    PrometheusSettings,
    PrometheusSource,
    safe_url,
)
from peakpilot.report import binding_dict, iso
from peakpilot.translate import to_policy
from peakpilot.units import parse_duration
from peakplan.controller import (
    Decision,
    ForecastUse,
    Memory,
    Observation,
    WorkloadObservation,
    decide,
    warm,
)
from peakplan.planner import SolveOptions
from peakplan.policy import Policy

log = logging.getLogger("peakpilot.reconcile")

CONDITION_TYPES = ("Ready", "MetricsAvailable", "BudgetBinding", "FallbackActive", "Paused")
MAX_HISTORY_POINTS = 10_000  # per range query (Prometheus refuses more than 11,000)


@dataclass
class PolicyState:
    """What the operator keeps in memory per policy between reconciles."""

    memory: Memory = field(default_factory=Memory)
    generation: int | None = None
    conditions: list[dict[str, Any]] | None = None  # as last written (the body may lag behind)
    warmed: set[str] = field(default_factory=set)  # workloads whose history was read (or given up)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    decision: Decision | None = None
    outcome: str = "ok"  # ok | invalid | paused | error


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


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


def _ca_file(pem: str) -> str:
    """A file holding a CA bundle, one per distinct content (not one per reconcile)."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"peakpilot-ca-{digest}.pem")
    if not os.path.exists(path):
        fd, partial = tempfile.mkstemp(suffix=".pem", prefix="peakpilot-ca-")
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        os.replace(partial, path)
    return path


def _prometheus(kube: Kube, namespace: str, spec: api.PrometheusSpec) -> PrometheusSettings:
    headers: dict[str, str] = {}
    basic: tuple[str, str] | None = None
    verify: bool | str = True
    auth = spec.auth
    if auth is not None:
        if auth.bearer_token_secret:
            headers["Authorization"] = "Bearer " + kube.secret_value(
                namespace, auth.bearer_token_secret, one_line=True
            )
        if auth.basic_auth:
            basic = (
                kube.secret_value(namespace, auth.basic_auth.username, one_line=True),
                kube.secret_value(namespace, auth.basic_auth.password, one_line=True),
            )
        if auth.ca_secret:
            verify = _ca_file(kube.secret_value(namespace, auth.ca_secret))
        if auth.insecure_skip_verify:
            verify = False
    return PrometheusSettings(
        url=spec.url,
        timeout=parse_duration(spec.timeout),
        headers=headers,
        basic_auth=basic,
        verify=verify,
    )


def reconcile(
    kube: Kube,
    body: Mapping[str, Any],
    state: PolicyState,
    options: SolveOptions | None = None,
    now: float | None = None,
    allowed: AllowList | None = None,
    metrics: Callable[[PrometheusSettings], PrometheusSource] = PrometheusSource,
) -> Outcome:
    """`allowed`: the Prometheus URLs the operator may query (None or empty: any); `metrics`
    opens the metrics source (tests give an in-memory one)."""
    now = time.time() if now is None else now
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "default")
    generation = meta.get("generation")
    annotations = meta.get("annotations") or {}
    previous = state.conditions
    if previous is None:  # the first reconcile of this process: what the last one wrote
        previous = (body.get("status") or {}).get("conditions")
    conditions = Conditions(previous, generation, now)
    status: dict[str, Any] = {"observedGeneration": generation}

    def finish(
        outcome: str, events: list[Event] | None = None, decision: Decision | None = None
    ) -> Outcome:
        status["conditions"] = state.conditions = conditions.as_list()
        telemetry.series(telemetry.RECONCILES, namespace, name, outcome).inc()
        return Outcome(status, events or [], decision, outcome)

    def invalid(lines: list[str]) -> Outcome:
        message = "; ".join(lines)
        conditions.set("Ready", False, "InvalidSpec", message)
        entered = conditions.entered("Ready", "False")
        return finish("invalid", [Event("Warning", "InvalidSpec", message)] if entered else [])

    # -- the spec: an invalid one is reported (once, as an event), never retried in a crash loop
    try:
        spec = api.ScalingPolicySpec.model_validate(body.get("spec") or {})
        policy = to_policy(spec)
    except ValidationError as exc:
        return invalid(api.describe_errors(exc, "spec"))
    except ValueError as exc:  # a value the models admit but the core cannot use
        return invalid([f"spec: {exc}"])
    if state.generation != generation:
        state.generation = generation

    if _truthy(annotations.get(PAUSED_ANNOTATION)):
        conditions.set(
            "Paused", True, "PausedByAnnotation", f"{PAUSED_ANNOTATION}=true on the policy"
        )
        conditions.set("Ready", True, "Paused", "nothing is planned or applied while paused")
        return finish("paused")
    if spec.mode == "Off":
        conditions.set("Paused", True, "ModeOff", "spec.mode is Off: nothing is planned or applied")
        conditions.set("Ready", True, "ModeOff")
        return finish("paused")
    if spec.prometheus is None:
        conditions.set(
            "Ready",
            False,
            "NoPrometheus",
            "spec.prometheus.url is required by the operator: set it",
        )
        return finish("invalid")
    if allowed is not None and not allowed.allows(spec.prometheus.url):
        # Before any Secret is read: a policy must not aim the operator's credentials elsewhere.
        message = (
            f"spec.prometheus.url {safe_url(spec.prometheus.url)} is not allowed by the operator "
            f"(allowed: {allowed.describe()}); use one of those, or ask the operator's "
            "administrator to allow it (chart value prometheus.allowedUrls); workloads are held"
        )
        conditions.set("Ready", False, "PrometheusNotAllowed", message)
        conditions.set("MetricsAvailable", False, "PrometheusNotAllowed", message)
        refused = [Event("Warning", "PrometheusNotAllowed", message)]
        return finish("invalid", refused if conditions.entered("Ready", "False") else [])

    events: list[Event] = []
    targets: dict[str, Target] = {}
    seen: dict[str, WorkloadObservation] = {}
    problems: list[str] = []
    paused_workloads: list[str] = []

    # -- observe: load queries (and, on a workload's first reconcile, its history)
    loads: dict[str, tuple[float | None, str | None]] = {}
    try:
        source = metrics(_prometheus(kube, namespace, spec.prometheus))
    except KubeError as exc:
        source = None
        problems.append(f"Prometheus credentials: {exc}")
        for w in spec.workloads:
            loads[w.name] = (None, f"credentials: {exc}")
    if source is not None:
        try:
            for w in spec.workloads:
                try:
                    loads[w.name] = (source.instant(w.load.query, now), None)
                except MetricError as exc:
                    loads[w.name] = (None, str(exc))
            _warm(source, spec, policy, state, loads, now)
        finally:
            source.close()

    # -- observe: targets, their replicas and who else scales them
    autoscalers: list[tuple[str, str, dict[str, Any]]] | KubeError | None = None
    for w in spec.workloads:
        target = Target(w.target_ref.api_version, w.target_ref.kind, w.target_ref.name, namespace)
        targets[w.name] = target
        load, error = loads[w.name]
        try:
            obj = kube.read_target(target)
            scale = kube.read_scale(target, obj)
        except KubeError as exc:
            problems.append(f"{w.name}: {exc}")
            # Unknown replicas: decide() holds it as last seen, or leaves it out of the plan.
            seen[w.name] = WorkloadObservation(0, load, error, unreadable=str(exc))
            continue
        hold = None
        target_annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if _truthy(target_annotations.get(PAUSED_ANNOTATION)):
            hold = f"paused ({PAUSED_ANNOTATION} on {target})"
            paused_workloads.append(w.name)
        elif not _truthy(target_annotations.get(TAKE_OVER_ANNOTATION)):
            if autoscalers is None:  # once per reconcile, on the first workload that asks
                try:
                    autoscalers = kube.autoscalers(namespace)
                except KubeError as exc:
                    autoscalers = exc
            if isinstance(autoscalers, KubeError):
                # Fail closed: another autoscaler may own it, so it is not ours to change.
                owners = []
                hold = f"ownership unknown ({autoscalers})"
                problems.append(
                    f"{w.name}: held: the ownership check failed ({autoscalers}); nothing is "
                    "scaled until the operator can list HPAs and ScaledObjects"
                )
            else:
                owners = kube.owners(target, autoscalers)
            if owners:
                hold = f"owned by {', '.join(owners)}"
                problems.append(
                    f"{w.name}: {target} is already scaled by {', '.join(owners)}; remove it, or "
                    f"annotate the target {TAKE_OVER_ANNOTATION}=true to let PeakPilot take over"
                )
        seen[w.name] = WorkloadObservation(
            scale.replicas, load, error, hold=hold, ready=scale.ready
        )

    # -- plan
    enforce = spec.mode == "Enforce"
    decision = decide(policy, Observation(now, seen), state.memory, options)
    plan = decision.plan

    # -- apply: only the changes that were written count against the rate limits
    if enforce:
        reasons = {d.name: d.reason for d in plan.workloads}
        for change in decision.changes:
            target = targets[change.name]
            try:
                kube.set_replicas(target, change.desired, expected=change.current)
            except KubeError as exc:
                events.append(Event("Warning", "ScaleFailed", f"{change.name}: {exc}"))
                problems.append(f"{change.name}: scaling failed: {exc}")
                continue
            state.memory.applied(change)
            up = change.desired > change.current
            telemetry.series(
                telemetry.SCALES, namespace, name, change.name, "up" if up else "down"
            ).inc()
            events.append(
                Event(
                    "Normal",
                    "ScaledUp" if up else "ScaledDown",
                    f"{change.name} ({target}): {change.current} -> {change.desired}: "
                    f"{reasons[change.name]}",
                )
            )

    # -- record
    status["lastPlan"] = _last_plan(decision)
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
    elif paused_workloads:
        conditions.set("Paused", True, "WorkloadsPaused", ", ".join(paused_workloads))
    else:
        conditions.set("Paused", False, "Active")
    if problems:
        conditions.set("Ready", False, "WorkloadProblems", "; ".join(problems))
        if conditions.entered("Ready", "False"):
            events.append(Event("Warning", "WorkloadProblems", "; ".join(problems)))
    else:
        conditions.set("Ready", True, "Reconciled", f"planned {len(plan.workloads)} workloads")

    _export_metrics(namespace, name, decision, state.memory, now)
    return finish("ok" if not problems else "error", events, decision)


def _warm(
    source: PrometheusSource,
    spec: api.ScalingPolicySpec,
    policy: Policy,
    state: PolicyState,
    loads: Mapping[str, tuple[float | None, str | None]],
    now: float,
) -> None:
    """Feed each new workload's forecaster its history (a range query over forecast.history),
    once, before it sees its first live load: a restarted operator forecasts from the start."""
    if policy.forecast.method == "reactive":  # no model to feed
        state.warmed.update(w.name for w in spec.workloads)
        return
    history = policy.forecast.history
    step = float(math.ceil(max(1.0, policy.interval, history / MAX_HISTORY_POINTS)))
    for w in spec.workloads:
        if w.name in state.warmed:
            continue
        mem = state.memory.of(w.name)
        if mem.forecaster is not None and mem.forecaster.state.first_time is not None:
            state.warmed.add(w.name)  # it learns from live loads already: no going back in time
            continue
        try:
            points = source.history(w.load.query, now - history, now, step)
        except MetricError as exc:
            if loads[w.name][0] is not None:
                # Prometheus answers, but has no usable history (a new series): live loads only.
                state.warmed.add(w.name)
                log.info(f"{w.name}: no history to warm the forecast from ({exc})")
            continue  # Prometheus unreachable: try again next reconcile
        mem.forecaster = None  # it only recorded missing samples (if anything): start afresh
        try:
            warm(policy, state.memory, w.name, [(t, v) for t, v in points if t < now])
        except ValueError as exc:
            mem.forecaster = None
            log.warning(f"{w.name}: history not usable for the forecast ({exc})")
        else:
            log.info(f"{w.name}: forecast warmed from {len(points)} samples of history")
        state.warmed.add(w.name)


def _forecast_text(use: ForecastUse | None) -> str | None:
    """One line for status: method, what set the demand, and the forecaster's own reason."""
    if use is None:
        return None
    return f"{use.method}, demand from {use.basis}: {use.reason}"[:512]


def _last_plan(decision: Decision) -> dict[str, Any]:
    plan = decision.plan
    s = plan.solver
    workloads = []
    for d in plan.workloads:
        given = decision.input(d.name)
        workloads.append(
            {
                "name": d.name,
                "current": d.current,
                "desired": d.desired,
                "load": round(given.demand, 3),
                "utilization": round(d.utilization, 4) if math.isfinite(d.utilization) else None,
                "costPerHour": round(d.cost_per_hour, 4),
                "reason": (d.reason + (f"; {given.note}" if given.note else ""))[:512],
                "limitedBy": d.limited_by,
                "forecast": _forecast_text(given.forecast),
                "surge": given.surge[:512] if given.surge else None,
            }
        )
    binding = []
    for b in plan.binding:
        raw = binding_dict(b)
        relax = raw.get("relax") or {}
        binding.append(
            {
                "constraint": b.constraint,
                "limit": raw["limit"],
                "used": raw["used"],
                "needed": raw["needed"],
                "soft": b.soft,
                "relaxBy": relax.get("by"),
                "relaxGainPerHour": relax.get("gainPerHour"),
                "relaxReplicas": relax.get("replicas"),
            }
        )
    return {
        "time": iso(decision.at),
        "objective": round(plan.objective, 4),
        "costPerHour": round(plan.cost_per_hour, 4),
        "solver": {
            "name": s.solver,
            "status": s.status,
            "seconds": round(s.seconds, 4),
            "gap": round(s.gap, 6) if s.gap is not None else None,
            "usedGreedy": s.used_greedy,
            "fallbackReason": s.fallback_reason,
        },
        "workloads": workloads,
        "binding": binding,
        "notes": list(plan.notes),
        # Workloads not planned (their replicas could not be read, and were never seen): why.
        "leftOut": [{"name": n, "reason": why[:512]} for n, why in decision.left_out.items()],
    }


def _export_metrics(
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
