"""The ScalingPolicy models reject what the API server rejects, and say where and how to fix it.

Every message goes through `describe_errors`, the function the CLI prints, so these tests pin what
a user sees: the manifest path of the field (spec.workloads[0].minReplicas) and the fix.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from peakpilot import api

DELETE = object()  # marks a key to remove in an edit


def workload(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 2,
        "maxReplicas": 50,
        "load": {"query": f'sum(rate(http_requests_total{{app="{name}"}}[1m]))'},
        "capacityPerReplica": 40.0,
        **fields,
    }


def event(name: str = "singles-day", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "start": "2026-11-11T00:00:00+08:00",
        "end": "2026-11-11T02:00:00+08:00",
        "loadMultiplier": 6.0,
        **fields,
    }


def valid_policy() -> dict[str, Any]:
    """A small valid manifest the table below breaks one field at a time."""
    return {
        "apiVersion": "peakpilot.io/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {
            "workloads": [workload("checkout"), workload("search")],
            "events": [event()],
        },
    }


# Every field of every spec and status model, with non-default values where a default exists,
# so a round trip that drops or renames any field shows up. The second variant holds what the
# first cannot (basicAuth excludes bearerTokenSecret).
FULL: dict[str, Any] = {
    "apiVersion": "peakpilot.io/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "shop-peak", "namespace": "shop"},
    "spec": {
        "mode": "Preview",
        "interval": "30s",
        "prometheus": {
            "url": "https://prometheus.monitoring:9090",
            "timeout": "3s",
            "auth": {
                "bearerTokenSecret": {"name": "prom-token", "key": "token"},
                "caSecret": {"name": "prom-ca", "key": "ca.crt"},
                "insecureSkipVerify": True,
            },
            "workloadsQuery": {
                "query": 'sum by (app) (rate(http_requests_total{namespace="shop"}[1m]))',
                "label": "app",
            },
        },
        "budget": {"maxCostPerHour": 40.0, "maxCpu": "200", "maxMemory": "400Gi"},
        "workloads": [
            {
                "name": "checkout",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
                "minReplicas": 2,
                "maxReplicas": 300,
                "load": {"query": 'sum(rate(http_requests_total{app="checkout"}[1m]))'},
                "capacityPerReplica": 40.0,
                "slo": {"targetUtilization": 0.75},
                "priority": 10.0,
                "cost": {"perReplicaHour": 0.12},
                "resources": {"cpu": "500m", "memory": "1Gi"},
                "startup": "45s",
            },
            {
                "name": "search",
                "targetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "s"},
                "minReplicas": 0,
                "maxReplicas": 40,
                "load": {"query": "sum(rate(search_requests_total[1m]))"},
                "capacityPerReplica": 25.5,
                "slo": {"latencyMs": 250.0, "serviceTimeMs": 25.0},
                "priority": 0.5,
                "valuePerRequest": 0.0001,
                "cost": {"perReplicaHour": 0.3},
                "resources": {"cpu": 2, "memory": "512Mi"},
                "startup": "1m30s",
            },
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "selectPolicy": "Min",
                "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
            },
            "changeCost": "20m",
            "tolerance": 0.05,
        },
        "events": [
            {
                "name": "singles-day",
                "start": "2026-11-11T00:00:00+08:00",
                "end": "2026-11-11T02:00:00+08:00",
                "loadMultiplier": 6.0,
                "minReplicas": {"checkout": 80},
                "workloads": ["checkout"],
                "leadTime": "10m",
            },
            {
                "name": "black-friday",
                "start": "2026-11-27T08:00:00",
                "end": "2026-11-27T12:00:00",
                "timeZone": "America/New_York",
                "minReplicas": {"checkout": 40, "search": 10},
                "leadTime": "15m",
            },
        ],
        "forecast": {"method": "seasonal", "history": "14d", "horizon": "30m", "quantile": 0.95},
        "onMetricFailure": {"action": "Static", "ttl": "5m", "replicas": 12},
    },
    "status": {
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Planned",
                "message": "all workloads planned",
                "lastTransitionTime": "2026-11-11T00:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "summary": {
            "workloads": 1,
            "desiredReplicas": 80,
            "currentReplicas": 10,
            "costPerHour": 9.6,
            "budgetPerHour": 40.0,
            "binding": "cost",
            "fallback": True,
            "paused": False,
        },
        "lastPlan": {
            "at": "2026-11-11T00:00:00Z",
            "metricsOk": True,
            "workloads": [
                {
                    "name": "checkout",
                    "current": 10,
                    "desired": 80,
                    "load": 1800.0,
                    "demand": 2400.0,
                    "source": "observed",
                    "needed": 40,
                    "utilization": 0.75,
                    "costPerHour": 9.6,
                    "outsideSlo": 0.0,
                    "reason": "event floor",
                    "limitedBy": "floor",
                    "events": ["singles-day"],
                    "note": "",
                    "forecast": {
                        "method": "reactive",
                        "reason": "the gate is shut",
                        "basis": "band",
                    },
                    "surge": "load 120 rps above ready capacity 80 rps",
                }
            ],
            "totals": {
                "costPerHour": 9.6,
                "currentCostPerHour": 1.2,
                "objective": 12.5,
                "outsideSlo": 0.0,
                "workloads": 1,
                "changed": 1,
                "desiredReplicas": 80,
                "currentReplicas": 10,
            },
            "omittedWorkloads": 0,
            "binding": [
                {
                    "constraint": "cost",
                    "limit": 40.0,
                    "used": 39.5,
                    "needed": 45.0,
                    "soft": True,
                    "squeezed": {"checkout": 3},
                    "relax": {
                        "by": 5.0,
                        "newLimit": 45.0,
                        "gainPerHour": 3.25,
                        "costChangePerHour": 4.8,
                        "outsideSloChange": -120.0,
                        "replicas": {"checkout": 4},
                    },
                }
            ],
            "solver": {
                "name": "highs",
                "status": "optimal",
                "seconds": 0.02,
                "gap": 0.0,
                "usedGreedy": True,
                "fallbackReason": "deadline",
            },
            "notes": ["forecast skipped: not enough history"],
            "leftOut": [{"name": "search", "reason": "target unreadable (HTTP 500)"}],
        },
    },
}


def full_basic_auth() -> dict[str, Any]:
    doc = copy.deepcopy(FULL)
    doc["spec"]["prometheus"]["auth"] = {
        "basicAuth": {
            "username": {"name": "prom", "key": "user"},
            "password": {"name": "prom", "key": "password"},
        },
        "insecureSkipVerify": False,
    }
    return doc


# ---------------------------------------------------------------------------------------------
# helpers


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parts(path: str) -> list[int | str]:
    return [int(index) if index else key for key, index in _TOKEN.findall(path)]


def edit(doc: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of doc with each dotted path set (creating objects on the way) or DELETEd."""
    doc = copy.deepcopy(doc)
    for path, value in changes.items():
        parts = _parts(path)
        node: Any = doc
        for part in parts[:-1]:
            if isinstance(part, str) and part not in node:
                node[part] = {}
            node = node[part]
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return doc


