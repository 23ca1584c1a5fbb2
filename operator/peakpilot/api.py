"""The ScalingPolicy API (peakpilot.io/v1alpha1): the source of truth for the CRD and the CLI.

camelCase on the wire, snake_case in Python. Cross-field rules are declared once per model in
`__rules__`: each carries the CEL expression the API server enforces (emitted into the CRD) and the
Python predicate pydantic enforces, with one message that names the field and the fix.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from peakpilot.units import DURATION_PATTERN, QUANTITY_PATTERN, parse_duration, parse_quantity

GROUP = "peakpilot.io"
VERSION = "v1alpha1"
KIND = "ScalingPolicy"
PLURAL = "scalingpolicies"
SINGULAR = "scalingpolicy"
SHORT_NAMES = ["sp"]

# A policy of 1000 workloads: the CRD's CEL cost stays within the API server's limits at that
# size (tests/unit/test_crd.py).
MAX_WORKLOADS = 1000
MAX_EVENTS = 32
MAX_EVENT_TARGETS = 16
MAX_INTERVAL_SECONDS = 3600  # spec.interval: a reconcile at least hourly (docs/operations.md)
MIN_INTERVAL_SECONDS = 1  # and at most every second (a replay step is never shorter either)
# Bounds on numbers, so that no admitted spec overflows the objective (price x replicas, load
# over capacity) or makes the queueing model's cost unbounded (docs/cli.md, "Input limits").
MAX_REPLICAS = 100_000
MAX_CAPACITY = 1e9  # requests/s per replica
MIN_CAPACITY = 1e-6
MAX_PRICE = 1e6  # per replica-hour
# priority is a weight; a bounded ratio between the highest and the lowest keeps the integer
# program's coefficients within what a MILP solver handles exactly.
MIN_PRIORITY, MAX_PRIORITY = 1e-3, 1e3
MAX_VALUE_PER_REQUEST = 1e3  # money per request
MAX_COST_PER_HOUR = 1e12
MAX_LATENCY_MS = 3_600_000.0  # an hour
MAX_WORKERS = 10_000  # parallel workers one replica runs: capacityPerReplica x serviceTimeMs / 1000
MAX_QUANTITY = 2.0**63  # about 9.2e18: the largest integer a Kubernetes quantity holds

OFFSET_PATTERN = r"(Z|[+-][0-9]{2}:[0-9]{2})$"
# Field ranges in the pattern so the API server rejects month 13 or hour 25 itself.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
URL_PATTERN = r"^https?://.+"
# QUANTITY_PATTERN without the minus sign: no budget or request is negative.
NON_NEGATIVE_QUANTITY_PATTERN = QUANTITY_PATTERN.replace(r"^(\+|-)?", r"^\+?", 1)


def _check_duration(value: str) -> str:
    parse_duration(value)  # ValueError past MAX_DURATION (the pattern cannot bound the number)
    return value


Duration = Annotated[
    str, Field(pattern=DURATION_PATTERN, max_length=32), AfterValidator(_check_duration)
]

_QUANTITY_HINT = 'use an integer, or a string such as "500m", "1.5", "512Mi" or "4Gi"; not negative'


def _check_quantity(value: Any) -> int | str:
    """The exact int-or-string the API server accepts, with one message for every mistake."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON 2.0 is an integer to the API server
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a Kubernetes quantity: {_QUANTITY_HINT}")
    if isinstance(value, str) and not re.fullmatch(NON_NEGATIVE_QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity: {_QUANTITY_HINT}")
    amount = parse_quantity(value)
    if amount < 0:
        raise ValueError(f"{value!r} is negative: {_QUANTITY_HINT}")
    if not amount <= MAX_QUANTITY:  # the CRD pattern cannot bound a string's magnitude
        raise ValueError(f"{value!r} is out of range: use at most 8Ei (about 9.2e18)")
    return value


# Same shape as controller-gen's resource.Quantity: int-or-string with the quantity pattern
# (which the API server applies to strings only, and `minimum` to integers only).
Quantity = Annotated[
    int | str,
    PlainValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": NON_NEGATIVE_QUANTITY_PATTERN,
            "minimum": 0,
        }
    ),
]


def _iso_text(value: Any) -> Any:
    """PyYAML reads an unquoted timestamp as a datetime; kubectl sends it as the text."""
    if isinstance(value, date):  # a datetime, or a bare date the pattern then rejects
        return value.isoformat()
    return value


