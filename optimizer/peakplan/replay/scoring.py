"""Scoring a controller's decisions on a trace: DESIGN section 5, the contract of `simulate`.

Per replay step k (time k x step from the trace start) a controller has decided `desired[k]`
replicas for a demand of `demand[k]` requests/s (constant within the step). Then:

- a pod asked for at step k is billed from k and serves from the first step at or after
  k x step + startup (exactly k + startup / step when the startup is a multiple of the step);
- scale-down is immediate and removes the newest pods first, as a ReplicaSet deletes not-ready
  pods before ready ones: a pod removed before it was ready never serves;
- unserved(k) = max(0, demand(k) - ready(k) x capacity);
- the oracle runs exactly max(minReplicas, ceil(demand / capacity)) ready pods in every step,
  started ahead of time, so it is billed for exactly those.

The pods running before the first step (`initial_replicas`, default `desired[0]`) are ready.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MINUTE = 60.0
EPS = 1e-9


@dataclass(frozen=True)
class Score:
    """The summary of one controller on one workload (or, from `total`, on several)."""

    billed_replica_seconds: float
    oracle_replica_seconds: float
    unserved_requests: float
    total_requests: float
    overloaded_minutes: frozenset[int]  # minute indices from the trace start with unserved > 0
    scale_changes: int
    ready: tuple[int, ...] = field(default=(), repr=False)  # ready pods per step
    unserved: tuple[float, ...] = field(default=(), repr=False)  # unserved requests/s per step

    @property
    def cost_ratio(self) -> float:
        """Billed / oracle replica-seconds; 1 when both are 0, inf when only the oracle is."""
        if self.oracle_replica_seconds <= 0:
            return 1.0 if self.billed_replica_seconds <= 0 else math.inf
        return self.billed_replica_seconds / self.oracle_replica_seconds

    @property
    def unserved_pct(self) -> float:
        """Unserved requests as a percentage of all requests (0 when there were none)."""
        if self.total_requests <= 0:
            return 0.0
        return 100.0 * self.unserved_requests / self.total_requests

    @property
    def overload_minutes(self) -> int:
        return len(self.overloaded_minutes)

    def as_dict(self) -> dict[str, float | int]:
        """The summary object `S` of DESIGN section 5, with exactly its keys."""
        return {
            "billed_replica_seconds": self.billed_replica_seconds,
            "oracle_replica_seconds": self.oracle_replica_seconds,
            "cost_ratio": self.cost_ratio,
            "unserved_pct": self.unserved_pct,
            "overload_minutes": self.overload_minutes,
            "scale_changes": self.scale_changes,
        }


def score(
    step: float,
    demand: Sequence[float],
    desired: Sequence[int],
    *,
    startup: float,
    capacity: float,
    min_replicas: int = 0,
    initial_replicas: int | None = None,
) -> Score:
    """Score `desired` replicas per step against `demand` requests/s per step."""
    _check_inputs(step, demand, desired, startup, capacity, min_replicas)
    initial = desired[0] if initial_replicas is None else initial_replicas
    if initial < 0:
        raise ValueError("initial_replicas must be >= 0")
    ready = ready_series(desired, step, startup, initial)
    unserved = tuple(
        max(0.0, rate - pods * capacity) for rate, pods in zip(demand, ready, strict=True)
    )
    return Score(
        billed_replica_seconds=sum(desired) * step,
        oracle_replica_seconds=sum(oracle_replicas(r, capacity, min_replicas) for r in demand)
        * step,
        unserved_requests=sum(unserved) * step,
        total_requests=sum(demand) * step,
        overloaded_minutes=overloaded_minutes(unserved, step),
        scale_changes=scale_changes(desired, initial),
        ready=ready,
        unserved=unserved,
    )


def ready_series(
    desired: Sequence[int], step: float, startup: float, initial_replicas: int
) -> tuple[int, ...]:
    """Ready pods per step: new pods serve `startup` later, removals take the newest first."""
    pods = PodModel(step, startup, initial_replicas)
    return tuple(pods.scale(k, want) for k, want in enumerate(desired))


class PodModel:
    """The pods of one workload, step by step, as the scorer counts them.

    A replay uses the same model online: `ready(k)` is what a controller observes at step k
    before it decides, `scale(k, desired)` applies the decision and returns the pods ready at k.
    Steps must be visited in order.
    """

    def __init__(self, step: float, startup: float, initial_replicas: int) -> None:
        self.delay = math.ceil(startup / step - EPS) if startup > 0 else 0
        # Cohorts (first step serving, pods), oldest first; ready steps never decrease up the stack.
        self.cohorts: list[list[int]] = [[0, initial_replicas]] if initial_replicas else []
        self.running = initial_replicas

    def ready(self, k: int) -> int:
        """Pods serving at step k with no change made at k."""
        return self.running - _not_ready(self.cohorts, k)

    def scale(self, k: int, want: int) -> int:
        """Run `want` pods from step k on; the pods ready at k."""
        if want > self.running:
            self.cohorts.append([k + self.delay, want - self.running])
        elif want < self.running:
            _remove_newest(self.cohorts, self.running - want)
        self.running = want
        # Serving pods are all alike (removals only need a count): one cohort keeps it short.
        while len(self.cohorts) > 1 and self.cohorts[1][0] <= k:
            self.cohorts[0][1] += self.cohorts.pop(1)[1]
        return self.ready(k)


def _remove_newest(cohorts: list[list[int]], pods: int) -> None:
    while pods > 0:
        top = cohorts[-1]
        taken = min(pods, top[1])
        top[1] -= taken
        pods -= taken
        if top[1] == 0:
            cohorts.pop()


def _not_ready(cohorts: Sequence[list[int]], k: int) -> int:
    """Pods still starting at step k; they are the newest, so only the top is walked."""
    waiting = 0
    for first_serving, pods in reversed(cohorts):
        if first_serving <= k:
            break
        waiting += pods
    return waiting


def oracle_replicas(rate: float, capacity: float, min_replicas: int) -> int:
    """The fewest pods that serve `rate` (requests/s) in full, and at least minReplicas."""
    return max(min_replicas, math.ceil(rate / capacity - EPS) if rate > 0 else 0)


def overloaded_minutes(unserved: Sequence[float], step: float) -> frozenset[int]:
    """The 60 s buckets (from the trace start) that any step with unserved load overlaps."""
    minutes: set[int] = set()
    for k, value in enumerate(unserved):
        if value > EPS:
            first = math.floor(k * step / MINUTE + EPS)
            last = math.ceil((k + 1) * step / MINUTE - EPS)
            minutes.update(range(first, max(first + 1, last)))
    return frozenset(minutes)


def scale_changes(desired: Sequence[int], initial_replicas: int) -> int:
    """Steps whose desired count differs from the previous step's (or the initial count)."""
    changes = 0
    previous = initial_replicas
    for want in desired:
        changes += want != previous
        previous = want
    return changes


