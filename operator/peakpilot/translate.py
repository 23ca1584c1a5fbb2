"""ScalingPolicy spec (the API) -> peakplan.Policy (the decision core's values)."""

from __future__ import annotations

from peakpilot import api
from peakpilot.units import parse_duration, parse_quantity
from peakplan import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    SLO,
    Behavior,
    Budget,
    CalendarEvent,
    ForecastSettings,
    LatencySLO,
    MetricFailure,
    Policy,
    ScalingRules,
    StepLimit,
    UtilizationSLO,
    WorkloadPolicy,
)


def _slo(spec: api.SLOSpec) -> SLO:
    if spec.latency_ms is not None and spec.service_time_ms is not None:
        return LatencySLO(spec.latency_ms, spec.service_time_ms)
    return UtilizationSLO(spec.target_utilization or 0.8)


def _workload(spec: api.WorkloadSpec) -> WorkloadPolicy:
    resources = spec.resources or api.ResourceSpec()
    return WorkloadPolicy(
        name=spec.name,
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        capacity=spec.capacity_per_replica,
        slo=_slo(spec.slo),
        priority=spec.priority,
        # money per request -> money per hour of one request/s, the core's unit
        value=None if spec.value_per_request is None else spec.value_per_request * 3600.0,
        price=spec.cost.per_replica_hour if spec.cost else 0.0,
        cpu=parse_quantity(resources.cpu) if resources.cpu is not None else 0.0,
        memory=parse_quantity(resources.memory) if resources.memory is not None else 0.0,
        startup=parse_duration(spec.startup),
    )


def _rules(spec: api.ScalingRules | None, default: ScalingRules) -> ScalingRules:
    if spec is None:
        return default
    limits = default.limits
    if spec.policies is not None:
        limits = tuple(StepLimit(p.type, p.value, float(p.period_seconds)) for p in spec.policies)
    window = default.window
    if spec.stabilization_window_seconds is not None:
        window = float(spec.stabilization_window_seconds)
    return ScalingRules(window, spec.select_policy, limits)


def _event(spec: api.EventSpec) -> CalendarEvent:
    start, end = spec.window()
    return CalendarEvent(
        name=spec.name,
        start=start.timestamp(),
        end=end.timestamp(),
        lead=parse_duration(spec.lead_time),
        multiplier=spec.load_multiplier,
        min_replicas=dict(spec.min_replicas or {}),
        workloads=frozenset(spec.workloads) if spec.workloads is not None else None,
    )


def to_policy(spec: api.ScalingPolicySpec) -> Policy:
    budget = spec.budget or api.Budget()
    behavior = spec.behavior or api.Behavior()
    failure = spec.on_metric_failure or api.OnMetricFailure()
    forecast = spec.forecast or api.ForecastSpec()
    return Policy(
        workloads=tuple(_workload(w) for w in spec.workloads),
        budget=Budget(
            max_cost_per_hour=budget.max_cost_per_hour,
            max_cpu=parse_quantity(budget.max_cpu) if budget.max_cpu is not None else None,
            max_memory=parse_quantity(budget.max_memory) if budget.max_memory is not None else None,
        ),
        behavior=Behavior(
            up=_rules(behavior.scale_up, DEFAULT_SCALE_UP),
            down=_rules(behavior.scale_down, DEFAULT_SCALE_DOWN),
            change_cost=parse_duration(behavior.change_cost),
            tolerance=behavior.tolerance,
        ),
        events=tuple(_event(e) for e in spec.events or []),
        on_metric_failure=MetricFailure(
            action=failure.action, ttl=parse_duration(failure.ttl), replicas=failure.replicas
        ),
        forecast=ForecastSettings(
            method=forecast.method,
            history=parse_duration(forecast.history),
            horizon=parse_duration(forecast.horizon),
            quantile=forecast.quantile,
        ),
        interval=parse_duration(spec.interval),
    )