# Field before the validator: the other order drops `pattern` from the JSON schema (pydantic).
Timestamp = Annotated[
    str, Field(pattern=TIMESTAMP_PATTERN, max_length=32), BeforeValidator(_iso_text)
]


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: CEL for the API server, a predicate for pydantic, one message.

    `cel` is None when the schema itself enforces the rule (e.g. list-map keys), or when CEL
    cannot say it (an IANA zone name); the comment at each such rule says what the server does.
    """

    cel: str | None
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None


RULE_ERROR = "rule"  # pydantic error type of a failed Rule; ctx["field_path"] is its fieldPath


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        # Field texts come from Field(description=...) only: reading attribute docstrings makes
        # pydantic parse this module's source, ~90 ms of every `peakpilot` command's start.
    )
    __rules__: ClassVar[tuple[Rule, ...]] = ()

    # Manifests carry wire names only, as the API server sees them: `min_replicas:` in YAML is an
    # unknown field there, so it is one here. Python code keeps snake_case keyword arguments.
    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        kwargs.setdefault("by_name", False)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        kwargs.setdefault("by_name", False)
        return super().model_validate_json(json_data, **kwargs)

    @model_validator(mode="after")
    def _check_rules(self) -> ApiModel:
        for rule in type(self).__rules__:
            if not rule.check(self):
                raise PydanticCustomError(
                    RULE_ERROR, rule.message, {"field_path": rule.field_path or ""}
                )
        return self


class SpecModel(ApiModel):
    """A model users write. Strict like the API server: "10" is no integer, 1 no boolean."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_mapping(cls, data: Any) -> Any:
        # Strict models take dicts only; kopf hands out read-only Mapping views of the body.
        if isinstance(data, Mapping) and not isinstance(data, dict):
            return dict(data)
        return data


# ---------------------------------------------------------------------------------------------
# spec


class SecretKeyRef(SpecModel):
    name: str = Field(
        min_length=1, max_length=253, description="Secret name, in the policy's namespace."
    )
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret.")


class BasicAuth(SpecModel):
    username: SecretKeyRef = Field(description="Secret key holding the user name.")
    password: SecretKeyRef = Field(description="Secret key holding the password.")


class PrometheusAuth(SpecModel):
    bearer_token_secret: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding a bearer token sent as 'Authorization: Bearer'.",
    )
    basic_auth: BasicAuth | None = Field(default=None, description="HTTP basic auth credentials.")
    ca_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a PEM CA bundle to verify the server with."
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Skip TLS verification (testing only)."
    )

    __rules__ = (
        Rule(
            "!(has(self.bearerTokenSecret) && has(self.basicAuth))",
            "auth: set bearerTokenSecret or basicAuth, not both",
            lambda s: s.bearer_token_secret is None or s.basic_auth is None,
        ),
    )


LABEL_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class WorkloadsQuery(SpecModel):
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL instant query returning one series per workload, its label `label` "
        "set to the workload's name, e.g. 'sum by (workload) (rate(http_requests_total"
        '{namespace="shop"}[1m]))\': every load in requests/s from one query per interval (and '
        "the forecast's history from one range query). A workload whose series is missing, "
        "carried twice or not a usable number reads its own load.query instead, or has no load "
        "this interval (held, never scaled down).",
    )
    label: str = Field(
        default="workload",
        min_length=1,
        max_length=128,
        pattern=LABEL_PATTERN,
        description="The label whose value names the workload (spec.workloads[].name).",
    )


class PrometheusSpec(SpecModel):
    url: str = Field(
        pattern=URL_PATTERN,
        max_length=2048,
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.",
    )
    timeout: Duration = Field(default="5s", description="Timeout of each query.")
    auth: PrometheusAuth | None = Field(default=None, description="Credentials read from Secrets.")
    workloads_query: WorkloadsQuery | None = Field(
        default=None,
        description="Optional: one query for the loads of all workloads (a `by (label)` "
        "aggregation), instead of one query per workload; load.query is then the fallback.",
    )


class Budget(SpecModel):
    max_cost_per_hour: float | None = Field(
        default=None,
        ge=0,
        le=MAX_COST_PER_HOUR,
        description="Most the policy's replicas may cost per hour, summed.",
    )
    max_cpu: Quantity | None = Field(
        default=None, description='Most CPU (requests) all replicas may use together, e.g. "200".'
    )
    max_memory: Quantity | None = Field(
        default=None,
        description="Most memory (requests) all replicas may use together, e.g. 400Gi.",
    )


class TargetRef(SpecModel):
    api_version: str = Field(
        default="apps/v1",
        min_length=1,
        max_length=253,
        description="API version of the target, e.g. apps/v1.",
    )
    kind: str = Field(
        min_length=1,
        max_length=63,
        description="Kind of the target: anything with a /scale subresource.",
    )
    name: str = Field(
        min_length=1, max_length=253, description="Name of the target in this namespace."
    )


class LoadSpec(SpecModel):
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL instant query returning one sample: the workload's load in requests/s.",
    )


