"""Per-workload cost curves: what each replica count costs, in money per hour.

total(r) = price x r + priority x penalty(r) + churn x |r - current|

penalty(r) is the load, in requests/s, served outside the SLO:
- utilisation SLO: load above target x capacity, plus (again) load above 100 % capacity, which is
  not served at all; piecewise linear and convex in r;
- latency SLO: the share of requests whose M/M/c (Erlang-C) mean response time exceeds the target,
  times the load, and the unstable case counted like the utilisation one.

Only counts that beat every smaller count are candidates: a larger count that does not lower the
total only spends more of every shared budget, so it can never be part of an optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from peakplan.problem import LatencySLO, UtilizationSLO, Workload

EPS = 1e-9


def workers_per_replica(workload: Workload, slo: LatencySLO) -> int:
    """Parallel workers one replica runs, from its capacity and the service time."""
    return max(1, round(workload.capacity * slo.service_time_ms / 1000.0))


def erlang_c_wait(servers: int, arrival: float, service_rate: float) -> float:
    """Mean queueing delay (seconds) of an M/M/c queue; inf when it is unstable."""
    if arrival <= 0:
        return 0.0
    offered = arrival / service_rate
    if servers <= offered:
        return math.inf
    blocking = 1.0  # Erlang B by the stable recurrence, then Erlang C from it
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    wait_prob = servers * blocking / (servers - offered * (1.0 - blocking))
    return wait_prob / (servers * service_rate - arrival)


def penalty(workload: Workload, replicas: int) -> float:
    """Requests/s served outside the SLO with `replicas` replicas."""
    demand, capacity = workload.demand, workload.capacity
    unserved = max(0.0, demand - replicas * capacity)
    slo = workload.slo
    if isinstance(slo, UtilizationSLO):
        return max(0.0, demand - replicas * capacity * slo.target) + unserved
    workers = workers_per_replica(workload, slo)
    rate = 1000.0 / slo.service_time_ms
    wait = erlang_c_wait(replicas * workers, demand, rate)
    if math.isinf(wait):
        return demand + unserved
    response_ms = (wait + 1.0 / rate) * 1000.0
    late_share = min(1.0, max(0.0, response_ms - slo.latency_ms) / slo.latency_ms)
    return demand * late_share


def needed_replicas(workload: Workload, limit: int = 1_000_000) -> int:
    """The fewest replicas that meet the SLO, ignoring bounds and budgets."""
    slo = workload.slo
    if workload.demand <= 0:
        return 0
    if isinstance(slo, UtilizationSLO):
        return math.ceil(workload.demand / (workload.capacity * slo.target) - EPS)
    start = max(1, math.floor(workload.demand / workload.capacity))
    for r in range(start, limit):
        if penalty(workload, r) <= EPS:
            return r
    return limit


def total_cost(workload: Workload, replicas: int) -> float:
    """Money per hour of running `replicas` replicas, performance penalty and churn included."""
    return (
        workload.price * replicas
        + workload.priority * penalty(workload, replicas)
        + workload.churn * abs(replicas - workload.current)
    )


@dataclass(frozen=True)
class Curve:
    """The candidate counts of one workload and their totals, ascending in count."""

    workload: Workload
    counts: tuple[int, ...]
    totals: tuple[float, ...]

    @property
    def best(self) -> int:
        """The count with the lowest total when no shared budget binds."""
        return self.counts[-1]

    def total(self, replicas: int) -> float:
        return self.totals[self.counts.index(replicas)]

    def is_convex(self) -> bool:
        """Contiguous counts with non-decreasing slopes: the envelope form is then exact."""
        c, t = self.counts, self.totals
        if any(b - a != 1 for a, b in zip(c, c[1:], strict=False)):
            return False
        slopes = [b - a for a, b in zip(t, t[1:], strict=False)]
        scale = max(1.0, max(abs(x) for x in t))
        return all(b >= a - 1e-9 * scale for a, b in zip(slopes, slopes[1:], strict=False))

    def segments(self) -> list[tuple[int, float, float]]:
        """(count, total, slope to the next count) for each change of slope; for the envelope."""
        c, t = self.counts, self.totals
        if len(c) == 1:
            return [(c[0], t[0], 0.0)]
        scale = max(1.0, max(abs(x) for x in t))
        out: list[tuple[int, float, float]] = []
        for i in range(len(c) - 1):
            slope = t[i + 1] - t[i]
            if out and abs(out[-1][2] - slope) <= 1e-9 * scale:
                continue  # same line as the previous segment
            out.append((c[i], t[i], slope))
        return out


def build_curve(workload: Workload) -> Curve:
    """Candidates lo..hi that strictly improve on every smaller count."""
    counts: list[int] = []
    totals: list[float] = []
    best = math.inf
    met_from = max(workload.lo, workload.current)
    for r in range(workload.lo, workload.hi + 1):
        value = total_cost(workload, r)
        if value < best - 1e-9 * max(1.0, abs(best) if math.isfinite(best) else 1.0):
            counts.append(r)
            totals.append(value)
            best = value
        # Past the current count with the SLO met, every further replica only adds cost.
        if r >= met_from and penalty(workload, r) <= EPS:
            break
    return Curve(workload, tuple(counts), tuple(totals))
