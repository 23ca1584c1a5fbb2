"""ScalingPolicy spec (as a manifest) -> the decision core's Policy: units, defaults, HPA rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from peakpilot.inputs import load_policy, parse_policy
from peakpilot.translate import to_policy
from peakplan.policy import (
    DEFAULT_CHANGE_COST,
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    ForecastSettings,
    MetricFailure,
    Policy,
    ScalingRules,
    StepLimit,
    WorkloadPolicy,
)
from peakplan.problem import Budget, LatencySLO, UtilizationSLO

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop-promotion.yaml"

WORKLOAD: dict[str, Any] = {
    "name": "web",
    "targetRef": {"kind": "Deployment", "name": "web"},
    "maxReplicas": 50,
    "load": {"query": "sum(rate(http_requests_total[1m]))"},
    "capacityPerReplica": 25,
}


def translate(spec: dict[str, Any]) -> Policy:
    """Translate a spec written as in a manifest (camelCase), with one workload by default."""
    full = {"workloads": [WORKLOAD], **spec}
    doc = {"apiVersion": "peakpilot.io/v1alpha1", "kind": "ScalingPolicy", "spec": full}
    return to_policy(parse_policy(doc).spec)


def workload(**fields: Any) -> WorkloadPolicy:
    return translate({"workloads": [{**WORKLOAD, **fields}]}).workloads[0]


def test_workload_defaults() -> None:
    assert workload() == WorkloadPolicy(
        name="web",
        min_replicas=1,
        max_replicas=50,
        capacity=25.0,
        slo=UtilizationSLO(0.8),
        priority=1.0,
        price=0.0,
        cpu=0.0,
        memory=0.0,
        startup=60.0,
    )


WORKLOAD_FIELDS = {
    "cpu-millicores": ({"resources": {"cpu": "500m"}}, "cpu", 0.5),
    "cpu-whole-cores-int": ({"resources": {"cpu": 2}}, "cpu", 2.0),
    "memory-binary": ({"resources": {"memory": "1Gi"}}, "memory", float(2**30)),
    "memory-decimal": ({"resources": {"memory": "512M"}}, "memory", 512e6),
    "price": ({"cost": {"perReplicaHour": 0.12}}, "price", 0.12),
    "startup-compound": ({"startup": "1m30s"}, "startup", 90.0),
    "startup-ms": ({"startup": "1500ms"}, "startup", 1.5),
    "min-replicas-zero": ({"minReplicas": 0}, "min_replicas", 0),
    "priority": ({"priority": 40}, "priority", 40.0),
    "utilisation-slo": ({"slo": {"targetUtilization": 0.6}}, "slo", UtilizationSLO(0.6)),
    "latency-slo": (
        {"slo": {"latencyMs": 250, "serviceTimeMs": 100}},
        "slo",
        LatencySLO(250, 100),
    ),
}


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"), WORKLOAD_FIELDS.values(), ids=WORKLOAD_FIELDS.keys()
)
def test_workload_fields(fields: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(workload(**fields), attribute) == expected


BUDGETS = {
    "none": ({}, Budget()),
    "cost-only": ({"budget": {"maxCostPerHour": 30}}, Budget(max_cost_per_hour=30)),
    "cpu-string": ({"budget": {"maxCpu": "400"}}, Budget(max_cpu=400.0)),
    "cpu-millicores": ({"budget": {"maxCpu": "2500m"}}, Budget(max_cpu=2.5)),
    "memory": ({"budget": {"maxMemory": "400Gi"}}, Budget(max_memory=400.0 * 2**30)),
}


@pytest.mark.parametrize(("spec", "expected"), BUDGETS.values(), ids=BUDGETS.keys())
def test_budget(spec: dict[str, Any], expected: Budget) -> None:
    assert translate(spec).budget == expected


BEHAVIOURS: dict[str, tuple[dict[str, Any], ScalingRules, ScalingRules]] = {
    # Unset: PeakPilot's defaults, no scale-up rate limit and a 600 s window down (not the HPA
    # v2 defaults, max(+100 %, +4 pods) / 15 s up and a 300 s window down).
    "unset": ({}, DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN),
    "empty-behavior": ({"behavior": {}}, DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN),
    # Only a window: the default policies stay (defaults are filled in per field, as the HPA does).
    "window-only": (
        {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
        DEFAULT_SCALE_UP,
        ScalingRules(60.0, "Max", DEFAULT_SCALE_DOWN.limits),
    ),
    # Only policies: the default window stays (600 s down, 0 s up).
    "policies-only": (
        {
            "behavior": {
                "scaleUp": {"policies": [{"type": "Pods", "value": 10, "periodSeconds": 60}]},
                "scaleDown": {"policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]},
            }
        },
        ScalingRules(0.0, "Max", (StepLimit("Pods", 10, 60.0),)),
        ScalingRules(600.0, "Max", (StepLimit("Percent", 10, 60.0),)),
    ),
    "select-min-two-policies": (
        {
            "behavior": {
                "scaleUp": {
                    "selectPolicy": "Min",
                    "stabilizationWindowSeconds": 30,
                    "policies": [
                        {"type": "Percent", "value": 400, "periodSeconds": 15},
                        {"type": "Pods", "value": 10, "periodSeconds": 15},
                    ],
                }
            }
        },
        ScalingRules(30.0, "Min", (StepLimit("Percent", 400, 15.0), StepLimit("Pods", 10, 15.0))),
        DEFAULT_SCALE_DOWN,
    ),
    "scale-down-disabled": (
        {"behavior": {"scaleDown": {"selectPolicy": "Disabled"}}},
        DEFAULT_SCALE_UP,
        ScalingRules(600.0, "Disabled", DEFAULT_SCALE_DOWN.limits),
    ),
}


@pytest.mark.parametrize(("spec", "up", "down"), BEHAVIOURS.values(), ids=BEHAVIOURS.keys())
def test_behavior(spec: dict[str, Any], up: ScalingRules, down: ScalingRules) -> None:
    behavior = translate(spec).behavior
    assert (behavior.up, behavior.down) == (up, down)


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [
        ({}, DEFAULT_CHANGE_COST),  # unset: ten replica-minutes
        ({"behavior": {"changeCost": "1h30m"}}, 5400.0),
        ({"behavior": {"changeCost": "0s"}}, 0.0),  # no idle hold
    ],
    ids=["default", "duration", "off"],
)
def test_change_cost_is_replica_seconds(spec: dict[str, Any], seconds: float) -> None:
    assert translate(spec).behavior.change_cost == seconds


FAILURES = {
    "default": ({}, MetricFailure("HoldLastKnown", 600.0, None)),
    "hold-ttl": (
        {"onMetricFailure": {"action": "HoldLastKnown", "ttl": "2m"}},
        MetricFailure("HoldLastKnown", 120.0, None),
    ),
    "static": (
        {"onMetricFailure": {"action": "Static", "replicas": 7}},
        MetricFailure("Static", 600.0, 7),
    ),
    "current": ({"onMetricFailure": {"action": "Current"}}, MetricFailure("Current", 600.0, None)),
}


@pytest.mark.parametrize(("spec", "expected"), FAILURES.values(), ids=FAILURES.keys())
def test_on_metric_failure(spec: dict[str, Any], expected: MetricFailure) -> None:
    assert translate(spec).on_metric_failure == expected


def test_forecast_defaults_and_durations() -> None:
    assert translate({}).forecast == ForecastSettings("auto", 7 * 86400.0, 900.0, 0.9)
    spec = {"forecast": {"method": "seasonal", "history": "14d", "horizon": "1h", "quantile": 0.95}}
    assert translate(spec).forecast == ForecastSettings("seasonal", 14 * 86400.0, 3600.0, 0.95)


def test_the_shop_example_translates() -> None:
    policy = to_policy(load_policy(EXAMPLE).spec)
    assert [w.name for w in policy.workloads] == [
        "frontend",
        "catalog",
        "cart",
        "checkout",
        "payments",
    ]
    assert policy.budget == Budget(max_cost_per_hour=30, max_cpu=400.0)
    cart = policy.workload("cart")
    assert (cart.cpu, cart.memory, cart.price, cart.startup) == (0.5, float(2**30), 0.12, 45.0)
    assert policy.workload("checkout").slo == LatencySLO(250, 100)
    assert policy.behavior.up == ScalingRules(
        0.0, "Max", (StepLimit("Percent", 400, 15.0), StepLimit("Pods", 10, 15.0))
    )
    assert policy.behavior.down == ScalingRules(300.0, "Max", (StepLimit("Percent", 10, 60.0),))
    (sale,) = policy.events
    assert (sale.name, sale.lead, sale.multiplier) == ("singles-day", 900.0, 4)
    assert sale.start == 1_794_326_400.0  # 2026-11-11T00:00:00+08:00 = 2026-11-10T16:00:00Z
    assert sale.end - sale.start == 7200
    assert policy.on_metric_failure == MetricFailure("HoldLastKnown", 600.0, None)


def test_translation_does_not_touch_the_spec() -> None:
    spec = parse_policy(
        {"spec": {"workloads": [WORKLOAD], "behavior": {"scaleUp": {"selectPolicy": "Min"}}}}
    ).spec
    before = copy.deepcopy(spec.model_dump())
    assert to_policy(spec) == to_policy(spec)
    assert spec.model_dump() == before