class SLOSpec(SpecModel):
    target_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Keep load at or below this share of capacity (0 < x <= 1), e.g. 0.8.",
    )
    latency_ms: float | None = Field(
        default=None,
        gt=0,
        le=MAX_LATENCY_MS,
        description="Keep the mean response time (M/M/c model) at or below this.",
    )
    service_time_ms: float | None = Field(
        default=None,
        gt=0,
        le=MAX_LATENCY_MS,
        description="Mean time one worker spends on one request (with latencyMs).",
    )

    __rules__ = (
        Rule(
            "has(self.targetUtilization) != has(self.latencyMs)",
            "slo: set either targetUtilization or latencyMs (with serviceTimeMs), exactly one",
            lambda s: (s.target_utilization is None) != (s.latency_ms is None),
        ),
        Rule(
            "!has(self.latencyMs) || has(self.serviceTimeMs)",
            "slo.serviceTimeMs is required with latencyMs: set the mean time one request takes",
            lambda s: s.latency_ms is None or s.service_time_ms is not None,
            ".serviceTimeMs",
        ),
        Rule(
            "!has(self.latencyMs) || !has(self.serviceTimeMs) || "
            "self.serviceTimeMs < self.latencyMs",
            "slo.serviceTimeMs must be below latencyMs (no queue answers faster than its service "
            "time): lower serviceTimeMs or raise latencyMs",
            lambda s: (
                s.latency_ms is None
                or s.service_time_ms is None
                or s.service_time_ms < s.latency_ms
            ),
            ".serviceTimeMs",
        ),
    )


class CostSpec(SpecModel):
    per_replica_hour: float = Field(
        ge=0, le=MAX_PRICE, description="Price of one replica for one hour."
    )


class ResourceSpec(SpecModel):
    cpu: Quantity | None = Field(default=None, description="CPU request of one replica, e.g. 500m.")
    memory: Quantity | None = Field(
        default=None, description="Memory request of one replica, e.g. 1Gi."
    )


class WorkloadSpec(SpecModel):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=NAME_PATTERN,
        description="Name of the workload in this policy (a DNS label); used in events and status.",
    )
    target_ref: TargetRef = Field(description="The object whose /scale PeakPilot sets.")
    min_replicas: int = Field(default=1, ge=0, description="Fewest replicas, always.")
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS, description="Most replicas, always.")
    load: LoadSpec | None = Field(
        default=None,
        description="Where the workload's load comes from; optional with "
        "spec.prometheus.workloadsQuery (then its fallback).",
    )
    capacity_per_replica: float = Field(
        ge=MIN_CAPACITY,
        le=MAX_CAPACITY,
        description="Requests/s one replica serves at 100 % utilisation (from a load test).",
    )
    slo: SLOSpec = Field(
        default_factory=lambda: SLOSpec(target_utilization=0.8),
        description="The performance target; default targetUtilization 0.8.",
    )
    priority: float = Field(
        default=1.0,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="A weight (no unit, default 1): when a shared budget binds, workloads with a "
        "higher priority keep their SLO first. Without a binding budget every workload gets the "
        "fewest replicas that meet its SLO, whatever its priority.",
    )
    value_per_request: float | None = Field(
        default=None,
        ge=0,
        le=MAX_VALUE_PER_REQUEST,
        description="Opt-in: money one request served inside the SLO is worth (same currency as "
        "cost.perReplicaHour). When set, the workload gets replicas only while the load they "
        "keep inside the SLO is worth more than they cost, even below its SLO and without a "
        "budget. Unset (the default): SLO first.",
    )
    cost: CostSpec | None = Field(default=None, description="Price of a replica (default 0).")
    resources: ResourceSpec | None = Field(
        default=None, description="Per-replica requests, counted against budget.maxCpu/maxMemory."
    )
    startup: Duration = Field(
        default="60s", description="Time from scale-up to a ready replica; used as lead time."
    )

    __rules__ = (
        Rule(
            # The workers of the M/M/c model; the queueing sweep's cost grows with them.
            "!has(self.slo) || !has(self.slo.serviceTimeMs) || "
            f"self.capacityPerReplica * self.slo.serviceTimeMs <= {MAX_WORKERS * 1000}.0",
            f"capacityPerReplica x slo.serviceTimeMs / 1000 (the parallel workers of one "
            f"replica) must be at most {MAX_WORKERS:,}: check both (capacity in requests/s, "
            "service time in ms), or use slo.targetUtilization",
            lambda s: (
                s.slo.service_time_ms is None
                or s.capacity_per_replica * s.slo.service_time_ms <= MAX_WORKERS * 1000
            ),
            ".slo.serviceTimeMs",
        ),
        Rule(
            "self.minReplicas <= self.maxReplicas",
            "minReplicas must be <= maxReplicas: lower minReplicas or raise maxReplicas",
            lambda s: s.min_replicas <= s.max_replicas,
            ".minReplicas",
        ),
    )


