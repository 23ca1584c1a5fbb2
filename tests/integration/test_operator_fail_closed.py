"""Fail closed: what the operator cannot know, it does not act on. One reconcile in-process
(`peakpilot.reconcile.reconcile`, what the operator's loop runs) against the emulated API server
and a real, backfilled Prometheus: an ownership listing that fails holds the workload; missing
data never scales down, even above maxReplicas; a sample older than the limit is stale.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from harness import EmulatedCluster, Fault, PrometheusFactory, Series, free_port
from harness.peakpilot import deployment, policy, replica_history, workload

from peakpilot.kube import Kube
from peakpilot.reconcile import Outcome, PolicyState, reconcile

pytestmark = pytest.mark.integration

NS = "shop"
GAUGE = "app_load_requests_per_second"


def run(kube_api: EmulatedCluster, kube: Kube, state: PolicyState) -> Outcome:
    body = kube_api.stored("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")
    return reconcile(kube, body, state)


def messages(outcome: Outcome) -> dict[str, str]:
    return {c["type"]: c["message"] for c in outcome.status["conditions"]}


def backfilled_load(factory: PrometheusFactory, load: float, *, age: float = 60.0) -> str:
    """A Prometheus whose last sample of each app's gauge is `age` seconds old (whole minutes
    before that, for 15 minutes): ready at once, exact values. Returns its URL."""
    end = math.floor((time.time() - age) / 60) * 60
    series = [
        Series.from_function(GAUGE, {"app": app}, lambda t: load, start=end - 900, end=end, step=60)
        for app in ("checkout", "cart")
    ]
    return factory(history=series).url


@pytest.mark.parametrize(
    ("status", "plural"),
    [(403, "horizontalpodautoscalers"), (500, "horizontalpodautoscalers"), (403, "scaledobjects")],
    ids=["hpa-403", "hpa-500", "scaledobject-403"],
)
def test_a_failed_ownership_listing_holds_the_workload(
    kube_api: EmulatedCluster,
    kube_client: Any,
    prometheus_factory: PrometheusFactory,
    status: int,
    plural: str,
) -> None:
    # 400 rps would take checkout from 2 to 13 and cart (idle load) from 20 down to 1.
    url = backfilled_load(prometheus_factory, 400)
    kube_api.register_resource("keda.sh/v1alpha1", "scaledobjects", "ScaledObject")
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(deployment(NS, "cart", 20))
    idle = workload("cart", query='sum(app_load_requests_per_second{app="cart"}) * 0')
    kube_api.create(policy(NS, "peak", url, [workload("checkout"), idle]))
    fault = kube_api.fail(Fault(status=status, method="GET", plural=plural, times=None))
    kube, state = Kube(kube_client), PolicyState()

    held = run(kube_api, kube, state)
    assert fault.hits == 1  # listed once per reconcile
    assert replica_history(kube_api, NS, "checkout") == [2]
    assert replica_history(kube_api, NS, "cart") == [20]
    assert held.status["conditions"][0]["reason"] == "WorkloadProblems"
    ready = messages(held)["Ready"]
    assert "checkout: held: the ownership check failed" in ready
    assert "cart: held: the ownership check failed" in ready
    planned = {w["name"]: w for w in held.status["lastPlan"]["workloads"]}
    assert planned["cart"]["desired"] == 20 and "ownership unknown" in planned["cart"]["reason"]
    assert [e.reason for e in held.events] == ["WorkloadProblems"]

    # The listing answers again: the plan is applied.
    fault.times = 0
    run(kube_api, kube, state)
    assert replica_history(kube_api, NS, "checkout") == [2, 13]
    assert replica_history(kube_api, NS, "cart") == [20, 1]


def test_missing_load_above_max_replicas_keeps_current(
    kube_api: EmulatedCluster, kube_client: Any
) -> None:
    # 80 replicas (someone scaled it by hand), maxReplicas 50, Prometheus unreachable: the
    # operator applies the CLI's rule and keeps 80 (it used to cut to 50).
    nothing_there = f"http://127.0.0.1:{free_port()}"
    kube_api.create(deployment(NS, "checkout", 80))
    kube_api.create(policy(NS, "peak", nothing_there, [workload("checkout", max_replicas=50)]))
    outcome = run(kube_api, Kube(kube_client), PolicyState())
    assert replica_history(kube_api, NS, "checkout") == [80]
    (planned,) = outcome.status["lastPlan"]["workloads"]
    assert (planned["current"], planned["desired"]) == (80, 80)
    assert "no scale-down on missing data, even above maxReplicas" in planned["reason"]


@pytest.mark.parametrize(
    "query",
    ['sum(app_load_requests_per_second{app="checkout"})', "sum(rate(requests_total[5m]))"],
    ids=["gauge", "rate-of-counter"],
)
def test_a_sample_older_than_the_limit_is_stale_though_prometheus_returns_it(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory, query: str
) -> None:
    # The newest samples are 200-210 s old: past the 120 s limit, inside Prometheus' 5 min
    # lookback, so the instant query answers (stamped with the evaluation time, not the
    # sample's); only the samples' own timestamps show the age.
    end = math.floor((time.time() - 200) / 10) * 10
    series = [
        Series.from_function(
            GAUGE, {"app": "checkout"}, lambda t: 400, start=end - 600, end=end, step=10
        ),
        Series.from_function(
            "requests_total",
            {},
            lambda t: 400 * t,
            start=end - 600,
            end=end,
            step=10,
            kind="counter",
        ),
    ]
    server = prometheus_factory(history=series)
    assert server.query_value(query) is not None  # Prometheus itself answers with a value

    kube_api.create(deployment(NS, "checkout", 20))
    kube_api.create(policy(NS, "peak", server.url, [workload("checkout", query=query)]))
    outcome = run(kube_api, Kube(kube_client), PolicyState())
    assert outcome.decision is not None and outcome.decision.input("checkout").load is None
    metrics = messages(outcome)["MetricsAvailable"]
    assert re.search(r"the newest sample is 2\d\ds old \(stale, limit 120s\)", metrics), metrics
    assert replica_history(kube_api, NS, "checkout") == [20]
