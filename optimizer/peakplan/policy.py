"""A scaling policy as the decision core sees it: plain values in seconds, cores and bytes.

The Kubernetes-facing API (peakpilot.api) is translated into these once; the controller, the CLI
and the simulator all decide from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from peakplan.problem import SLO, Budget, UtilizationSLO


@dataclass(frozen=True)
class StepLimit:
    """At most `value` pods (or percent) change per `period` seconds (HPA HPAScalingPolicy)."""

    kind: Literal["Pods", "Percent"]
    value: int
    period: float


@dataclass(frozen=True)
class ScalingRules:
    window: float  # stabilisation window, seconds
    select: Literal["Max", "Min", "Disabled"]
    limits: tuple[StepLimit, ...]


# The Kubernetes HPA v2 defaults (the baseline model's behaviour, and a user's to choose).
HPA_SCALE_UP = ScalingRules(
    0.0, "Max", (StepLimit("Percent", 100, 15.0), StepLimit("Pods", 4, 15.0))
)
HPA_SCALE_DOWN = ScalingRules(300.0, "Max", (StepLimit("Percent", 100, 15.0),))

# PeakPilot's defaults differ from the HPA's in two places, both measured on the corpus
# (docs/BENCHMARKS.md). A scale-up goes at once to what the demand needs: the HPA's doubling
# per 15 s exists to stop a runaway metric, which maxReplicas and the budget already bound, and
# a jump from 5 to 100 replicas took five steps of unserved load. A scale-down takes the highest
# recommendation of the last 10 minutes, not 5: bursts come in clusters, and the pods a burst
# needed are usually needed again within minutes.
DEFAULT_SCALE_UP = ScalingRules(0.0, "Max", ())
DEFAULT_SCALE_DOWN = ScalingRules(600.0, "Max", (StepLimit("Percent", 100, 15.0),))


# What one scale change is worth, in replica-seconds: replicas the load no longer needs are kept
# until their idle time adds up to this (one idle replica for 10 minutes, ten for one minute).
DEFAULT_CHANGE_COST = 600.0


# The share of a workload's replicas a scale change must move, after the HPA's own
# --horizontal-pod-autoscaler-tolerance (0.1): a scale-down waits until more than a tenth can
# go, and a scale-up adds at least half that (5 %), so a ramp is followed in steps rather than
# one replica at a time and small dips are not chased; a scale-up for headroom alone (the load
# fits the current replicas) waits while it is within that half.
DEFAULT_TOLERANCE = 0.1


@dataclass(frozen=True)
class Behavior:
    up: ScalingRules = DEFAULT_SCALE_UP
    down: ScalingRules = DEFAULT_SCALE_DOWN
    change_cost: float = DEFAULT_CHANGE_COST  # replica-seconds; 0: no idle hold
    tolerance: float = DEFAULT_TOLERANCE  # share of the replicas; 0: every change is made

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance {self.tolerance} must be in [0, 1)")


@dataclass(frozen=True)
class CalendarEvent:
    """A known peak. Active from start - lead - startup (pods ready at start) until end."""

    name: str
    start: float  # epoch seconds
    end: float
    lead: float = 300.0
    multiplier: float | None = None
    min_replicas: Mapping[str, int] = field(default_factory=dict)
    workloads: frozenset[str] | None = None  # multiplier applies to these (None: all)

    def applies_to(self, workload: str) -> bool:
        return self.workloads is None or workload in self.workloads


@dataclass(frozen=True)
class WorkloadPolicy:
    name: str
    min_replicas: int
    max_replicas: int
    capacity: float
    slo: SLO = field(default_factory=UtilizationSLO)
    priority: float = 1.0  # dimensionless: who keeps its SLO first when a shared limit binds
    value: float | None = None  # money/h one request/s inside the SLO is worth (opt-in trade)
    price: float = 0.0
    cpu: float = 0.0
    memory: float = 0.0
    startup: float = 60.0
    churn: float | None = None  # default: 10 % of the price per replica changed


@dataclass(frozen=True)
class MetricFailure:
    action: Literal["HoldLastKnown", "Static", "Current"] = "HoldLastKnown"
    ttl: float = 600.0
    replicas: int | None = None


@dataclass(frozen=True)
class ForecastSettings:
    method: Literal["auto", "seasonal", "trend", "reactive"] = "auto"
    history: float = 7 * 86400.0
    horizon: float = 900.0
    quantile: float = 0.9


@dataclass(frozen=True)
class SurgeSettings:
    """The surge path and the short-term model behind it (core values, not in the API).

    A surge starts when the observed load exceeds the ready pods' capacity (at 100 %) x
    `threshold`, or jumps `sigmas` recent deviations (and at least `min_jump` of the level) above
    the recent level. During a surge scale-up is not stabilised and nothing scales down; it ends
    after `calm` seconds without either sign.
    """

    threshold: float = 1.0
    sigmas: float = 4.0
    min_jump: float = 0.1
    calm: float = 180.0
    level_tau: float = 120.0  # memory of the recent level (s)
    # Memory of the recent volatility (s). Half an hour, not a quarter: a burst reads as less
    # volatility at its peak and stays in it longer, while the next burst is still likely
    # (bursts cluster), and a metric that moves every 5 minutes gives six values, not three, to
    # estimate it from. On the corpus 15 to 60 minutes score the same against the HPA frontier;
    # 30 makes fewer changes than 15 (docs/BENCHMARKS.md, "The band's memory").
    deviation_tau: float = 1800.0


@dataclass(frozen=True)
class Policy:
    workloads: tuple[WorkloadPolicy, ...]
    budget: Budget = field(default_factory=Budget)
    behavior: Behavior = field(default_factory=Behavior)
    events: tuple[CalendarEvent, ...] = ()
    on_metric_failure: MetricFailure = field(default_factory=MetricFailure)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    interval: float = 15.0  # reconcile period (s): a decision holds until the next one
    surge: SurgeSettings = field(default_factory=SurgeSettings)

    @cached_property
    def _by_name(self) -> dict[str, WorkloadPolicy]:
        return {w.name: w for w in self.workloads}

    def workload(self, name: str) -> WorkloadPolicy:
        # By name from an index built once: a search per call made a 1000-workload decision
        # quadratic (two look-ups per workload per plan).
        return self._by_name[name]
