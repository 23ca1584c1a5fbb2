"""The input of one allocation: workloads with their demand, bounds and prices, and a shared budget.

Plain frozen values, built by the controller (or a test) and handed to `plan()`. Everything the
solver needs is here; nothing here knows about Kubernetes or Prometheus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from peakplan.values import quick_init


@dataclass(frozen=True)
class UtilizationSLO:
    """Keep load at or below `target` x capacity (0 < target <= 1)."""

    target: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.target <= 1:
            raise ValueError(f"utilisation target {self.target} must be in (0, 1]")


@dataclass(frozen=True)
class LatencySLO:
    """Keep the mean response time (M/M/c queue) at or below `latency_ms`.

    `service_time_ms` is the mean time one worker spends on one request; a replica with
    `capacity` requests/s at 100 % then runs `capacity * service_time_ms / 1000` workers.
    """

    latency_ms: float
    service_time_ms: float

    def __post_init__(self) -> None:
        # The mean response time is at least the service time, so a target at or below it can
        # never be met, and the search for the replicas that meet it would not end.
        if not 0 < self.service_time_ms < self.latency_ms:
            raise ValueError(
                f"latency SLO: need 0 < service time ({self.service_time_ms} ms) "
                f"< latency target ({self.latency_ms} ms)"
            )


SLO = UtilizationSLO | LatencySLO


@quick_init
@dataclass(frozen=True)
class Workload:
    """One workload in one solve. `lo`/`hi` already include every floor and ceiling."""

    name: str
    demand: float  # requests/s to size for (a forecast quantile, or the last value)
    current: int  # replicas now
    lo: int
    hi: int
    capacity: float  # requests/s one replica serves at 100 % utilisation
    slo: SLO = field(default_factory=UtilizationSLO)
    priority: float = 1.0  # dimensionless: who keeps its SLO first when a shared limit binds
    # Opt-in trade of service for money: what one request/s inside the SLO is worth, money/h.
    # None (the default): SLO first, whatever the units of capacity and price.
    value: float | None = None
    price: float = 0.0  # money per replica-hour
    cpu: float = 0.0  # cores per replica (requests)
    memory: float = 0.0  # bytes per replica (requests)
    churn: float = 0.0  # money/h per replica changed, to damp flapping
    floor_reason: str = "minReplicas"  # why `lo` is what it is, for explanations
    ceiling_reason: str = "maxReplicas"  # why `hi` is what it is

    def __post_init__(self) -> None:
        if self.lo < 0 or self.hi < self.lo:
            raise ValueError(f"workload {self.name}: bounds [{self.lo}, {self.hi}] are empty")
        if not 0 < self.capacity < math.inf:
            raise ValueError(f"workload {self.name}: capacity must be > 0")
        if not 0 <= self.demand < math.inf:
            raise ValueError(f"workload {self.name}: demand must be finite and >= 0")
        if self.current < 0:
            raise ValueError(f"workload {self.name}: current replicas must be >= 0")
        # Negative prices or usages would make a larger count cheaper in some budget, and the
        # candidate pruning in curves.py relies on more replicas never using less. One chained
        # test first (a replay builds a Workload at every step); the loop names the culprit.
        inf, value = math.inf, self.value
        if not (
            0 < self.priority < inf
            and 0 <= self.price < inf
            and 0 <= self.cpu < inf
            and 0 <= self.memory < inf
            and 0 <= self.churn < inf
            and (value is None or 0 <= value < inf)
        ):
            self._amount_error()

    def _amount_error(self) -> None:
        named = {
            "priority": self.priority,
            "price": self.price,
            "cpu": self.cpu,
            "memory": self.memory,
            "churn": self.churn,
        }
        if self.value is not None:
            named["value"] = self.value
        for label, value in named.items():
            if not 0 <= value < math.inf:
                raise ValueError(f"workload {self.name}: {label} must be finite and >= 0")
        if not self.priority > 0:
            raise ValueError(f"workload {self.name}: priority must be > 0")


@dataclass(frozen=True)
class Budget:
    """Shared limits over all workloads of a policy; None means no limit."""

    max_cost_per_hour: float | None = None
    max_cpu: float | None = None  # cores
    max_memory: float | None = None  # bytes

    def __post_init__(self) -> None:
        for label, value in self.limits().items():
            if not 0 <= value < math.inf:
                raise ValueError(f"budget: the {label} limit must be finite and >= 0")

    def limits(self) -> dict[str, float]:
        """The limits that are set, by resource name."""
        # Three tests, no intermediate dict: the controller and plan() ask at every reconcile.
        out: dict[str, float] = {}
        if self.max_cost_per_hour is not None:
            out["cost"] = self.max_cost_per_hour
        if self.max_cpu is not None:
            out["cpu"] = self.max_cpu
        if self.max_memory is not None:
            out["memory"] = self.max_memory
        return out


@quick_init
@dataclass(frozen=True)
class Problem:
    workloads: tuple[Workload, ...]
    budget: Budget = field(default_factory=Budget)

    def __post_init__(self) -> None:
        names = [w.name for w in self.workloads]
        if len(set(names)) != len(names):
            raise ValueError("workload names must be unique")


def usage(workload: Workload, resource: str, replicas: int) -> float:
    """How much of a shared resource `replicas` replicas of `workload` use."""
    per_replica = {"cost": workload.price, "cpu": workload.cpu, "memory": workload.memory}
    return per_replica[resource] * replicas
