"""The baseline controller: the Kubernetes HPA v2 algorithm with its default behaviour.

Mirrors `pkg/controller/podautoscaler` (horizontal.go, replica_calculator.go) for one metric,
the request rate per pod (an External/Pods metric with an AverageValue target):

- the target per pod is capacity x target utilisation (default 0.7);
- usageRatio = observed rate / (current replicas x target per pod); inside the 10 % tolerance
  the proposal is the current count, otherwise ceil(current x usageRatio);
- stabilisation: a scale-up proposal takes the lowest recommendation of the scale-up window
  (0 s by default), a scale-down proposal the highest of the last 300 s;
- rate limits: up by at most max(+4 pods, +100 %) per 15 s, down by 100 % per 15 s (no limit):
  `behavior`'s step limits and the HPA's defaults (`policy.HPA_SCALE_UP/DOWN`), in
  Kubernetes' float64 arithmetic, each direction counting only its own recent changes;
- then [minReplicas, maxReplicas]; metric failures (a missing observation) change nothing;
- the metric the HPA acts on at t is the rate observed at t - 30 s (metrics pipeline lag).

The controller is a pure function of (config, state, t, observation); `Hpa` wraps it for loops.
Feed it the observation *at* t: the lag is applied here, not by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from peakplan.behavior import scale_down_limit, scale_up_limit
from peakplan.policy import HPA_SCALE_DOWN, HPA_SCALE_UP, ScalingRules

EPS = 1e-9
MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class HpaConfig:
    capacity: float  # requests/s one replica serves at 100 %
    target_utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = MAX_INT32
    tolerance: float = 0.1
    metric_lag: float = 30.0  # seconds between the load and the metric the HPA sees
    scale_up: ScalingRules = HPA_SCALE_UP  # stabilisation window and step limits
    scale_down: ScalingRules = HPA_SCALE_DOWN

    def __post_init__(self) -> None:
        if self.capacity <= 0 or not 0 < self.target_utilization <= 1:
            raise ValueError("capacity must be > 0 and target utilisation in (0, 1]")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"bounds [{self.min_replicas}, {self.max_replicas}] are empty")
        if not self.scale_up.limits or not self.scale_down.limits:
            raise ValueError("at least one scale-up and one scale-down step limit")

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
    scale_downs: tuple[tuple[float, int], ...] = ()  # (time, -pods removed): signed changes
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
    work = _Work(state)
    desired = _sync(config, work, t, observed_rate)
    return desired, work.freeze()


class _Work:
    """A mutable copy of an `HpaState` that `_sync` updates in place: a replay steps the HPA
    tens of thousands of times, and rebuilding the frozen state at every step cost more than
    the algorithm itself. `hpa_step` and `Hpa` run the same `_sync`."""

    __slots__ = ("metrics", "recommendations", "replicas", "scale_downs", "scale_ups", "started")

    def __init__(self, state: HpaState) -> None:
        self.replicas = state.replicas
        self.recommendations = list(state.recommendations)
        self.scale_ups = list(state.scale_ups)
        self.scale_downs = list(state.scale_downs)
        self.metrics = list(state.metrics)
        self.started = state.started

    def freeze(self) -> HpaState:
        return HpaState(
            replicas=self.replicas,
            recommendations=tuple(self.recommendations),
            scale_ups=tuple(self.scale_ups),
            scale_downs=tuple(self.scale_downs),
            metrics=tuple(self.metrics),
            started=self.started,
        )


def _sync(config: HpaConfig, state: _Work, t: float, observed_rate: float | None) -> int:
    visible = _lagged_metric(state.metrics, t, observed_rate, config.metric_lag)
    if not state.started:  # recordInitialRecommendation
        state.started = True
        state.recommendations = [(t, state.replicas)]
    current = state.replicas
    if current == 0 and config.min_replicas > 0:
        return 0  # Kubernetes: a target scaled to zero has autoscaling disabled
    if current > config.max_replicas:
        desired = config.max_replicas
    elif current < config.min_replicas:
        desired = config.min_replicas
    elif visible is None:
        return current  # no metric: the HPA errors out and keeps the count
    else:
        desired = _normalize(config, state, t, proposal(config, current, visible))
    _record_scale(config, state, t, current, desired)
    return desired


def _lagged_metric(
    metrics: list[tuple[float, float | None]], t: float, observed: float | None, lag: float
) -> float | None:
    """Buffer the observation at t; the latest value from t - lag or before (older ones go).

    A missing observation at that time stays missing (None), like a failed metrics query.
    """
    metrics.append((t, observed))
    cutoff = t - lag + EPS
    latest = -1
    for i, (when, _) in enumerate(metrics):
        if when <= cutoff:
            latest = i
    if latest < 0:
        return None  # nothing old enough yet
    del metrics[:latest]
    return metrics[0][1]


def _normalize(config: HpaConfig, state: _Work, t: float, wanted: int) -> int:
    """normalizeDesiredReplicasWithBehaviors: stabilise, then apply the rate limits."""
    stabilized = _stabilize(config, state.recommendations, t, state.replicas, wanted)
    return _rate_limited(config, state, t, stabilized)


def _stabilize(
    config: HpaConfig,
    recommendations: list[tuple[float, int]],
    t: float,
    current: int,
    wanted: int,
) -> int:
    """stabilizeRecommendationWithBehaviors: the current count, raised to the lowest proposal of
    the scale-up window and lowered to the highest of the scale-down window (each window with
    `wanted` in it); records `wanted`. So a scale-up never returns fewer than the current count,
    and a scale-down never more."""
    up = down = wanted
    up_since, down_since = t - config.scale_up.window, t - config.scale_down.window
    for when, value in recommendations:  # strictly inside a window, as time.After(cutoff)
        # Comparisons, not min() and max(): this loop runs over the window at every sync.
        if when > up_since and value < up:
            up = value
        if when > down_since and value > down:
            down = value
    chosen = current
    if chosen < up:
        chosen = up
    if chosen > down:
        chosen = down
    oldest_useful = t - max(config.scale_up.window, config.scale_down.window)
    if recommendations and recommendations[0][0] < oldest_useful:  # oldest first
        recommendations[:] = [r for r in recommendations if r[0] >= oldest_useful]
    recommendations.append((t, wanted))
    return chosen


def _rate_limited(config: HpaConfig, state: _Work, t: float, wanted: int) -> int:
    """convertDesiredReplicasWithBehaviorRate: the per-period scale-up/down limits and bounds."""
    current = state.replicas
    if wanted > current:
        limit = scale_up_limit(current, config.scale_up, state.scale_ups, t, float64=True)
        return min(wanted, config.max_replicas, limit)
    if wanted < current:
        limit = scale_down_limit(current, config.scale_down, state.scale_downs, t, float64=True)
        return max(wanted, config.min_replicas, limit)
    return wanted


def _record_scale(config: HpaConfig, state: _Work, t: float, current: int, desired: int) -> None:
    """storeScaleEvent: remember the change for the per-period limits; forget expired ones."""
    if desired > current:
        period = max(p.period for p in config.scale_up.limits)
        state.scale_ups[:] = [e for e in state.scale_ups if e[0] > t - period]
        state.scale_ups.append((t, desired - current))
    elif desired < current:
        period = max(p.period for p in config.scale_down.limits)
        state.scale_downs[:] = [e for e in state.scale_downs if e[0] > t - period]
        state.scale_downs.append((t, desired - current))
    state.replicas = desired


class Hpa:
    """A stateful wrapper for replay loops; `state` is the whole memory and may be replaced."""

    def __init__(self, config: HpaConfig, replicas: int) -> None:
        self.config = config
        self._work = _Work(HpaState(replicas=replicas))

    @property
    def state(self) -> HpaState:
        return self._work.freeze()

    @state.setter
    def state(self, value: HpaState) -> None:
        self._work = _Work(value)

    @property
    def replicas(self) -> int:
        return self._work.replicas

    def step(self, t: float, observed_rate: float | None) -> int:
        """One sync at time t with the rate observed now (None = missing); returns desired."""
        return _sync(self.config, self._work, t, observed_rate)


def replay_hpa(
    config: HpaConfig, replicas: int, observations: Iterable[tuple[float, float | None]]
) -> list[int]:
    """Desired replicas at each (time, observed rate), starting from `replicas`."""
    hpa = Hpa(config, replicas)
    return [hpa.step(t, rate) for t, rate in observations]
