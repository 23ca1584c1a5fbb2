"""Per-workload cost curves: what each replica count costs in the objective.

SLO first (the default): total(r) = W x priority x short(r) + price x r + churn x |r - current|

short(r) is in replicas: how many the count is below the fewest that meet the SLO (`needed`),
plus how many it is below the fewest that serve the load at all (that load is not served: it
counts twice). W (`slo_weight`, one per problem) makes a replica short of any workload's SLO
outweigh any saving of price and churn a replica step can make, so without a binding shared limit
every workload gets `needed` whatever the units of capacity and price, and `priority` (a
dimensionless weight) only decides who keeps its SLO first when a limit binds. Counting short
replicas, not requests/s, keeps the program's coefficients independent of the load's units.

Trading service for money is opt-in: a workload with a `value` (money per hour one request/s
inside the SLO is worth) has total(r) = price x r + value x penalty(r) + churn x |r - current|,
where penalty(r) is load, in requests/s, counted as served outside the SLO:
- utilisation SLO: the load above target x capacity;
- latency SLO: the load times how far the M/M/c (Erlang-C) mean response time is over the target,
  as a share of the target (at most all of it); an unstable queue counts all of it;
- either way, a count below `needed` (the fewest that meet the SLO) counts at least each missing
  replica's share of the load, demand x (needed - r) / needed. A replica is the unit one can buy:
  without this, a shortfall of a fraction of a request/s would cost less than the replica that
  removes it, and the optimum would sit just below the SLO. The share is linear in r, so the
  utilisation curve stays convex;
- plus the load above 100 % capacity once more: it is not served at all.

Only counts that beat every smaller count are candidates: a larger count that does not lower the
total only spends more of every shared budget, so it can never be part of an optimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, Protocol

from peakplan.problem import SLO, LatencySLO, UtilizationSLO, Workload
from peakplan.values import quick_init

EPS = 1e-9
REL_TOL = 1e-9  # relative tolerance on totals and slopes


class Sizing(Protocol):
    """What sizing for a load reads of a workload: its demand, one replica's capacity, its SLO."""

    @property
    def demand(self) -> float: ...
    @property
    def capacity(self) -> float: ...
    @property
    def slo(self) -> SLO: ...


class Load(NamedTuple):
    """A load to size for, without a `Workload`'s bounds and prices: the controller sizes each
    demand before it builds (and validates) the workload, at every reconcile."""

    demand: float
    capacity: float
    slo: SLO


def workers_per_replica(workload: Sizing, slo: LatencySLO) -> int:
    """Parallel workers one replica runs, from its capacity and the service time."""
    return max(1, round(workload.capacity * slo.service_time_ms / 1000.0))


def worker_rate(workload: Sizing, slo: LatencySLO) -> float:
    """Requests/s one worker completes. The replica's measured capacity is the truth for
    throughput (workers x rate = capacityPerReplica), so a queue is unstable exactly when the
    load exceeds replicas x capacity; the service time only sets the latency floor."""
    return workload.capacity / workers_per_replica(workload, slo)


def erlang_c_wait(servers: int, arrival: float, service_rate: float) -> float:
    """Mean queueing delay (seconds) of an M/M/c queue; inf when it is unstable."""
    return ErlangSweep(arrival, service_rate).wait(servers)


class ErlangSweep:
    """Erlang-C waits for a growing number of servers, in O(sqrt(offered load)) per sweep.

    Below the offered load a = arrival / rate the queue is unstable: no Erlang B is needed there.
    The first stable count starts from B(floor(a)), summed directly (`_erlang_b`); from there the
    stable recurrence B(k) = a B(k-1) / (k + a B(k-1)) adds one server at a time, and the sweep
    keeps the last B, so a sweep over rising counts costs only the servers it passes. Once B
    underflows to 0 it stays 0 (every larger count waits 0 s): the sweep stops computing. The old
    sweep ran the recurrence from 0, linear in the servers: 25 s for one latency SLO with
    capacityPerReplica 1e9, about 7 h with 1e12.
    """

    def __init__(self, arrival: float, service_rate: float) -> None:
        self.arrival = arrival
        self.rate = service_rate
        self.offered = arrival / service_rate
        self.servers = -1  # no B computed yet
        self.blocking = 1.0

    def wait(self, servers: int) -> float:
        """Mean queueing delay (seconds) with `servers` servers; inf when unstable."""
        if self.arrival <= 0:
            return 0.0
        a = self.offered
        spare = servers * self.rate - self.arrival
        if servers <= a or spare <= 0:
            return math.inf
        b = self._blocking(servers)
        wait_prob = servers * b / (servers - a * (1.0 - b))
        return wait_prob / spare

    def _blocking(self, servers: int) -> float:
        """Erlang B with `servers` (> a) servers."""
        a = self.offered
        if servers < self.servers or self.servers < 0:  # first call, or asked to go back
            self.servers = math.floor(a)
            self.blocking = _erlang_b(self.servers, a)
        b = self.blocking
        k = self.servers
        while k < servers and b > 0.0:
            k += 1
            b = a * b / (k + a * b)
        self.servers, self.blocking = servers, b
        return b