class ScalingPolicyRule(SpecModel):
    """One HPA behaviour policy: at most `value` pods or percent change per `periodSeconds`."""

    type: Literal["Pods", "Percent"] = Field(description="Pods or Percent.")
    value: int = Field(gt=0, description="How many pods, or what percent, per period.")
    period_seconds: int = Field(gt=0, le=1800, description="Window the limit applies to (<= 1800).")


class ScalingRules(SpecModel):
    stabilization_window_seconds: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Recommendations in this window are considered (HPA semantics).",
    )
    select_policy: Literal["Max", "Min", "Disabled"] = Field(
        default="Max", description="Which policy wins: Max (most change), Min, or Disabled."
    )
    policies: list[ScalingPolicyRule] | None = Field(
        default=None,
        max_length=10,
        description="Rate limits; when unset, none for scaleUp and -100 % per 15 s for scaleDown.",
    )


class Behavior(SpecModel):
    scale_up: ScalingRules | None = Field(
        default=None,
        description="Scale-up rules; default 0 s window and no rate limit (a scale-up goes at once "
        "to what the demand needs; the HPA's limits are max(+100 %, +4 pods) per 15 s).",
    )
    scale_down: ScalingRules | None = Field(
        default=None,
        description="Scale-down rules; default 600 s window (the HPA's is 300 s), -100 % per 15 s.",
    )
    change_cost: Duration = Field(
        default="10m",
        description="What one scale change is worth, in replica-time: replicas the load no "
        "longer needs are kept until their idle time adds up to this (one idle replica for 10m, "
        "ten for 1m), then removed. Damps one-replica flapping; never delays a scale-up. 0s "
        "removes them as soon as the windows and rate limits allow.",
    )
    tolerance: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="The share of the replicas a scale change must move, like the HPA's "
        "tolerance: a scale-down waits until more than this share can go, a scale-up adds at "
        "least half of it, and one for headroom alone (the load fits the current replicas) "
        "waits while it is within half of it. Never delays replicas the load needs. 0 makes "
        "every change.",
    )


class EventSpec(SpecModel):
    name: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN, description="Event name.")
    start: Timestamp = Field(
        description="Start, RFC 3339 with offset (2026-11-11T00:00:00+08:00), or local with "
        "timeZone.",
    )
    end: Timestamp = Field(description="End, in the same form as start.")
    time_zone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="IANA time zone (e.g. Asia/Shanghai) for start/end written without an offset.",
    )
    load_multiplier: float | None = Field(
        default=None, gt=0, le=1000, description="Expected load relative to the pre-event baseline."
    )
    min_replicas: dict[str, Annotated[int, Field(ge=0, le=MAX_REPLICAS)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_TARGETS,
        description="Floors per workload name during the event.",
    )
    workloads: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_TARGETS,
        description="Workloads the multiplier applies to (default all), each named once.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    lead_time: Duration = Field(
        default="5m", description="Be ready this long before start (on top of each startup)."
    )

    __rules__ = (
        Rule(
            f"has(self.timeZone) ? !self.start.matches('{OFFSET_PATTERN}') && "
            f"!self.end.matches('{OFFSET_PATTERN}') : self.start.matches('{OFFSET_PATTERN}') && "
            f"self.end.matches('{OFFSET_PATTERN}')",
            "start and end need a UTC offset (e.g. +08:00), or no offset and a timeZone",
            lambda s: (
                not _has_offset(s.start) and not _has_offset(s.end)
                if s.time_zone is not None
                else _has_offset(s.start) and _has_offset(s.end)
            ),
            ".start",
        ),
        Rule(
            # Mixed forms are the rule above's to report (timestamp() would fail on them).
            # Local times compare as wall-clock times: appending Z makes timestamp() parse them,
            # and fail on a date such as February 30, which the API server then rejects.
            f"self.start.matches('{OFFSET_PATTERN}') != self.end.matches('{OFFSET_PATTERN}') || "
            f"timestamp(self.end.matches('{OFFSET_PATTERN}') ? self.end : self.end + 'Z') > "
            f"timestamp(self.start.matches('{OFFSET_PATTERN}') ? self.start : self.start + 'Z')",
            "end must be after start: move end later or start earlier",
            lambda s: _event_end_after_start(s),
            ".end",
        ),
        Rule(
            "has(self.loadMultiplier) || has(self.minReplicas)",
            "an event needs loadMultiplier or minReplicas, else it changes nothing: set one",
            lambda s: s.load_multiplier is not None or s.min_replicas is not None,
        ),
        Rule(
            None,  # the API server rejects these too: timestamp() fails in the end-after-start rule
            "start and end must be real dates and times (no February 30): fix the date",
            lambda s: _real_times(s),
            ".start",
        ),
        Rule(
            # With an offset the API server refuses these too (timestamp() fails in the rule
            # above); a local time is read in timeZone, which CEL cannot do.
            None,
            "start and end must fall within years 0001-9999 in UTC (the API server's timestamp "
            "range): move the event",
            lambda s: _in_range(s),
            ".start",
        ),
        Rule(
            None,  # the API server enforces it through the list type (set)
            "workloads: each workload is named once: remove the duplicate",
            lambda s: len(set(s.workloads or [])) == len(s.workloads or []),
            ".workloads",
        ),
        Rule(
            None,  # IANA names cannot be checked in CEL; the operator reports it in status
            "timeZone is not a known IANA time zone: use a name such as Asia/Shanghai or "
            "Europe/Paris",
            lambda s: _check_time_zone(s),
            ".timeZone",
        ),
    )

    def window(self) -> tuple[datetime, datetime]:
        """Start and end as aware datetimes."""
        return _aware(self.start, self.time_zone), _aware(self.end, self.time_zone)


