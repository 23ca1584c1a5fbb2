"""Observe one ScalingPolicy: its settings and Secrets, the loads (with the forecast warm-up), the
targets' replicas and who else scales them -> an `Observation` for `decide()` and the problems.

The operator's reconcile and `peakpilot plan --prometheus` both observe through here. The cluster
and the metrics source are passed in (`Cluster`, `Metrics`): tests give in-memory ones. Every
failure is a problem and a fail-closed observation, never an exception: a load that cannot be read
is missing (no scale-down), a target that cannot be read has unknown replicas, an ownership check
that fails holds the workload.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from peakpilot import api
from peakpilot.kube import (
    BUILTIN_PLURALS,
    PAUSED_ANNOTATION,
    TAKE_OVER_ANNOTATION,
    KubeError,
    Scale,
    Target,
)
from peakpilot.prometheus import AllowList, ByLabel, MetricError, PrometheusSettings, safe_url
from peakpilot.translate import to_policy
from peakpilot.units import parse_duration
from peakplan import Memory, Observation, Policy, WorkloadObservation, warm

log = logging.getLogger("peakpilot.observe")

MAX_HISTORY_POINTS = 10_000  # per range query (Prometheus refuses more than 11,000)
# Points of the one range query that warms every workload from spec.prometheus.workloadsQuery:
# about 5.5 MiB of answer (under prometheus.MAX_ANSWER_BYTES), and feeding them to 1000
# forecasters takes about a second (bench/thousand.py: the first reconcile after a restart). With
# 1000 workloads and 7d of history the step is then about 50 minutes, 29 points a day: the daily
# cycle is there, and the forecast refines itself from the live loads.
MAX_BULK_HISTORY_POINTS = 200_000

Autoscalers = list[tuple[str, str, dict[str, Any]]]


class Cluster(Protocol):
    """What observing needs from the API server (`peakpilot.kube.Kube`)."""

    def read_target(self, target: Target) -> dict[str, Any]: ...

    def read_scale(self, target: Target, obj: dict[str, Any] | None = None) -> Scale: ...

    def list_targets(
        self, namespace: str, api_version: str, kind: str
    ) -> dict[str, tuple[dict[str, Any], Scale]]: ...

    def autoscalers(self, namespace: str) -> Autoscalers: ...

    def owners(
        self, target: Target, autoscalers: Sequence[tuple[str, str, Mapping[str, Any]]] | None
    ) -> list[str]: ...

    def secret_value(
        self, namespace: str, ref: api.SecretKeyRef, *, one_line: bool = False
    ) -> str: ...


class Metrics(Protocol):
    """What observing needs from Prometheus (`peakpilot.prometheus.PrometheusSource`)."""

    def instant(self, query: str, at: float | None = None) -> float: ...

    def history(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]: ...

    def instant_by(self, query: str, label: str, at: float | None = None) -> ByLabel: ...

    def history_by(
        self, query: str, label: str, start: float, end: float, step: float
    ) -> dict[str, list[tuple[float, float]]]: ...

    def close(self) -> None: ...


MetricsSource = Callable[[PrometheusSettings], Metrics]


@dataclass(frozen=True)
class Refused:
    """The policy is not planned this time (invalid, paused, off, no allowed Prometheus)."""

    outcome: str  # invalid | paused
    conditions: tuple[tuple[str, bool, str, str], ...]  # (type, ok, reason, message)
    warning: str | None = None  # the Warning event's reason, posted when Ready turns False


@dataclass
class SpecMemo:
    """The last valid spec read and its core form, by `metadata.generation` (which the API
    server raises on every change of the spec): a policy of 1000 workloads is validated once per
    edit, not every interval (~0.2 s of CPU each time, bench/thousand.py)."""

    generation: int | None = None
    parsed: tuple[api.ScalingPolicySpec, Policy] | None = None


def read_policy(
    body: Mapping[str, Any], allowed: AllowList | None, memo: SpecMemo | None = None
) -> tuple[api.ScalingPolicySpec, Policy] | Refused:
    """The policy's spec and its core form, or why it is not planned. An invalid spec is
    reported (once, as an event), never retried in a crash loop. With `memo`, a spec of the
    generation read last time is not validated again (without a generation it always is)."""
    generation = (body.get("metadata") or {}).get("generation")
    try:
        if memo is not None and memo.parsed is not None and memo.generation == generation:
            spec, policy = memo.parsed
        else:
            spec = api.ScalingPolicySpec.model_validate(body.get("spec") or {})
            policy = to_policy(spec)
            if memo is not None and isinstance(generation, int):
                memo.generation, memo.parsed = generation, (spec, policy)
    except ValidationError as exc:
        message = "; ".join(api.describe_errors(exc, "spec"))
        return Refused("invalid", (("Ready", False, "InvalidSpec", message),), "InvalidSpec")
    except ValueError as exc:  # a value the models admit but the core cannot use
        message = f"spec: {exc}"
        return Refused("invalid", (("Ready", False, "InvalidSpec", message),), "InvalidSpec")
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    if truthy(annotations.get(PAUSED_ANNOTATION)):
        return Refused(
            "paused",
            (
                ("Paused", True, "PausedByAnnotation", f"{PAUSED_ANNOTATION}=true on the policy"),
                ("Ready", True, "Paused", "nothing is planned or applied while paused"),
            ),
        )
    if spec.mode == "Off":
        return Refused(
            "paused",
            (
                ("Paused", True, "ModeOff", "spec.mode is Off: nothing is planned or applied"),
                ("Ready", True, "ModeOff", ""),
            ),
        )
    if spec.prometheus is None:
        message = "spec.prometheus.url is required by the operator: set it"
        return Refused("invalid", (("Ready", False, "NoPrometheus", message),))
    if allowed is not None and not allowed.allows(spec.prometheus.url):
        # Before any Secret is read: a policy must not aim the operator's credentials elsewhere.
        message = (
            f"spec.prometheus.url {safe_url(spec.prometheus.url)} is not allowed by the operator "
            f"(allowed: {allowed.describe()}); use one of those, or ask the operator's "
            "administrator to allow it (chart value prometheus.allowedUrls); workloads are held"
        )
        return Refused(
            "invalid",
            (
                ("Ready", False, "PrometheusNotAllowed", message),
                ("MetricsAvailable", False, "PrometheusNotAllowed", message),
            ),
            "PrometheusNotAllowed",
        )
    return spec, policy


@dataclass
class Observed:
    """One policy as observed: what `decide()` takes, and what went wrong on the way."""

    observation: Observation
    targets: dict[str, Target]
    problems: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)  # workloads paused by their annotation


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


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


def prometheus_settings(
    cluster: Cluster | None, namespace: str, spec: api.PrometheusSpec
) -> PrometheusSettings:
    """The policy's Prometheus: URL, timeout and auth, its Secrets read from `namespace`.
    Raises KubeError when a Secret cannot be read (or there is no cluster to read it from)."""
    headers: dict[str, str] = {}
    basic: tuple[str, str] | None = None
    verify: bool | str = True
    auth = spec.auth

    def secret(ref: api.SecretKeyRef, one_line: bool = True) -> str:
        if cluster is None:
            raise KubeError(
                f"Secret {namespace}/{ref.name} key {ref.key!r}: no cluster to read it from "
                "(give --kubeconfig, or set KUBECONFIG)"
            )
        return cluster.secret_value(namespace, ref, one_line=one_line)

    if auth is not None:
        if auth.bearer_token_secret:
            headers["Authorization"] = "Bearer " + secret(auth.bearer_token_secret)
        if auth.basic_auth:
            basic = (secret(auth.basic_auth.username), secret(auth.basic_auth.password))
        if auth.ca_secret:
            verify = _ca_file(secret(auth.ca_secret, one_line=False))
        if auth.insecure_skip_verify:
            verify = False
    return PrometheusSettings(
        url=spec.url,
        timeout=parse_duration(spec.timeout),
        headers=headers,
        basic_auth=basic,
        verify=verify,
    )


Loads = dict[str, tuple[float | None, str | None]]  # workload -> (load, why it is missing)


def read_loads(
    cluster: Cluster | None,
    metrics: MetricsSource,
    spec: api.ScalingPolicySpec,
    policy: Policy,
    namespace: str,
    memory: Memory,
    warmed: set[str],
    now: float,
    problems: list[str],
) -> Loads:
    """Each workload's load at `now` (and, on its first reconcile, its history: `warmed`)."""
    assert spec.prometheus is not None
    try:
        source = metrics(prometheus_settings(cluster, namespace, spec.prometheus))
    except KubeError as exc:
        problems.append(f"Prometheus credentials: {exc}")
        return {w.name: (None, f"credentials: {exc}") for w in spec.workloads}
    loads: Loads = {}
    try:
        bulk = _bulk_loads(source, spec, now, problems)
        for w in spec.workloads:
            if w.name in bulk.values:
                loads[w.name] = (bulk.values[w.name], None)
                continue
            why = bulk.refused.get(w.name)
            if w.load is None:  # nothing to fall back to: no load this interval (held)
                loads[w.name] = (None, why or "not in the answer of spec.prometheus.workloadsQuery")
                continue
            try:
                loads[w.name] = (source.instant(w.load.query, now), None)
            except MetricError as exc:
                loads[w.name] = (None, str(exc) if why is None else f"{why}; load.query: {exc}")
        _warm(source, spec, policy, memory, warmed, loads, now)
    finally:
        source.close()
    return loads