def total(scores: Iterable[Score]) -> Score:
    """Several workloads as one: seconds and requests summed, ratios recomputed from the sums.

    An overload minute is a wall-clock minute in which any workload was overloaded (the union),
    so the workloads must share the same trace start. Per-step series are not combined.
    """
    items = list(scores)
    return Score(
        billed_replica_seconds=sum(s.billed_replica_seconds for s in items),
        oracle_replica_seconds=sum(s.oracle_replica_seconds for s in items),
        unserved_requests=sum(s.unserved_requests for s in items),
        total_requests=sum(s.total_requests for s in items),
        overloaded_minutes=frozenset().union(*(s.overloaded_minutes for s in items)),
        scale_changes=sum(s.scale_changes for s in items),
    )


# The HPA targets the frontier ratio compares against (docs/scoring.md).
FRONTIER_TARGETS = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30, 0.35, ... 0.95


def frontier_ratio(cost: float, unserved: float, hpa: Mapping[float, tuple[float, float]]) -> float:
    """R = `cost` / the cost of the cheapest HPA setting whose unserved load is not above ours.

    `hpa` maps a target utilisation to its (cost, unserved), in the same units as `cost` and
    `unserved` (replica-seconds or cost ratios; requests or percent). A tie in unserved load
    (within float noise) counts as "not above". R < 1: cheaper than every HPA setting that serves
    as well. When we leave more unserved than every setting, R is inf: beyond the end of the
    curve nothing shows we beat it. When we leave less than every setting, none serves as well,
    and R compares with the setting that serves best (the cheapest of those if several tie).
    """
    if not hpa:
        raise ValueError("the frontier needs at least one HPA setting")
    points = list(hpa.values())
    slack = EPS * max(1.0, abs(unserved))
    if all(u < unserved - slack for _, u in points):
        return math.inf
    costs = [c for c, u in points if u <= unserved + slack]
    if not costs:  # we serve better than every setting: compare with the one that serves best
        least = min(u for _, u in points)
        costs = [c for c, u in points if u <= least + EPS * max(1.0, abs(least))]
    cheapest = min(costs)
    if cheapest <= 0:
        return 1.0 if cost <= 0 else math.inf
    return cost / cheapest