def _erlang_b(n: int, a: float) -> float:
    """Erlang B for n <= a servers: 1 / B = sum over j of n! / ((n - j)! a^j). Each term is the
    previous one times (n - j) / a <= 1, so the sum settles after O(sqrt(a)) terms."""
    total, term = 1.0, 1.0
    for j in range(n):
        term *= (n - j) / a
        total += term
        if term < total * 1e-17:
            break
    return 1.0 / total


def _late_share(workload: Sizing, slo: LatencySLO, replicas: int, sweep: ErlangSweep) -> float:
    """How far the mean response time is over the target, as a share of it, in [0, 1]."""
    wait = sweep.wait(replicas * workers_per_replica(workload, slo))
    if math.isinf(wait):
        return 1.0
    response_ms = wait * 1000.0 + slo.service_time_ms
    return min(1.0, max(0.0, response_ms - slo.latency_ms) / slo.latency_ms)


def unserved(workload: Workload, replicas: int) -> float:
    """Requests/s above 100 % capacity: not served at all."""
    return max(0.0, workload.demand - replicas * workload.capacity)


def outside_slo(workload: Workload, replicas: int) -> float:
    """Requests/s served outside the SLO (what a person reads; the objective uses `penalty`)."""
    slo = workload.slo
    if isinstance(slo, UtilizationSLO):
        return max(0.0, workload.demand - replicas * workload.capacity * slo.target)
    sweep = ErlangSweep(workload.demand, worker_rate(workload, slo))
    return workload.demand * _late_share(workload, slo, replicas, sweep)


def serving_replicas(workload: Sizing) -> int:
    """The fewest replicas that serve the load at all (at 100 %); any load needs one, however
    small (scale-to-zero only at 0)."""
    if workload.demand <= 0:
        return 0
    return max(1, math.ceil(workload.demand / workload.capacity - EPS))


def needed_replicas(workload: Sizing, limit: int = 1_000_000) -> int:
    """The fewest replicas that meet the SLO and serve all load, ignoring bounds and budgets."""
    slo = workload.slo
    if workload.demand <= 0:
        return 0
    served = serving_replicas(workload)
    if isinstance(slo, UtilizationSLO):
        return max(served, math.ceil(workload.demand / (workload.capacity * slo.target) - EPS))
    sweep = ErlangSweep(workload.demand, worker_rate(workload, slo))
    workers = workers_per_replica(workload, slo)
    start = max(1, math.floor(workload.demand / (workers * sweep.rate)))
    for r in range(start, limit):
        if _late_share(workload, slo, r, sweep) <= EPS:
            return max(r, served)
    return limit


def _penalty_fn(workload: Workload, needed: int) -> Callable[[int], float]:
    """penalty(r) for this workload; for a latency SLO, call it with non-decreasing r (fastest)."""
    demand, capacity, slo = workload.demand, workload.capacity, workload.slo
    per_missing = demand / needed if needed > 0 else 0.0

    def share(r: int) -> float:
        return per_missing * (needed - r) if r < needed else 0.0

    if isinstance(slo, UtilizationSLO):
        per_replica = capacity * slo.target

        def utilisation(r: int) -> float:
            over = max(0.0, demand - r * per_replica, share(r))
            return over + max(0.0, demand - r * capacity)

        return utilisation
    sweep = ErlangSweep(demand, worker_rate(workload, slo))

    def latency(r: int) -> float:
        over = max(demand * _late_share(workload, slo, r, sweep), share(r))
        return over + max(0.0, demand - r * capacity)

    return latency


def penalty(workload: Workload, replicas: int) -> float:
    """Requests/s counted as outside the SLO by a valued objective (see the module doc)."""
    return _penalty_fn(workload, needed_replicas(workload))(replicas)


# How many times a replica short of the SLO (at the lowest priority) outweighs the largest saving
# of price and churn one replica step can make.
SLO_FIRST = 10.0


def slo_weight(workloads: Iterable[Workload]) -> float:
    """W: the objective's weight of one replica short of the SLO at priority 1, for one problem.

    W x (lowest priority) is SLO_FIRST times the most a replica step of any workload can save
    (its price and its churn, both ways), so no saving pays for a replica short of an SLO."""
    saving, lowest = 0.0, math.inf  # one loop: plan() asks at every reconcile
    for w in workloads:
        saving = max(saving, w.price + 2.0 * w.churn)  # price and churn are >= 0
        if w.value is None and w.priority < lowest:
            lowest = w.priority
    return SLO_FIRST * max(saving, 1.0) / (lowest if lowest < math.inf else 1.0)


def _short_fn(workload: Workload, needed: int) -> Callable[[int], float]:
    """short(r): replicas below `needed`, plus replicas below those that serve the load at all."""
    served = serving_replicas(workload)

    def short(r: int) -> float:
        return float(max(0, needed - r) + max(0, served - r))

    return short