def _bulk_loads(
    source: Metrics, spec: api.ScalingPolicySpec, now: float, problems: list[str]
) -> ByLabel:
    """Every load from spec.prometheus.workloadsQuery, when it is set: one query. Workloads it
    does not answer for (missing, carried twice, unusable) are left to their own queries; a
    query that fails as a whole leaves them all to it, and is a problem."""
    assert spec.prometheus is not None
    bulk = spec.prometheus.workloads_query
    if bulk is None:
        return ByLabel({}, {})
    try:
        answer = source.instant_by(bulk.query, bulk.label, now)
    except MetricError as exc:
        problems.append(f"spec.prometheus.workloadsQuery: {exc}; each workload's load.query used")
        return ByLabel({}, {w.name: f"workloadsQuery: {exc}" for w in spec.workloads})
    if answer.refused:
        shown = "; ".join(list(answer.refused.values())[:3])
        more = len(answer.refused) - 3
        log.info(
            f"workloadsQuery: {len(answer.refused)} workloads refused ({shown}"
            f"{f'; and {more} more' if more > 0 else ''}); their load.query is used"
        )
    return answer


def _warm(
    source: Metrics,
    spec: api.ScalingPolicySpec,
    policy: Policy,
    memory: Memory,
    warmed: set[str],
    loads: Loads,
    now: float,
) -> None:
    """Feed each new workload's forecaster its history (a range query over forecast.history),
    once, before it sees its first live load: a restarted operator forecasts from the start."""
    if policy.forecast.method == "reactive":  # no model to feed
        warmed.update(w.name for w in spec.workloads)
        return
    history = policy.forecast.history
    step = float(math.ceil(max(1.0, policy.interval, history / MAX_HISTORY_POINTS)))
    todo = []
    for w in spec.workloads:
        if w.name in warmed:
            continue
        mem = memory.of(w.name)
        if mem.forecaster is not None and mem.forecaster.state.first_time is not None:
            warmed.add(w.name)  # it learns from live loads already: no going back in time
            continue
        todo.append(w)
    bulk = _bulk_history(source, spec, todo, history, step, now)
    for w in todo:
        if bulk is not None and w.name in bulk:
            points = bulk[w.name]
        elif w.load is None:
            if bulk is not None or loads[w.name][0] is not None:
                # Prometheus answered, without its history (a new series, or none at all):
                # live loads only, and no range query again every interval.
                warmed.add(w.name)
            continue
        else:
            try:
                points = source.history(w.load.query, now - history, now, step)
            except MetricError as exc:
                if loads[w.name][0] is not None:
                    # Prometheus answers, but has no usable history (a new series): live only.
                    warmed.add(w.name)
                    log.info(f"{w.name}: no history to warm the forecast from ({exc})")
                continue  # Prometheus unreachable: try again next reconcile
        _feed(policy, memory, w.name, points, now)
        warmed.add(w.name)


