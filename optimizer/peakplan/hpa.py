"""The baseline controller: the Kubernetes HPA v2 algorithm with its default behaviour.

Mirrors `pkg/controller/podautoscaler` (horizontal.go, replica_calculator.go) for one metric,
the request rate per pod (an External/Pods metric with an AverageValue target):

- the target per pod is capacity x target utilisation (default 0.7);
- usageRatio = observed rate / (current replicas x target per pod); inside the 10 % tolerance
  the proposal is the current count, otherwise ceil(current x usageRatio);
- stabilisation: a scale-up proposal takes the lowest recommendation of the scale-up window
  (0 s by default), a scale-down proposal the highest of the last 300 s;
- rate limits: up by at most max(+4 pods, +100 %) per 15 s, down by 100 % per 15 s (no limit);
- then [minReplicas, maxReplicas]; metric failures (a missing observation) change nothing;
- the metric the HPA acts on at t is the rate observed at t - 30 s (metrics pipeline lag).

The controller is a pure function of (config, state, t, observation); `Hpa` wraps it for loops.
Feed it the observation *at* t: the lag is applied here, not by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

EPS = 1e-9
MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class RatePolicy:
    """HPAScalingPolicy: change by `value` pods or percent per `period` seconds."""

    kind: Literal["Pods", "Percent"]
    value: int
    period: float


@dataclass(frozen=True)
class HpaConfig:
    capacity: float  # requests/s one replica serves at 100 %
    target_utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = MAX_INT32
    tolerance: float = 0.1
    metric_lag: float = 30.0  # seconds between the load and the metric the HPA sees
    scale_up_window: float = 0.0
    scale_down_window: float = 300.0
    scale_up: tuple[RatePolicy, ...] = (
        RatePolicy("Pods", 4, 15.0),
        RatePolicy("Percent", 100, 15.0),
    )
    scale_down: tuple[RatePolicy, ...] = (RatePolicy("Percent", 100, 15.0),)

    def __post_init__(self) -> None:
        if self.capacity <= 0 or not 0 < self.target_utilization <= 1:
            raise ValueError("capacity must be > 0 and target utilisation in (0, 1]")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"bounds [{self.min_replicas}, {self.max_replicas}] are empty")
        if not self.scale_up or not self.scale_down:
            raise ValueError("at least one scale-up and one scale-down policy")

    @property
    def target_per_pod(self) -> float:
        """The request rate per pod the HPA aims at (its AverageValue target)."""
        return self.capacity * self.target_utilization


@dataclass(frozen=True)
class HpaState:
    """Everything the HPA remembers between syncs; a value, so a replay can fork it."""

    replicas: int  # the target's spec.replicas, as the HPA last set it
    recommendations: tuple[tuple[float, int], ...] = ()  # (time, proposal)
    scale_ups: tuple[tuple[float, int], ...] = ()  # (time, pods added)
    scale_downs: tuple[tuple[float, int], ...] = ()  # (time, pods removed)
    metrics: tuple[tuple[float, float | None], ...] = field(default=(), repr=False)
    started: bool = False  # the initial recommendation (current replicas) is recorded


def proposal(config: HpaConfig, current: int, rate: float) -> int:
    """The replica calculator: the count the metric asks for, before stabilisation and limits."""
    target = config.target_per_pod
    if current == 0:  # usageRatio is infinite: size for the load (External metric semantics)
        return math.ceil(rate / target - EPS)
    usage_ratio = rate / (current * target)
    if abs(1.0 - usage_ratio) <= config.tolerance:
        return current
    return math.ceil(usage_ratio * current - EPS)


def hpa_step(
    config: HpaConfig, state: HpaState, t: float, observed_rate: float | None
) -> tuple[int, HpaState]:
    """One 15 s sync at time t given the rate observed now; returns (desired, next state)."""
    metrics, visible = _lagged_metric(state.metrics, t, observed_rate, config.metric_lag)
    state = replace(state, metrics=metrics)
    if not state.started:  # recordInitialRecommendation
        state = replace(state, started=True, recommendations=((t, state.replicas),))
    current = state.replicas
    if current == 0 and config.min_replicas > 0:
        return 0, state  # Kubernetes: a target scaled to zero has autoscaling disabled
    if current > config.max_replicas:
        desired = config.max_replicas
    elif current < config.min_replicas:
        desired = config.min_replicas
    elif visible is None:
        return current, state  # no metric: the HPA errors out and keeps the count
    else:
        desired, state = _normalize(config, state, t, proposal(config, current, visible))
    return desired, _record_scale(config, state, t, current, desired)


def _lagged_metric(
    metrics: tuple[tuple[float, float | None], ...],
    t: float,
    observed: float | None,
    lag: float,
) -> tuple[tuple[tuple[float, float | None], ...], float | None]:
    """Buffer the observation at t; return the buffer and the latest value from t - lag or before.

    A missing observation at that time stays missing (None), like a failed metrics query.
    """
    buffered = (*metrics, (t, observed))
    cutoff = t - lag + EPS
    latest = -1
    for i, (when, _) in enumerate(buffered):
        if when <= cutoff:
            latest = i
    if latest < 0:
        return buffered, None  # nothing old enough yet
    return buffered[latest:], buffered[latest][1]


def _normalize(config: HpaConfig, state: HpaState, t: float, wanted: int) -> tuple[int, HpaState]:
    """normalizeDesiredReplicasWithBehaviors: stabilise, then apply the rate limits."""
    stabilized, recommendations = _stabilize(
        config, state.recommendations, t, state.replicas, wanted
    )
    state = replace(state, recommendations=recommendations)
    return _rate_limited(config, state, t, stabilized), state


def _stabilize(
    config: HpaConfig,
    recommendations: tuple[tuple[float, int], ...],
    t: float,
    current: int,
    wanted: int,
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """Lowest recent proposal when scaling up, highest when scaling down; records `wanted`."""
    scaling_up = wanted >= current
    window = config.scale_up_window if scaling_up else config.scale_down_window
    pick = min if scaling_up else max
    chosen = wanted
    for when, value in recommendations:
        if when > t - window:  # strictly inside the window, as time.After(cutoff)
            chosen = pick(chosen, value)
    oldest_useful = t - max(config.scale_up_window, config.scale_down_window)
    kept = tuple(r for r in recommendations if r[0] >= oldest_useful)
    return chosen, (*kept, (t, wanted))


def _rate_limited(config: HpaConfig, state: HpaState, t: float, wanted: int) -> int:
    """convertDesiredReplicasWithBehaviorRate: the per-period scale-up/down limits and bounds."""
    current = state.replicas
    if wanted > current:
        limit = max(current, scale_up_limit(config.scale_up, current, state.scale_ups, t))
        return min(wanted, config.max_replicas, limit)
    if wanted < current:
        limit = min(current, scale_down_limit(config.scale_down, current, state.scale_downs, t))
        return max(wanted, config.min_replicas, limit)
    return wanted


def _changed_in_period(events: Iterable[tuple[float, int]], t: float, period: float) -> int:
    return sum(change for when, change in events if when > t - period)


def scale_up_limit(
    policies: Iterable[RatePolicy], current: int, ups: Iterable[tuple[float, int]], t: float
) -> int:
    """The most replicas any policy allows now (selectPolicy Max)."""
    events = tuple(ups)
    best = -MAX_INT32
    for policy in policies:
        start = current - _changed_in_period(events, t, policy.period)
        if policy.kind == "Pods":
            proposed = start + policy.value
        else:  # the same float64 arithmetic as Kubernetes, rounding included
            proposed = math.ceil(float(start) * (1 + float(policy.value) / 100))
        best = max(best, proposed)
    return best


def scale_down_limit(
    policies: Iterable[RatePolicy], current: int, downs: Iterable[tuple[float, int]], t: float
) -> int:
    """The fewest replicas any policy allows now (selectPolicy Max = the biggest change)."""
    events = tuple(downs)
    best = MAX_INT32
    for policy in policies:
        start = current + _changed_in_period(events, t, policy.period)
        if policy.kind == "Pods":
            proposed = start - policy.value
        else:
            proposed = int(float(start) * (1 - float(policy.value) / 100))
        best = min(best, proposed)
    return best


def _record_scale(
    config: HpaConfig, state: HpaState, t: float, current: int, desired: int
) -> HpaState:
    """storeScaleEvent: remember the change for the per-period limits; forget expired ones."""
    if desired > current:
        period = max(p.period for p in config.scale_up)
        ups = tuple(e for e in state.scale_ups if e[0] > t - period)
        return replace(state, replicas=desired, scale_ups=(*ups, (t, desired - current)))
    if desired < current:
        period = max(p.period for p in config.scale_down)
        downs = tuple(e for e in state.scale_downs if e[0] > t - period)
        return replace(state, replicas=desired, scale_downs=(*downs, (t, current - desired)))
    return state


class Hpa:
    """A stateful wrapper for replay loops; `state` is the whole memory and may be replaced."""

    def __init__(self, config: HpaConfig, replicas: int) -> None:
        self.config = config
        self.state = HpaState(replicas=replicas)

    @property
    def replicas(self) -> int:
        return self.state.replicas

    def step(self, t: float, observed_rate: float | None) -> int:
        """One sync at time t with the rate observed now (None = missing); returns desired."""
        desired, self.state = hpa_step(self.config, self.state, t, observed_rate)
        return desired


def replay_hpa(
    config: HpaConfig, replicas: int, observations: Iterable[tuple[float, float | None]]
) -> list[int]:
    """Desired replicas at each (time, observed rate), starting from `replicas`."""
    hpa = Hpa(config, replicas)
    return [hpa.step(t, rate) for t, rate in observations]