class ForecastSpec(SpecModel):
    method: Literal["auto", "seasonal", "trend", "reactive"] = Field(
        default="auto",
        description="auto uses a forecast model only while it beats reactive sizing on recent "
        "data.",
    )
    history: Duration = Field(default="7d", description="How much history the forecast reads.")
    horizon: Duration = Field(
        default="15m", description="How far ahead the forecast looks at most."
    )
    quantile: float = Field(
        default=0.9,
        gt=0.5,
        lt=1,
        description="Upper quantile of the forecast the planner sizes for.",
    )


class OnMetricFailure(SpecModel):
    action: Literal["HoldLastKnown", "Static", "Current"] = Field(
        default="HoldLastKnown",
        description="HoldLastKnown: plan on the last good value until ttl; Static: replicas; "
        "Current: keep replicas as they are. Never a scale-down because data is missing.",
    )
    ttl: Duration = Field(
        default="10m", description="How long HoldLastKnown trusts the last good value."
    )
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description="Replicas for action Static (never below current).",
    )

    __rules__ = (
        Rule(
            "self.action != 'Static' || has(self.replicas)",
            "onMetricFailure.replicas is required with action Static: set replicas, or use "
            "HoldLastKnown or Current",
            lambda s: s.action != "Static" or s.replicas is not None,
            ".replicas",
        ),
    )