def _bulk_history(
    source: Metrics,
    spec: api.ScalingPolicySpec,
    todo: Sequence[api.WorkloadSpec],
    history: float,
    step: float,
    now: float,
) -> dict[str, list[tuple[float, float]]] | None:
    """The history of every workload in `todo` from one range query of the workloadsQuery
    (when set), at a step that keeps the answer bounded; None when there is none or it fails
    (each workload then reads its own, if it has a load.query)."""
    assert spec.prometheus is not None
    bulk = spec.prometheus.workloads_query
    if bulk is None or not todo:
        return None
    series = max(1, len(spec.workloads))
    step = float(math.ceil(max(step, history * series / MAX_BULK_HISTORY_POINTS)))
    try:
        found = source.history_by(bulk.query, bulk.label, now - history, now, step)
    except MetricError as exc:
        log.info(f"workloadsQuery: no history to warm the forecasts from ({exc})")
        return None
    log.info(
        f"workloadsQuery: history of {len(found)} series read in one range query (step {step:g}s)"
    )
    return found


def _feed(
    policy: Policy, memory: Memory, name: str, points: list[tuple[float, float]], now: float
) -> None:
    mem = memory.of(name)
    mem.forecaster = None  # it only recorded missing samples (if anything): start afresh
    try:
        warm(policy, memory, name, [(t, v) for t, v in points if t < now])
    except ValueError as exc:
        mem.forecaster = None
        log.warning(f"{name}: history not usable for the forecast ({exc})")
    else:
        log.info(f"{name}: forecast warmed from {len(points)} samples of history")


def target_of(w: api.WorkloadSpec, namespace: str) -> Target:
    ref = w.target_ref
    return Target(ref.api_version, ref.kind, ref.name, namespace)