def interpolated_frontier_ratio(
    cost: float, unserved: float, hpa: Mapping[float, tuple[float, float]]
) -> float:
    """Rc: R without the step between HPA targets. `cost` / the HPA's cost at our unserved load,
    read on the curve's efficient settings (none both cheaper and serving as well) joined by
    straight lines, cost linear in unserved load between the two that bracket ours.

    R compares with the cheapest setting that serves at least as well, so a small change in our
    unserved load that crosses a setting moves R by a whole step of the grid; Rc moves with it
    in proportion. Rc >= R; they are equal on a setting and beyond either end of the curve
    (where Rc follows R's rules).
    """
    if not hpa:
        raise ValueError("the frontier needs at least one HPA setting")
    efficient: list[tuple[float, float]] = []  # (unserved, cost), unserved up, cost down
    for c, u in sorted(hpa.values(), key=lambda cu: (cu[1], cu[0])):
        if not efficient or c < efficient[-1][1]:
            efficient.append((u, c))
    slack = EPS * max(1.0, abs(unserved))
    first_u, last_u = efficient[0][0], efficient[-1][0]
    if unserved <= first_u + slack or unserved >= last_u - slack:
        return frontier_ratio(cost, unserved, hpa)
    for (u0, c0), (u1, c1) in itertools.pairwise(efficient):
        if u0 <= unserved <= u1:
            # > 0: efficient costs fall strictly, and our load is short of the last setting's
            return cost / (c0 + (c1 - c0) * (unserved - u0) / (u1 - u0))
    raise AssertionError("unreachable: the load lies between the curve's ends")


def _check_inputs(
    step: float,
    demand: Sequence[float],
    desired: Sequence[int],
    startup: float,
    capacity: float,
    min_replicas: int,
) -> None:
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be > 0 seconds, got {step}")
    if len(demand) != len(desired):
        raise ValueError(f"{len(demand)} demand steps but {len(desired)} desired steps")
    if not demand:
        raise ValueError("nothing to score: no steps")
    if not (math.isfinite(startup) and startup >= 0):
        raise ValueError(f"startup must be >= 0 seconds, got {startup}")
    if not (math.isfinite(capacity) and capacity > 0):
        raise ValueError(f"capacity must be > 0, got {capacity}")
    if min_replicas < 0:
        raise ValueError("min_replicas must be >= 0")
    for k, rate in enumerate(demand):
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"step {k}: demand must be finite and >= 0, got {rate}")
    for k, want in enumerate(desired):
        if want < 0:
            raise ValueError(f"step {k}: desired replicas must be >= 0, got {want}")