class ScalingPolicySpec(SpecModel):
    """The workloads PeakPilot sizes together, their SLOs and prices, the shared budget, the
    calendar of known peaks, and how fast replicas may change."""

    mode: Literal["Enforce", "Preview", "Off"] = Field(
        default="Enforce",
        description="Enforce: patch /scale; Preview: plan and status only; Off: do nothing.",
    )
    interval: Duration = Field(default="15s", description="Reconcile period, 1s to 1h.")
    prometheus: PrometheusSpec | None = Field(
        default=None, description="Where load queries run (required by the operator)."
    )
    budget: Budget | None = Field(default=None, description="Shared limits over all workloads.")
    workloads: list[WorkloadSpec] = Field(
        min_length=1,
        max_length=MAX_WORKLOADS,
        description="The workloads decided together.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    behavior: Behavior | None = Field(
        default=None,
        description="HPA-compatible rate limits and stabilisation windows, and what a scale "
        "change is worth.",
    )
    events: list[EventSpec] | None = Field(
        default=None,
        max_length=MAX_EVENTS,
        description="The calendar of known peaks.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    forecast: ForecastSpec | None = Field(default=None, description="Forecasting settings.")
    on_metric_failure: OnMetricFailure | None = Field(
        default=None, description="What to do when a load query fails; default HoldLastKnown 10m."
    )

    __rules__ = (
        Rule(
            None,  # CEL's duration() has no "d" unit: the operator reports it (Ready=InvalidSpec)
            "interval must be between 1s and 1h: set 1s to 1h (edits, pause and mode changes "
            "apply within seconds whatever the interval)",
            lambda s: MIN_INTERVAL_SECONDS <= parse_duration(s.interval) <= MAX_INTERVAL_SECONDS,
            ".interval",
        ),
        Rule(
            None,  # the API server enforces it through the list-map key
            "workloads: names must be unique: rename the duplicate",
            lambda s: len({w.name for w in s.workloads}) == len(s.workloads),
            ".workloads",
        ),
        Rule(
            "(has(self.prometheus) && has(self.prometheus.workloadsQuery)) || "
            "self.workloads.all(w, has(w.load))",
            "workloads[].load is required unless spec.prometheus.workloadsQuery reads every "
            "load: set load.query, or a workloadsQuery",
            lambda s: (
                (s.prometheus is not None and s.prometheus.workloads_query is not None)
                or all(w.load is not None for w in s.workloads)
            ),
            ".workloads",
        ),
        Rule(
            None,
            "events: names must be unique: rename the duplicate",
            lambda s: len({e.name for e in s.events or []}) == len(s.events or []),
            ".events",
        ),
        # Both look-ups count the workloads an event names (names are unique on both sides)
        # rather than search the workloads once per name: events x workloads steps, not events
        # x names x workloads, so their CEL cost stays far under the API server's limits at
        # 1000 workloads (tests/unit/test_crd.py).
        Rule(
            "!has(self.events) || self.events.all(e, !has(e.minReplicas) ? true : "
            "self.workloads.filter(w, w.name in e.minReplicas).size() == size(e.minReplicas))",
            "events[].minReplicas names a workload that is not in workloads: use a workload's name",
            lambda s: all(
                k in {w.name for w in s.workloads}
                for e in s.events or []
                for k in e.min_replicas or {}
            ),
            ".events",
        ),
        Rule(
            "!has(self.events) || self.events.all(e, !has(e.workloads) ? true : "
            "self.workloads.filter(w, w.name in e.workloads).size() == size(e.workloads))",
            "events[].workloads names a workload that is not in workloads: use a workload's name",
            lambda s: all(
                k in {w.name for w in s.workloads}
                for e in s.events or []
                for k in e.workloads or []
            ),
            ".events",
        ),
    )

    def interval_seconds(self) -> float:
        return parse_duration(self.interval)


# ---------------------------------------------------------------------------------------------
# status


class Condition(ApiModel):
    type: str = Field(description="Ready, MetricsAvailable, BudgetBinding, FallbackActive, Paused.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable detail, with the fix.")
    last_transition_time: str | None = Field(default=None, description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="Generation it describes.")


# status.lastPlan is the plan document of `peakpilot plan -o json` in its compact form
# (peakpilot.report.plan_document, docs/cli.md): the same keys with the same meanings.


class ForecastStatus(ApiModel):
    method: str = Field(description="The forecaster used: seasonal, trend or reactive.")
    reason: str = Field(
        default="", max_length=512, description="Why that method: its accuracy gate, or the spec."
    )
    basis: str = Field(
        description="What set the demand: forecast, band, load, daily envelope, weekly envelope "
        "or event NAME."
    )


class WorkloadStatus(ApiModel):
    name: str = Field(description="Workload name.")
    current: int = Field(description="Replicas when planned.")
    desired: int = Field(description="Replicas planned.")
    load: float | None = Field(
        default=None, description="The observed load, requests/s; null when unavailable."
    )
    demand: float | None = Field(default=None, description="The load the plan sized for.")
    source: str | None = Field(
        default=None,
        description="Where the demand came from: observed, held, static, current or missing.",
    )
    needed: int | None = Field(
        default=None, description="Fewest replicas that meet the SLO, ignoring bounds and limits."
    )
    utilization: float | None = Field(default=None, description="Demand / (desired x capacity).")
    cost_per_hour: float | None = Field(default=None, description="Price x desired.")
    outside_slo: float | None = Field(
        default=None, description="Requests/s served outside the SLO at desired."
    )
    reason: str = Field(default="", max_length=512, description="Why this count.")
    limited_by: str | None = Field(default=None, description="floor, ceiling, budget:..., or none.")
    events: list[str] = Field(default_factory=list, description="Calendar events in force.")
    note: str | None = Field(
        default=None, max_length=512, description="How a missing load was replaced, if it was."
    )
    forecast: ForecastStatus | None = Field(
        default=None, description="How the demand was sized; null when the load was not observed."
    )
    surge: str | None = Field(
        default=None, max_length=512, description="Why the workload is in surge mode, if it is."
    )


class PlanTotals(ApiModel):
    cost_per_hour: float | None = Field(default=None, description="Running cost of the plan.")
    current_cost_per_hour: float | None = Field(
        default=None, description="Running cost of the current replicas."
    )
    objective: float | None = Field(
        default=None,
        description="The plan's score: replicas short of an SLO weighted by priority, then "
        "cost/h and churn (not money; lower is better).",
    )
    outside_slo: float | None = Field(
        default=None, description="Requests/s served outside the SLO, summed."
    )
    workloads: int | None = Field(default=None, description="Workloads planned.")
    changed: int | None = Field(default=None, description="Workloads whose replicas change.")
    desired_replicas: int | None = Field(default=None, description="Replicas planned, summed.")
    current_replicas: int | None = Field(default=None, description="Replicas when planned, summed.")


class SolverStatus(ApiModel):
    name: str = Field(description="highs, cbc, or none when no shared limit binds.")
    status: str = Field(description="optimal, time-limit, failed, deadline, ...")
    seconds: float = Field(description="Model build and solve time.")
    gap: float | None = Field(default=None, description="Relative gap to the best bound.")
    used_greedy: bool = Field(default=False, description="The greedy plan was used instead.")
    fallback_reason: str | None = Field(
        default=None, max_length=512, description="Why the greedy plan was used."
    )


class RelaxStatus(ApiModel):
    by: float | None = Field(default=None, description="Extra limit priced (10 %).")
    new_limit: float | None = Field(default=None, description="The limit raised by `by`.")
    gain_per_hour: float | None = Field(
        default=None,
        description="What `by` saves in the plan's objective (replicas short of an SLO "
        "weighted by priority, then cost/h): a score to compare, not money.",
    )
    cost_change_per_hour: float | None = Field(
        default=None, description="Cost/h change of the relaxed plan."
    )
    outside_slo_change: float | None = Field(
        default=None, description="Change of requests/s outside the SLO (negative: fewer)."
    )
    replicas: dict[str, int] = Field(
        default_factory=dict, description="Replicas each workload would gain."
    )


class BindingStatus(ApiModel):
    constraint: str = Field(description="cost, cpu or memory.")
    limit: float | None = Field(default=None, description="The limit.")
    used: float | None = Field(default=None, description="Usage of the plan.")
    needed: float | None = Field(default=None, description="Usage if every workload met its SLO.")
    soft: bool = Field(default=False, description="The floors alone exceed the limit.")
    squeezed: dict[str, int] = Field(
        default_factory=dict, description="Replicas each workload is short of what its load needs."
    )
    relax: RelaxStatus | None = Field(default=None, description="What raising the limit buys.")


class LeftOutStatus(ApiModel):
    name: str = Field(description="Workload name.")
    reason: str = Field(default="", max_length=512, description="Why it was not planned.")


class LastPlan(ApiModel):
    at: str = Field(description="When the plan was made (RFC 3339).")
    metrics_ok: bool | None = Field(default=None, description="Every load was observed.")
    workloads: list[WorkloadStatus] = Field(
        default_factory=list,
        description="Per workload; above 100 workloads only those that change, are squeezed by "
        "a limit or have no observed load (at most 100).",
    )
    omitted_workloads: int | None = Field(
        default=None, description="Workloads planned but not listed in workloads (see totals)."
    )
    totals: PlanTotals | None = Field(default=None, description="Totals over all workloads.")
    binding: list[BindingStatus] = Field(default_factory=list, description="Binding limits.")
    solver: SolverStatus = Field(description="How the plan was solved.")
    notes: list[str] = Field(default_factory=list, description="Fallbacks and warnings.")
    left_out: list[LeftOutStatus] = Field(
        default_factory=list, description="Workloads not planned (target never readable): why."
    )


class PolicySummary(ApiModel):
    """The figures `kubectl get sp` shows: totals over the last plan, and the policy's state."""

    workloads: int | None = Field(default=None, description="Workloads in the last plan.")
    desired_replicas: int | None = Field(
        default=None, description="Replicas the last plan wants, summed over its workloads."
    )
    current_replicas: int | None = Field(
        default=None, description="Replicas the workloads had when planned, summed."
    )
    cost_per_hour: float | None = Field(
        default=None, description="Running cost of the desired replicas per hour."
    )
    budget_per_hour: float | None = Field(
        default=None, description="spec.budget.maxCostPerHour, when set."
    )
    binding: str | None = Field(
        default=None,
        description="The shared limits that bind, comma-separated (cost, cpu, memory), or none.",
    )
    fallback: bool | None = Field(
        default=None,
        description="A fallback is active: the greedy plan, or a load not read (FallbackActive).",
    )
    paused: bool | None = Field(
        default=None,
        description="Nothing is applied: Preview or Off mode, the pause annotation, or paused "
        "workloads (the Paused condition).",
    )


class ScalingPolicyStatus(ApiModel):
    """What PeakPilot observed and decided: conditions, a summary, and the last plan."""

    observed_generation: int | None = Field(default=None, description="Generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, MetricsAvailable, BudgetBinding, FallbackActive, Paused.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    summary: PolicySummary | None = Field(
        default=None, description="Totals and state for `kubectl get` (its printer columns)."
    )
    last_plan: LastPlan | None = Field(default=None, description="The most recent plan.")


# ---------------------------------------------------------------------------------------------
# helpers for the rules


def _has_offset(text: str) -> bool:
    return re.search(OFFSET_PATTERN, text) is not None


def _aware(text: str, zone: str | None) -> datetime:
    from zoneinfo import ZoneInfo

    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=ZoneInfo(zone or "UTC"))
    return stamp


