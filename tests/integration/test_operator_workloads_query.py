"""spec.prometheus.workloadsQuery against a real Prometheus: every load from one instant query
(plus its freshness check) and every forecast's history from one range query; a workload the
answer carries twice reads its own load.query, one it lacks (without a query of its own) is held.
In-process reconciles (`peakpilot.reconcile.reconcile`) against the emulated API server."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from harness import EmulatedCluster, PrometheusFactory, Series
from harness.peakpilot import RecordingProxy, deployment, policy, replicas, workload

from peakpilot.kube import Kube
from peakpilot.reconcile import PolicyState, reconcile

pytestmark = pytest.mark.integration

NS = "shop"
GAUGE = "app_load_requests_per_second"
BULK = GAUGE  # one series per app, no aggregation: two series that share an app stay two


def test_one_query_reads_every_load_and_one_range_query_warms_every_forecast(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    end = math.floor(time.time() / 60) * 60  # the last sample under a minute old: fresh
    start = end - 2 * 3600
    loads = {f"w{i}": 40.0 * (i + 1) for i in range(20)}  # 1 to 20 replicas' worth at 80 %

    def constant(value: float) -> Any:
        return lambda t: value

    history = [
        Series.from_function(GAUGE, {"app": app}, constant(v), start=start, end=end, step=60)
        for app, v in loads.items()
    ]
    # "dup" is carried by two series (two zones): refused, its own query is read instead.
    history += [
        Series.from_function(
            GAUGE, {"app": "dup", "zone": z}, constant(80.0), start=start, end=end, step=60
        )
        for z in ("a", "b")
    ]
    server = prometheus_factory(history=history)
    names = [*loads, "dup", "gone"]
    for name in names:
        kube_api.create(deployment(NS, name, 6))
    specs = [{k: v for k, v in workload(n).items() if k != "load"} for n in loads]
    specs.append(workload("dup", query=f'sum({GAUGE}{{app="dup"}})'))  # 160 rps in all
    specs.append({k: v for k, v in workload("gone").items() if k != "load"})  # no series
    with RecordingProxy(server.url) as proxy:
        kube_api.create(
            policy(
                NS,
                "peak",
                proxy.url,
                specs,
                prometheus={
                    "url": proxy.url,
                    "timeout": "5s",
                    "workloadsQuery": {"query": BULK, "label": "app"},
                },
                forecast={"method": "auto", "history": "2h"},
            )
        )
        body = kube_api.stored("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")
        state = PolicyState()
        outcome = reconcile(Kube(kube_client), body, state)
        assert outcome.decision is not None
        for app, value in loads.items():
            assert outcome.decision.input(app).load == pytest.approx(value)
        assert outcome.decision.input("dup").load == pytest.approx(160.0)
        gone = outcome.decision.input("gone")
        assert gone.load is None and gone.source != "observed"
        # One instant query, its freshness check, one range query for the forecasts, and
        # dup's own instant query, its freshness check and its own range query: six in all.
        seen = [path.split("?")[0] for path, _ in proxy.requests("/api/v1/")]
        assert sorted(seen) == sorted(["/api/v1/query"] * 4 + ["/api/v1/query_range"] * 2), seen
        assert state.warmed >= set(loads) and "dup" in state.warmed
        forecaster = state.memory.of("w3").forecaster
        assert forecaster is not None and forecaster.state.first_time is not None
        assert forecaster.state.first_time < end - 3600  # warmed from the history

        # The second reconcile: the bulk query and its freshness check, dup's own two.
        before = len(proxy.requests("/api/v1/"))
        reconcile(Kube(kube_client), body, state)
        assert len(proxy.requests("/api/v1/")) - before == 4
    assert replicas(kube_api, NS, "w9") >= 13  # 400 rps at 40 a replica and 80 %: 12.5
    assert replicas(kube_api, NS, "gone") == 6  # no load: held, never scaled down