def error_lines(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        api.ScalingPolicy.model_validate(doc)
    return api.describe_errors(info.value)


def line_for(lines: list[str], path: str) -> str:
    found = [line for line in lines if line.startswith(f"{path}: ")]
    assert found, f"no error names {path}; got {lines}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# valid manifests


def test_full_example_parses_with_camel_case_aliases() -> None:
    policy = api.ScalingPolicy.model_validate(FULL)
    spec = policy.spec
    assert spec.mode == "Preview"
    assert spec.interval_seconds() == 30.0
    assert spec.prometheus is not None and spec.prometheus.auth is not None
    assert spec.prometheus.auth.bearer_token_secret == api.SecretKeyRef(
        name="prom-token", key="token"
    )
    assert spec.prometheus.auth.insecure_skip_verify is True
    assert spec.budget == api.Budget(max_cost_per_hour=40.0, max_cpu="200", max_memory="400Gi")
    checkout, search = spec.workloads
    assert (checkout.min_replicas, checkout.max_replicas) == (2, 300)
    assert checkout.target_ref.api_version == "apps/v1"
    assert checkout.slo == api.SLOSpec(target_utilization=0.75)
    assert search.slo == api.SLOSpec(latency_ms=250.0, service_time_ms=25.0)
    assert search.resources == api.ResourceSpec(cpu=2, memory="512Mi")
    assert spec.behavior is not None and spec.behavior.scale_down is not None
    assert spec.behavior.scale_down.select_policy == "Min"
    assert spec.behavior.change_cost == "20m"
    assert spec.events is not None
    assert spec.events[0].min_replicas == {"checkout": 80}
    assert spec.events[1].time_zone == "America/New_York"
    assert spec.forecast == api.ForecastSpec(
        method="seasonal", history="14d", horizon="30m", quantile=0.95
    )
    assert spec.on_metric_failure == api.OnMetricFailure(action="Static", ttl="5m", replicas=12)
    assert policy.status is not None and policy.status.last_plan is not None
    relax = policy.status.last_plan.binding[0].relax
    assert relax is not None and relax.replicas == {"checkout": 4}


@pytest.mark.parametrize("doc", [FULL, full_basic_auth()], ids=["bearer", "basic-auth"])
def test_full_example_round_trips(doc: dict[str, Any]) -> None:
    policy = api.ScalingPolicy.model_validate(doc)
    dumped = policy.model_dump(by_alias=True, exclude_none=True)
    # Every field is set explicitly, so the dump is the manifest itself: nothing renamed or lost.
    assert dumped == doc
    assert api.ScalingPolicy.model_validate(dumped) == policy


def test_minimal_example_round_trips_with_defaults() -> None:
    policy = api.ScalingPolicy.model_validate(valid_policy())
    dumped = policy.model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["mode"] == "Enforce"
    assert dumped["spec"]["workloads"][0]["slo"] == {"targetUtilization": 0.8}
    assert dumped["spec"]["events"][0]["leadTime"] == "5m"
    assert api.ScalingPolicy.model_validate(dumped) == policy


def _walk(model: type[BaseModel], value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(model name, field alias, path) of every API field set in `value`, recursively."""
    for name, info in model.model_fields.items():
        if name == "metadata":
            continue  # ObjectMeta is Kubernetes', not ours
        alias = info.alias or name
        if alias not in value:
            continue
        yield model.__name__, alias, f"{path}.{alias}"
        inner = api._unwrap(info.annotation)
        if typing.get_origin(inner) is list:
            inner = api._unwrap(typing.get_args(inner)[0])
            items = {f"{path}.{alias}[{i}]": item for i, item in enumerate(value[alias])}
        else:
            items = {f"{path}.{alias}": value[alias]}
        if isinstance(inner, type) and issubclass(inner, api.ApiModel):
            for item_path, item in items.items():
                yield from _walk(inner, item, item_path)


def test_full_example_sets_every_field_of_every_model() -> None:
    seen = {
        (model, alias)
        for doc in (FULL, full_basic_auth())
        for model, alias, _ in _walk(api.ScalingPolicy, doc, "")
    }
    expected = {
        (cls.__name__, info.alias or name)
        for cls in api._api_models().values()
        if cls not in (api.ApiModel, api.SpecModel)
        for name, info in cls.model_fields.items()
        if name != "metadata"
    }
    assert expected - seen == set(), "add these fields to FULL"


def test_the_shipped_example_is_valid() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = yaml.safe_load((root / "examples/shop-promotion.yaml").read_text(encoding="utf-8"))
    assert api.ScalingPolicy.model_validate(doc).spec.workloads


def test_unquoted_yaml_timestamps_are_read_as_their_text() -> None:
    # kubectl sends `start: 2026-11-11T00:00:00+08:00` as text; PyYAML makes it a datetime.
    text = yaml.safe_dump(valid_policy()).replace("'2026-11-11T00:00:00+08:00'", "x")
    text = text.replace("x", "2026-11-11T00:00:00+08:00", 1)
    doc = yaml.safe_load(text)
    assert isinstance(doc["spec"]["events"][0]["start"], datetime)
    spec = api.ScalingPolicy.model_validate(doc).spec
    assert spec.events is not None
    assert spec.events[0].start == "2026-11-11T00:00:00+08:00"


def test_unquoted_yaml_date_gets_the_timestamp_hint() -> None:
    doc = edit(valid_policy(), {"spec.events[0].start": date(2026, 11, 11)})
    assert "is not a timestamp" in line_for(error_lines(doc), "spec.events[0].start")


def test_kopf_style_read_only_mappings_are_accepted() -> None:
    # Strict models take dicts only; kopf hands the handler Mapping views of the body.
    spec = valid_policy()["spec"]
    view = MappingProxyType({**spec, "workloads": [MappingProxyType(w) for w in spec["workloads"]]})
    assert api.ScalingPolicySpec.model_validate(view).workloads[1].name == "search"


def test_python_code_may_use_snake_case_but_manifests_may_not() -> None:
    made = api.WorkloadSpec(
        name="a",
        target_ref=api.TargetRef(kind="Deployment", name="a"),
        max_replicas=3,
        load=api.LoadSpec(query="x"),
        capacity_per_replica=1.0,
    )
    assert made.min_replicas == 1
    lines = error_lines(edit(valid_policy(), {"spec.workloads[0].min_replicas": 3}))
    assert "did you mean minReplicas?" in line_for(lines, "spec.workloads[0].min_replicas")


def test_event_window_is_timezone_aware() -> None:
    spec = api.ScalingPolicy.model_validate(FULL).spec
    assert spec.events is not None
    start, end = spec.events[0].window()
    assert start == datetime(2026, 11, 10, 16, tzinfo=UTC)
    assert end - start == timedelta(hours=2)
    local_start, _ = spec.events[1].window()
    assert local_start.utcoffset() == timedelta(hours=-5)  # New York in November (EST)
    assert local_start.astimezone(UTC).hour == 13


# ---------------------------------------------------------------------------------------------
# invalid manifests: one broken thing each, the line that names it, and what it must say

INVALID = [
    pytest.param(
        {"spec.workloads[0].minReplicas": 60, "spec.workloads[0].maxReplicas": 10},
        "spec.workloads[0].minReplicas",
        ["minReplicas must be <= maxReplicas", "lower minReplicas or raise maxReplicas"],
        id="min-above-max",
    ),
    pytest.param(
        {"spec.workloads[1].name": "checkout"},
        "spec.workloads",
        ["names must be unique", "rename the duplicate"],
        id="duplicate-workload",
    ),
    pytest.param(
        {"spec.events": [event(), event(loadMultiplier=2.0)]},
        "spec.events",
        ["names must be unique", "rename the duplicate"],
        id="duplicate-event",
    ),
    pytest.param(
        {"spec.events[0].end": "2026-11-10T23:00:00+08:00"},
        "spec.events[0].end",
        ["end must be after start", "move end later or start earlier"],
        id="event-end-before-start",
    ),
    pytest.param(
        {"spec.events[0].end": "2026-11-11T00:00:00+08:00"},
        "spec.events[0].end",
        ["end must be after start"],
        id="event-end-equals-start",
    ),
    pytest.param(
        # Text order says later, instant order says earlier: 2026-11-10T17:00Z is 01:00 +08:00.
        {"spec.events[0].end": "2026-11-10T15:00:00Z"},
        "spec.events[0].end",
        ["end must be after start"],
        id="event-end-before-start-other-offset",
    ),
    pytest.param(
        {
            "spec.events[0].start": "2026-11-11T10:00:00",
            "spec.events[0].end": "2026-11-11T09:00:00",
            "spec.events[0].timeZone": "Asia/Shanghai",
        },
        "spec.events[0].end",
        ["end must be after start"],
        id="event-local-end-before-start",
    ),
    pytest.param(
        {
            "spec.events[0].start": "2026-11-11T00:00:00",
            "spec.events[0].end": "2026-11-11T02:00:00",
        },
        "spec.events[0].start",
        ["need a UTC offset (e.g. +08:00), or no offset and a timeZone"],
        id="event-no-offset-no-timezone",
    ),
    pytest.param(
        {"spec.events[0].timeZone": "Asia/Shanghai"},
        "spec.events[0].start",
        ["need a UTC offset (e.g. +08:00), or no offset and a timeZone"],
        id="event-offset-and-timezone",
    ),
    pytest.param(
        {"spec.events[0].end": "2026-11-11T02:00:00"},
        "spec.events[0].start",
        ["need a UTC offset"],
        id="event-mixed-offsets",
    ),
    pytest.param(
        {
            "spec.events[0].start": "2026-11-11T00:00:00",
            "spec.events[0].end": "2026-11-11T02:00:00",
            "spec.events[0].timeZone": "Mars/Olympus_Mons",
        },
        "spec.events[0].timeZone",
        ["not a known IANA time zone", "Asia/Shanghai"],
        id="bad-timezone",
    ),
    pytest.param(
        {
            "spec.events[0].start": "2026-11-11T00:00:00",
            "spec.events[0].end": "2026-11-11T02:00:00",
            "spec.events[0].timeZone": "America",
        },
        "spec.events[0].timeZone",
        ["not a known IANA time zone"],
        id="timezone-is-a-tz-directory",
    ),
    pytest.param(
        {"spec.events[0].timeZone": ""},
        "spec.events[0].timeZone",
        ["at least 1 character"],
        id="empty-timezone",
    ),
    pytest.param(
        {"spec.events[0].start": "2026-02-30T00:00:00+08:00"},
        "spec.events[0].start",
        ["real dates and times", "fix the date"],
        id="event-february-30",
    ),
    pytest.param(
        {"spec.events[0].start": "2026-13-01T00:00:00+08:00"},
        "spec.events[0].start",
        ["not a timestamp", "2026-11-11T00:00:00+08:00"],
        id="event-month-13",
    ),
    pytest.param(
        {"spec.events[0].start": "2026-11-11 00:00:00+08:00"},
        "spec.events[0].start",
        ["not a timestamp"],
        id="event-space-not-T",
    ),
    pytest.param(
        {"spec.events[0].loadMultiplier": DELETE},
        "spec.events[0]",
        ["needs loadMultiplier or minReplicas", "set one"],
        id="event-changes-nothing",
    ),
    pytest.param(
        {"spec.events[0].minReplicas": {}},
        "spec.events[0].minReplicas",
        ["at least 1 item"],
        id="event-empty-min-replicas",
    ),
    pytest.param(
        {"spec.events[0].minReplicas": {"cart": 5}},
        "spec.events",
        ["minReplicas names a workload that is not in workloads", "use a workload's name"],
        id="event-min-replicas-unknown-workload",
    ),
    pytest.param(
        {"spec.events[0].workloads": ["checkout", "cart"]},
        "spec.events",
        ["workloads names a workload that is not in workloads", "use a workload's name"],
        id="event-workloads-unknown-workload",
    ),
    pytest.param(
        {"spec.events[0].workloads": ["checkout", "checkout"]},
        "spec.events[0].workloads",
        ["each workload is named once", "remove the duplicate"],
        id="event-workloads-duplicate",
    ),
    pytest.param(
        {"spec.events[0].minReplicas": {"checkout": -1}},
        "spec.events[0].minReplicas.checkout",
        ["greater than or equal to 0"],
        id="event-negative-floor",
    ),
    pytest.param(
        {"spec.events[0].workloads": ["c" * 64]},
        "spec.events[0].workloads[0]",
        ["at most 63 characters"],
        id="event-workload-name-too-long",
    ),
    pytest.param(
        {
            "spec.workloads[0].slo": {
                "targetUtilization": 0.8,
                "latencyMs": 250.0,
                "serviceTimeMs": 25.0,
            }
        },
        "spec.workloads[0].slo",
        ["set either targetUtilization or latencyMs (with serviceTimeMs), exactly one"],
        id="slo-both",
    ),
    pytest.param(
        {"spec.workloads[0].slo": {}},
        "spec.workloads[0].slo",
        ["exactly one"],
        id="slo-neither",
    ),
    pytest.param(
        {"spec.workloads[0].slo": {"latencyMs": 250.0}},
        "spec.workloads[0].slo.serviceTimeMs",
        ["serviceTimeMs is required with latencyMs", "set the mean time one request takes"],
        id="latency-without-service-time",
    ),
    pytest.param(
        {"spec.workloads[0].slo": {"latencyMs": 25.0, "serviceTimeMs": 25.0}},
        "spec.workloads[0].slo.serviceTimeMs",
        ["must be below latencyMs", "lower serviceTimeMs or raise latencyMs"],
        id="service-time-equals-latency",
    ),
    pytest.param(
        {"spec.workloads[0].slo": {"latencyMs": 25.0, "serviceTimeMs": 40.0}},
        "spec.workloads[0].slo.serviceTimeMs",
        ["must be below latencyMs"],
        id="service-time-above-latency",
    ),
    pytest.param(
        {"spec.workloads[0].slo": {"targetUtilization": 1.5}},
        "spec.workloads[0].slo.targetUtilization",
        ["less than or equal to 1"],
        id="utilization-above-one",
    ),
    pytest.param(
        {"spec.onMetricFailure": {"action": "Static"}},
        "spec.onMetricFailure.replicas",
        ["required with action Static", "set replicas, or use HoldLastKnown or Current"],
        id="static-without-replicas",
    ),
    pytest.param(
        {
            "spec.prometheus": {
                "url": "http://prometheus:9090",
                "auth": {
                    "bearerTokenSecret": {"name": "t", "key": "k"},
                    "basicAuth": {
                        "username": {"name": "u", "key": "k"},
                        "password": {"name": "p", "key": "k"},
                    },
                },
            }
        },
        "spec.prometheus.auth",
        ["set bearerTokenSecret or basicAuth, not both"],
        id="auth-both",
    ),
    pytest.param(
        {"spec.prometheus": {"url": "prometheus:9090"}},
        "spec.prometheus.url",
        ["not an http(s) URL", "http://prometheus.monitoring:9090"],
        id="url-without-scheme",
    ),
    pytest.param(
        {"spec.interval": "15 s"},
        "spec.interval",
        ["'15 s' is not a duration", "use a number with a unit", "15s"],
        id="duration-with-space",
    ),
    pytest.param(
        {"spec.workloads[0].startup": "abc"},
        "spec.workloads[0].startup",
        ["'abc' is not a duration", "1h30m"],
        id="duration-abc",
    ),
    pytest.param(
        {"spec.workloads[0].startup": 60},
        "spec.workloads[0].startup",
        ["valid string"],
        id="duration-as-number",
    ),
    pytest.param(
        {"spec.budget.maxCpu": "5x"},
        "spec.budget.maxCpu",
        ["'5x' is not a Kubernetes quantity", '"500m"', '"512Mi"'],
        id="quantity-5x",
    ),
    pytest.param(
        {"spec.budget.maxMemory": " 4Gi"},
        "spec.budget.maxMemory",
        ["not a Kubernetes quantity"],
        id="quantity-with-space",
    ),
    pytest.param(
        {"spec.workloads[0].resources": {"cpu": "-1"}},
        "spec.workloads[0].resources.cpu",
        ["not a Kubernetes quantity", "not negative"],
        id="quantity-negative-text",
    ),
    pytest.param(
        {"spec.workloads[0].resources": {"memory": -5}},
        "spec.workloads[0].resources.memory",
        ["is negative", "not negative"],
        id="quantity-negative-int",
    ),
    pytest.param(
        {"spec.workloads[0].resources": {"cpu": 1.5}},
        "spec.workloads[0].resources.cpu",
        ["1.5 is not a Kubernetes quantity", '"1.5"'],
        id="quantity-fractional-number",
    ),
    pytest.param(
        {"spec.workloads[0].resources": {"cpu": True}},
        "spec.workloads[0].resources.cpu",
        ["not a Kubernetes quantity"],
        id="quantity-bool",
    ),
    pytest.param(
        {"spec.workloads[0].maxReplica": 10, "spec.workloads[0].maxReplicas": DELETE},
        "spec.workloads[0].maxReplica",
        ["unknown field: did you mean maxReplicas?"],
        id="typo-maxReplica",
    ),
    pytest.param(
        {"spec.workloads[0].maxReplica": 10, "spec.workloads[0].maxReplicas": DELETE},
        "spec.workloads[0].maxReplicas",
        ["required field is missing: add it"],
        id="typo-leaves-maxReplicas-missing",
    ),
    pytest.param(
        {"spec.budget": {"maxCPU": "10"}},
        "spec.budget.maxCPU",
        ["did you mean maxCpu?", "camelCase"],
        id="typo-maxCPU",
    ),
    pytest.param(
        {"spec.colour": "blue"},
        "spec.colour",
        ["unknown field: remove it or check its spelling"],
        id="unknown-field-no-suggestion",
    ),
    pytest.param(
        {"spec.workloads[0].load": DELETE},
        "spec.workloads",
        ["load is required unless spec.prometheus.workloadsQuery reads every load"],
        id="missing-load",
    ),
    pytest.param(
        {"spec.prometheus.workloadsQuery": {"query": "sum by (app) (x)", "label": "1app"}},
        "spec.prometheus.workloadsQuery.label",
        ["'1app' is not a Prometheus label name"],
        id="workloads-query-label",
    ),
    pytest.param(
        {"spec.workloads": []},
        "spec.workloads",
        ["at least 1 item"],
        id="no-workloads",
    ),
    pytest.param(
        {"spec.workloads": [workload(f"w{i}") for i in range(1001)]},
        "spec.workloads",
        ["at most 1000 items"],
        id="too-many-workloads",
    ),
    pytest.param(
        {"spec.workloads[0].capacityPerReplica": 0.0},
        "spec.workloads[0].capacityPerReplica",
        ["greater than or equal to 0.000001"],
        id="capacity-zero",
    ),
    pytest.param(
        {"spec.workloads[0].capacityPerReplica": -40.0},
        "spec.workloads[0].capacityPerReplica",
        ["greater than or equal to 0.000001"],
        id="capacity-negative",
    ),
    pytest.param(
        {"spec.workloads[0].maxReplicas": 0},
        "spec.workloads[0].maxReplicas",
        ["greater than or equal to 1"],
        id="max-replicas-zero",
    ),
    pytest.param(
        {"spec.workloads[0].name": "Checkout"},
        "spec.workloads[0].name",
        ["'Checkout' is not a DNS label", "lowercase"],
        id="name-not-dns-label",
    ),
    pytest.param(
        {"spec.workloads[0].targetRef.kind": ""},
        "spec.workloads[0].targetRef.kind",
        ["at least 1 character"],
        id="empty-target-kind",
    ),
    pytest.param(
        {"spec.mode": "Auto"},
        "spec.mode",
        ["'Enforce', 'Preview' or 'Off'"],
        id="bad-mode",
    ),
    pytest.param(
        # Unquoted `Off` is YAML 1.1 for false, in PyYAML and in kubectl alike.
        {"spec.mode": False},
        "spec.mode",
        ["'Enforce', 'Preview' or 'Off'"],
        id="mode-off-unquoted",
    ),
    pytest.param(
        {"spec.workloads[0].maxReplicas": "ten"},
        "spec.workloads[0].maxReplicas",
        ["valid integer"],
        id="wrong-type-word",
    ),
    pytest.param(
        # The API server rejects "10" for an integer field, so the CLI does too.
        {"spec.workloads[0].maxReplicas": "10"},
        "spec.workloads[0].maxReplicas",
        ["valid integer"],
        id="wrong-type-numeric-string",
    ),
    pytest.param(
        {"spec.workloads[0].capacityPerReplica": "40"},
        "spec.workloads[0].capacityPerReplica",
        ["valid number"],
        id="wrong-type-number-as-string",
    ),
    pytest.param(
        {"spec.prometheus": {"url": "http://p:9090", "auth": {"insecureSkipVerify": "yes"}}},
        "spec.prometheus.auth.insecureSkipVerify",
        ["valid boolean"],
        id="wrong-type-bool",
    ),
    pytest.param(
        {"spec.workloads[0]": "checkout"},
        "spec.workloads[0]",
        ["valid dictionary"],
        id="wrong-type-object",
    ),
    pytest.param(
        {"spec.behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 4}]}}},
        "spec.behavior.scaleUp.policies[0].periodSeconds",
        ["required field is missing"],
        id="behavior-policy-missing-period",
    ),
    pytest.param(
        {"spec.behavior": {"scaleDown": {"selectPolicy": "Average"}}},
        "spec.behavior.scaleDown.selectPolicy",
        ["'Max', 'Min' or 'Disabled'"],
        id="behavior-bad-select-policy",
    ),
    pytest.param(
        {"spec.forecast": {"quantile": 1.0}},
        "spec.forecast.quantile",
        ["less than 1"],
        id="forecast-quantile-one",
    ),
    pytest.param(
        {"spec.interval": "1h0.5s"},
        "spec.interval",
        ["interval must be between 1s and 1h", "set 1s to 1h"],
        id="interval-above-1h",
    ),
    pytest.param(
        {"spec.interval": "2d"},
        "spec.interval",
        ["interval must be between 1s and 1h"],
        id="interval-in-days",
    ),
    pytest.param(
        {"spec.interval": "999ms"},
        "spec.interval",
        ["interval must be between 1s and 1h"],
        id="interval-below-1s",
    ),
    pytest.param(
        {"spec.forecast": {"history": "99999999999999d"}},
        "spec.forecast.history",
        ["too long", "at most 1e+09s"],
        id="duration-too-long",
    ),
    pytest.param(
        {
            "spec.workloads[0].capacityPerReplica": 1e9,
            "spec.workloads[0].slo": {"latencyMs": 250, "serviceTimeMs": 100},
        },
        "spec.workloads[0].slo.serviceTimeMs",
        ["parallel workers", "at most 10,000"],
        id="latency-slo-workers",
    ),
    pytest.param(
        {"spec.workloads[0].capacityPerReplica": 1e308},
        "spec.workloads[0].capacityPerReplica",
        ["less than or equal to 1000000000"],
        id="capacity-1e308",
    ),
    pytest.param(
        {"spec.workloads[0].cost": {"perReplicaHour": 1e308}},
        "spec.workloads[0].cost.perReplicaHour",
        ["less than or equal to 1000000"],
        id="price-1e308",
    ),
    pytest.param(
        {"spec.budget": {"maxCpu": "1e400"}},
        "spec.budget.maxCpu",
        ["out of range", "8Ei"],
        id="quantity-1e400",
    ),
    pytest.param(
        {
            "spec.events[0].start": "0001-01-01T00:30:00+01:00",
            "spec.events[0].end": "0001-01-02T00:00:00+01:00",
        },
        "spec.events[0].start",
        ["within years 0001-9999 in UTC"],
        id="event-before-year-1-in-utc",
    ),
]


@pytest.mark.parametrize(("changes", "path", "fragments"), INVALID)
def test_invalid_spec_names_the_field_and_the_fix(
    changes: dict[str, Any], path: str, fragments: list[str]
) -> None:
    line = line_for(error_lines(edit(valid_policy(), changes)), path)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} missing from {line!r}"


def test_every_rule_has_an_invalid_case_above() -> None:
    lines = {
        line
        for case in INVALID
        for line in error_lines(edit(valid_policy(), case.values[0]))  # type: ignore[arg-type]
    }
    for cls in api._api_models().values():
        for rule in cls.__rules__:
            assert any(rule.message in line for line in lines), (
                f"{cls.__name__}: no case above trips {rule.message!r}"
            )


# ---------------------------------------------------------------------------------------------
# every field constraint, generated from the models: break it in FULL, expect its path named


def _constraints(info: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for item in info.metadata:
        for kind in ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern"):
            value = getattr(item, kind, None)
            if value is not None:
                out.append((kind, value))
    return out


def _breaking_value(kind: str, bound: Any, current: Any) -> Any:
    if kind in ("gt", "lt"):
        return type(current)(bound)
    if kind == "ge":
        return type(current)(bound - 1)
    if kind == "le":
        return type(current)(bound + 1)
    if kind == "pattern":
        return "!"
    if isinstance(current, str):
        return "" if kind == "min_length" else "a" * (bound + 1)
    if isinstance(current, list):
        return [] if kind == "min_length" else current * (bound // len(current) + 1)
    if isinstance(current, dict):
        return {} if kind == "min_length" else {f"k{i}": 1 for i in range(bound + 1)}
    raise AssertionError(f"no way to break {kind}={bound} for {current!r}")


def _constraint_cases() -> Iterator[Any]:
    """One case per (model, field, constraint), at the first place FULL sets that field."""
    seen: set[tuple[str, str, str]] = set()
    for model_name, alias, path in _walk(api.ScalingPolicy, FULL, ""):
        model = api._api_models()[model_name]
        info = next(i for n, i in model.model_fields.items() if (i.alias or n) == alias)
        current = _get(FULL, path)
        for kind, bound in _constraints(info):
            if (model_name, alias, kind) in seen:
                continue
            seen.add((model_name, alias, kind))
            yield pytest.param(
                path.lstrip("."),
                _breaking_value(kind, bound, current),
                kind,
                id=f"{model_name}.{alias}-{kind}",
            )


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _parts(path):
        node = node[part]
    return node


CONSTRAINT_CASES = list(_constraint_cases())


def test_constraint_cases_cover_every_constrained_spec_field() -> None:
    covered = {re.sub(r"\[\d+\]", "", str(case.values[0])) for case in CONSTRAINT_CASES}
    # Fields whose constraints sit on list items or map values are in the INVALID table instead.
    assert {"spec.workloads.maxReplicas", "spec.events.start", "spec.interval"} <= covered
    assert len(CONSTRAINT_CASES) >= 60


@pytest.mark.parametrize(("path", "value", "kind"), CONSTRAINT_CASES)
def test_every_field_constraint_rejects_and_names_the_field(
    path: str, value: Any, kind: str
) -> None:
    line = line_for(error_lines(edit(FULL, {path: value})), path)
    # A regex is no instruction: every pattern of the API has a hint that says what to write.
    assert "should match pattern" not in line, f"add a PATTERN_HINTS entry for {path}"


# ---------------------------------------------------------------------------------------------
# describe_errors and field_path


def test_field_path_keeps_fields_that_look_like_branch_names() -> None:
    # "interval" starts with "int", "strategy" with "str": fields, not pydantic union branches.
    assert api.field_path(("spec", "interval")) == "spec.interval"
    assert api.field_path(("spec", "strategy")) == "spec.strategy"
    assert api.field_path(("spec", "budget", "maxCpu", "function-plain[x()]")) == (
        "spec.budget.maxCpu"
    )
    assert api.field_path(("spec", "x", "union[int,str]", "int")) == "spec.x"
    assert api.field_path(("workloads", 0, "name")) == "workloads[0].name"
    assert api.field_path(()) == "(top level)"


def test_describe_errors_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        api.ScalingPolicySpec.model_validate({"workloads": [], "interval": "x"})
    lines = api.describe_errors(info.value, prefix="spec")
    assert line_for(lines, "spec.workloads").endswith(
        "List should have at least 1 item after validation, not 0"
    )
    assert "is not a duration" in line_for(lines, "spec.interval")


def test_describe_errors_of_other_models_do_not_guess_fields() -> None:
    class Other(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int = 0

    with pytest.raises(ValidationError) as info:
        Other.model_validate({"sise": 1})
    assert api.describe_errors(info.value) == [
        "sise: unknown field: remove it or check its spelling (fields are camelCase)"
    ]


def test_pattern_hints_cover_every_pattern_of_the_api() -> None:
    patterns = {
        item.pattern
        for cls in api._api_models().values()
        for info in cls.model_fields.values()
        for item in info.metadata
        if getattr(item, "pattern", None)
    }
    assert patterns == set(api.PATTERN_HINTS)