def _objective_fn(workload: Workload, needed: int, weight: float) -> Callable[[int], float]:
    """total(r) of the module doc; for a latency SLO, call it with non-decreasing r (fastest)."""
    price, churn, current = workload.price, workload.churn, workload.current
    if workload.value is not None:
        pen, scale = _penalty_fn(workload, needed), workload.value
    else:
        pen, scale = _short_fn(workload, needed), weight * workload.priority

    def total(r: int) -> float:
        return price * r + scale * pen(r) + churn * abs(r - current)

    return total


def total_cost(workload: Workload, replicas: int, weight: float | None = None) -> float:
    """The objective's value of `replicas` replicas (`weight`: the problem's W; default this
    workload's own, as when it is planned alone)."""
    w = slo_weight((workload,)) if weight is None else weight
    return _objective_fn(workload, needed_replicas(workload), w)(replicas)


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= REL_TOL * scale


@quick_init
@dataclass(frozen=True)
class Curve:
    """The candidate counts of one workload and their totals, ascending in count."""

    workload: Workload
    counts: tuple[int, ...]
    totals: tuple[float, ...]
    needed: int = 0  # fewest replicas that meet the SLO, ignoring bounds and budgets

    @property
    def best(self) -> int:
        """The count with the lowest total when no shared budget binds."""
        return self.counts[-1]

    @cached_property
    def _position(self) -> dict[int, int]:
        return {n: i for i, n in enumerate(self.counts)}

    def index(self, replicas: int) -> int:
        """Position of a candidate count; KeyError when it is not one."""
        return self._position[replicas]

    def is_candidate(self, replicas: int) -> bool:
        return replicas in self._position

    def total(self, replicas: int) -> float:
        return self.totals[self._position[replicas]]

    @cached_property
    def _scale(self) -> float:
        return max(1.0, max(abs(x) for x in self.totals))

    @cached_property
    def runs(self) -> tuple[tuple[int, int], ...]:
        """Maximal (first, last) index ranges of contiguous counts with non-decreasing slopes.

        On each run the curve is convex, so its envelope is exact there; a convex curve is one
        run. Every candidate is in exactly one run.
        """
        c, t = self.counts, self.totals
        out: list[tuple[int, int]] = []
        first = 0
        for i in range(1, len(c)):
            contiguous = c[i] == c[i - 1] + 1
            slope = t[i] - t[i - 1]
            convex = i - first < 2 or slope >= t[i - 1] - t[i - 2] - REL_TOL * self._scale
            if not (contiguous and convex):
                out.append((first, i - 1))
                first = i
        out.append((first, len(c) - 1))
        return tuple(out)

    def is_convex(self) -> bool:
        """Contiguous counts with non-decreasing slopes: the envelope form is then exact."""
        return len(self.runs) == 1

    def segments(self, first: int = 0, last: int | None = None) -> list[tuple[int, float, float]]:
        """(count, total, slope to the next count) where the slope changes on indices first..last.

        The envelope needs one line per change of slope; collinear steps share a line.
        """
        last = len(self.counts) - 1 if last is None else last
        c, t = self.counts, self.totals
        if first == last:
            return [(c[first], t[first], 0.0)]
        out: list[tuple[int, float, float]] = []
        for i in range(first, last):
            slope = (t[i + 1] - t[i]) / (c[i + 1] - c[i])
            if out:
                k, total, along = out[-1]
                # The same line as the previous segment: its slope, and the line still meets
                # this segment's end (slopes within the tolerance would drift apart over a run).
                on_line = _close(total + along * (c[i + 1] - k), t[i + 1], self._scale)
                if _close(along, slope, self._scale) and on_line:
                    continue
            out.append((c[i], t[i], slope))
        return out

    @cached_property
    def kinks(self) -> tuple[int, ...]:
        """For each index, the next index at which the slope changes or its run ends."""
        nxt = list(range(1, len(self.counts) + 1))
        for first, last in self.runs:
            starts = {self.index(k) for k, _, _ in self.segments(first, last)} | {last}
            stop = last
            for i in range(last, first - 1, -1):
                nxt[i] = stop
                if i in starts:
                    stop = i
            nxt[last] = last
        return tuple(nxt)


def build_curve(workload: Workload, weight: float | None = None) -> Curve:
    """Candidates lo..hi that strictly improve on every smaller count (`weight`: the problem's
    W, see `slo_weight`; default this workload's own)."""
    needed = needed_replicas(workload)
    # Past the current count with the SLO met, every further replica only adds cost.
    stop = min(workload.hi, max(workload.lo, workload.current, needed))
    total = _objective_fn(workload, needed, slo_weight((workload,)) if weight is None else weight)
    counts: list[int] = []
    totals: list[float] = []
    best = math.inf
    for r in range(workload.lo, stop + 1):
        value = total(r)
        if value < best - REL_TOL * max(1.0, abs(best) if counts else 1.0):
            counts.append(r)
            totals.append(value)
            best = value
    return Curve(workload, tuple(counts), tuple(totals), needed)