def _event_end_after_start(event: EventSpec) -> bool:
    # As the CEL: offset stamps compare as instants, local ones as wall-clock times (read as UTC).
    if _has_offset(event.start) != _has_offset(event.end):
        return True  # the offset rule reports mixed forms
    try:
        return _aware(event.end, None) > _aware(event.start, None)
    except ValueError:
        return True  # not a real date: the calendar rule reports it


def _real_times(event: EventSpec) -> bool:
    try:
        _aware(event.start, None)
        _aware(event.end, None)
    except ValueError:
        return False
    return True


def _in_range(event: EventSpec) -> bool:
    from peakpilot.times import MAX_EPOCH, MIN_EPOCH, epoch_seconds

    if not _real_times(event) or not _check_time_zone(event):
        return True  # the calendar and zone rules report these
    for text in (event.start, event.end):
        try:
            seconds = epoch_seconds(_aware(text, event.time_zone))
        except (OverflowError, ValueError):
            return False
        if not MIN_EPOCH <= seconds <= MAX_EPOCH:
            return False
    return True


def _check_time_zone(event: EventSpec) -> bool:
    if event.time_zone is None:
        return True
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(event.time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a directory: OSError
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the whole object


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(default="policy", description="Object name.")
    namespace: str | None = Field(default=None, description="Namespace.")


class ScalingPolicy(ApiModel):
    api_version: Literal["peakpilot.io/v1alpha1"] = Field(
        default="peakpilot.io/v1alpha1", description="peakpilot.io/v1alpha1."
    )
    kind: Literal["ScalingPolicy"] = Field(default="ScalingPolicy", description="ScalingPolicy.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: ScalingPolicySpec = Field(description="What to scale and how.")
    status: ScalingPolicyStatus | None = Field(default=None, description="What PeakPilot did.")


# What each pattern means, for people: the raw regex is no error message.
PATTERN_HINTS = {
    DURATION_PATTERN: "not a duration: use a number with a unit, ms, s, m, h or d "
    "(e.g. 15s, 1h30m)",
    TIMESTAMP_PATTERN: "not a timestamp: use e.g. 2026-11-11T00:00:00+08:00, or no offset and a "
    "timeZone",
    NAME_PATTERN: "not a DNS label: use lowercase letters, digits and '-', starting and ending "
    "with a letter or digit",
    URL_PATTERN: "not an http(s) URL: use e.g. http://prometheus.monitoring:9090",
    LABEL_PATTERN: "not a Prometheus label name: use letters, digits and '_', not starting "
    "with a digit",
}
# Location parts pydantic adds for validator and union branches; they are no fields.
_BRANCH_TAGS = {"int", "str", "float", "bool", "list", "dict", "none"}


def _is_branch(part: int | str) -> bool:
    return isinstance(part, str) and ("[" in part or part in _BRANCH_TAGS)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a manifest path: spec.workloads[0].minReplicas."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_branch(part):
            continue
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _unwrap(tp: Any) -> Any:
    """X from Annotated[X, ...] and X | None."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _fields_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The wire names of the object at `loc` below `root`; empty when it is no model."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if _is_branch(part):
            continue
        if _is_model(tp) and isinstance(part, str):
            fields = {f.alias or n: f for n, f in tp.model_fields.items()}
            if part not in fields:
                return []
            tp = fields[part].annotation
        elif typing.get_origin(tp) is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict and isinstance(part, str):
            tp = typing.get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    return [f.alias or n for n, f in tp.model_fields.items()] if _is_model(tp) else []


def _api_models() -> dict[str, type[ApiModel]]:
    out: dict[str, type[ApiModel]] = {}
    stack: list[type[ApiModel]] = [ApiModel]
    while stack:
        cls = stack.pop()
        out[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return out


def _unknown_field(title: str, loc: tuple[int | str, ...]) -> str:
    msg = "unknown field: remove it or check its spelling (fields are camelCase)"
    root = _api_models().get(title)
    if root is None or not loc or not isinstance(loc[-1], str):
        return msg
    close = difflib.get_close_matches(loc[-1], _fields_at(root, loc[:-1]), n=1, cutoff=0.6)
    return f"unknown field: did you mean {close[0]}? (fields are camelCase)" if close else msg


def describe_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per problem: the field path, what is wrong, and how to fix it."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == RULE_ERROR and ctx.get("field_path"):
            # The rule's fieldPath, as the API server reports it: spec.workloads[0].minReplicas.
            loc += tuple(str(ctx["field_path"]).lstrip(".").split("."))
        path = field_path(loc)
        path = f"{prefix}.{path}" if prefix and path != "(top level)" else (prefix or path)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_field(exc.title, tuple(err["loc"]))
        elif err["type"] == "missing":
            msg = "required field is missing: add it"
        elif err["type"] == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_HINTS:
            msg = f"{err['input']!r} is {PATTERN_HINTS[ctx['pattern']]}"
        lines.append(f"{path}: {msg}")
    return lines