def read_targets(
    cluster: Cluster, spec: api.ScalingPolicySpec, namespace: str, loads: Loads, observed: Observed
) -> None:
    """Each target's replicas, and whether it is ours to scale (paused, owned by another
    autoscaler, the ownership unknown: held), into `observed`."""
    seen: dict[str, WorkloadObservation] = {}
    autoscalers: Autoscalers | KubeError | None = None
    listed = _listed(cluster, spec, namespace)
    for w in spec.workloads:
        target = observed.targets[w.name] = target_of(w, namespace)
        load, error = loads[w.name]
        try:
            group = listed.get((target.api_version, target.kind))
            if group is not None:
                if target.name not in group:
                    raise KubeError(f"{target}: not found", 404)
                obj, scale = group[target.name]
            else:
                obj = cluster.read_target(target)
                scale = cluster.read_scale(target, obj)
        except KubeError as exc:
            observed.problems.append(f"{w.name}: {exc}")
            # Unknown replicas: decide() holds it as last seen, or leaves it out of the plan.
            seen[w.name] = WorkloadObservation(0, load, error, unreadable=str(exc))
            continue
        hold = None
        target_annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if truthy(target_annotations.get(PAUSED_ANNOTATION)):
            hold = f"paused ({PAUSED_ANNOTATION} on {target})"
            observed.paused.append(w.name)
        elif not truthy(target_annotations.get(TAKE_OVER_ANNOTATION)):
            if autoscalers is None:  # once per reconcile, on the first workload that asks
                try:
                    autoscalers = cluster.autoscalers(namespace)
                except KubeError as exc:
                    autoscalers = exc
            if isinstance(autoscalers, KubeError):
                # Fail closed: another autoscaler may own it, so it is not ours to change.
                owners = []
                hold = f"ownership unknown ({autoscalers})"
                observed.problems.append(
                    f"{w.name}: held: the ownership check failed ({autoscalers}); nothing is "
                    "scaled until the operator can list HPAs and ScaledObjects"
                )
            else:
                owners = cluster.owners(target, autoscalers)
            if owners:
                hold = f"owned by {', '.join(owners)}"
                observed.problems.append(
                    f"{w.name}: {target} is already scaled by {', '.join(owners)}; remove it, or "
                    f"annotate the target {TAKE_OVER_ANNOTATION}=true to let PeakPilot take over"
                )
        seen[w.name] = WorkloadObservation(
            scale.replicas, load, error, hold=hold, ready=scale.ready
        )
    observed.observation = Observation(observed.observation.at, seen)


LIST_ABOVE = 10  # targets of one built-in kind read with one LIST rather than two GETs each


def _listed(
    cluster: Cluster, spec: api.ScalingPolicySpec, namespace: str
) -> dict[tuple[str, str], dict[str, tuple[dict[str, Any], Scale]]]:
    """The targets of each built-in kind that more than LIST_ABOVE workloads name, listed once
    (a policy of 1000 Deployments: one request, not 2000); a kind whose LIST fails is read
    target by target, as a small policy's are."""
    kinds: dict[tuple[str, str], int] = {}
    for w in spec.workloads:
        ref = w.target_ref
        if (ref.api_version.rpartition("/")[0], ref.kind) in BUILTIN_PLURALS:
            kinds[ref.api_version, ref.kind] = kinds.get((ref.api_version, ref.kind), 0) + 1
    out = {}
    for (api_version, kind), count in kinds.items():
        if count <= LIST_ABOVE:
            continue
        try:
            out[api_version, kind] = cluster.list_targets(namespace, api_version, kind)
        except KubeError as exc:
            log.info(f"listing {kind}s in {namespace} failed ({exc}); reading each target")
    return out


def observe(
    cluster: Cluster | None,
    metrics: MetricsSource,
    spec: api.ScalingPolicySpec,
    policy: Policy,
    namespace: str,
    memory: Memory,
    warmed: set[str],
    now: float,
    current: Mapping[str, int] | None = None,
) -> Observed:
    """The policy at `now`. Replicas come from the cluster; `current` overrides them per
    workload, and without a cluster they are `current`'s or minReplicas (`peakpilot plan`)."""
    problems: list[str] = []
    loads = read_loads(cluster, metrics, spec, policy, namespace, memory, warmed, now, problems)
    observed = Observed(Observation(now, {}), {}, problems)
    if cluster is not None:
        read_targets(cluster, spec, namespace, loads, observed)
    seen = dict(observed.observation.workloads)
    for w in spec.workloads:
        observed.targets.setdefault(w.name, target_of(w, namespace))
        if current is not None and w.name in current:  # the caller's count wins
            was = seen.get(w.name)
            seen[w.name] = WorkloadObservation(
                current[w.name], *loads[w.name], hold=was.hold if was is not None else None
            )
        elif w.name not in seen:  # no cluster: the lowest count the policy allows
            seen[w.name] = WorkloadObservation(w.min_replicas, *loads[w.name])
    observed.observation = Observation(now, seen)
    return observed
