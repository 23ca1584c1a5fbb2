"""The bounded Erlang-C sweep against the linear one it replaced, and its cost on huge queues."""

from __future__ import annotations

import math
import time

import pytest

from peakplan.curves import ErlangSweep, build_curve, needed_replicas, workers_per_replica
from peakplan.problem import LatencySLO, Workload


class LinearSweep:
    """The sweep as it was: the Erlang B recurrence from 0 servers, one server at a time."""

    def __init__(self, arrival: float, service_rate: float) -> None:
        self.arrival, self.rate = arrival, service_rate
        self.offered = arrival / service_rate
        self.servers, self.blocking = 0, 1.0

    def wait(self, servers: int) -> float:
        if self.arrival <= 0:
            return 0.0
        if servers < self.servers:
            self.servers, self.blocking = 0, 1.0
        a, b = self.offered, self.blocking
        for k in range(self.servers + 1, servers + 1):
            b = a * b / (k + a * b)
        self.servers, self.blocking = servers, b
        spare = servers * self.rate - self.arrival
        if servers <= a or spare <= 0:
            return math.inf
        wait_prob = servers * b / (servers - a * (1.0 - b))
        return wait_prob / spare


@pytest.mark.parametrize("arrival", [0.0, 0.3, 1.0, 3.7, 10.0, 99.5, 250.0, 1234.5])
@pytest.mark.parametrize("rate", [0.5, 1.0, 7.0])
def test_waits_match_the_linear_sweep_rising_falling_and_past_underflow(
    arrival: float, rate: float
) -> None:
    new, old = ErlangSweep(arrival, rate), LinearSweep(arrival, rate)
    a = arrival / rate
    top = math.ceil(a) + 60 * math.ceil(math.sqrt(a) + 1) + 50
    counts = [*range(1, top, max(1, top // 300)), top * 3, 5, 2, math.ceil(a) + 1]
    for servers in counts:
        want, got = old.wait(servers), new.wait(servers)
        if math.isinf(want):
            assert math.isinf(got), servers
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-300), servers


def _latency_workload(demand: float, capacity: float, service_ms: float, **kw: object) -> Workload:
    slo = LatencySLO(latency_ms=service_ms * 2.5, service_time_ms=service_ms)
    return Workload("w", demand, current=1, lo=0, hi=100_000, capacity=capacity, slo=slo, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("demand", "capacity", "service_ms"),
    [(50, 40, 100), (180, 40, 100), (1, 10, 50), (900, 25, 200), (3000, 120, 20), (7, 0.5, 900)],
)
def test_needed_replicas_and_curves_are_those_of_the_linear_sweep(
    demand: float, capacity: float, service_ms: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _latency_workload(demand, capacity, service_ms, price=0.2, priority=3.0)
    now = (needed_replicas(w), build_curve(w))
    import peakplan.curves as curves

    monkeypatch.setattr(curves, "ErlangSweep", LinearSweep)
    before = (needed_replicas(w), build_curve(w))
    assert now[0] == before[0]
    assert now[1].counts == before[1].counts
    assert now[1].totals == pytest.approx(before[1].totals, rel=1e-9)


def test_a_huge_queue_costs_a_fraction_of_a_second() -> None:
    # 1e4 workers per replica (the API's most) and 1e9 requests/s: an offered load of 1e8
    # servers, which the linear sweep walked one by one (minutes).
    w = _latency_workload(1e9, 1e5, 100.0)
    assert workers_per_replica(w, w.slo) == 10_000  # type: ignore[arg-type]
    started = time.perf_counter()
    needed = needed_replicas(w)
    curve = build_curve(w)
    took = time.perf_counter() - started
    assert 10_000 < needed < 10_100  # a + O(sqrt a) servers, in replicas of 1e4 workers
    assert curve.best == needed
    assert took < 2.0, took
