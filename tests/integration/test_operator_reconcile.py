"""Focused checks of one reconcile (`peakpilot.reconcile.reconcile`, what the operator's loop
runs in a worker thread) against the emulated API server and a real, backfilled Prometheus:
credentials from Secrets, the forecast warmed from history, onMetricFailure, the greedy
fallback, and optimistic concurrency on /scale. In-process: cheaper than a process per case, and
the core's state (`PolicyState`) can be inspected.
"""

from __future__ import annotations

import base64
import math
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import EmulatedCluster, Fault, PrometheusFactory, PrometheusServer, Series, free_port
from harness.peakpilot import (
    FAST_BEHAVIOR,
    RecordingProxy,
    deployment,
    policy,
    replica_history,
    replicas,
    secret,
    self_signed_certificate,
    workload,
)

from peakpilot.kube import Kube, Target
from peakpilot.reconcile import Outcome, PolicyState, reconcile
from peakplan.planner import SolveOptions

pytestmark = pytest.mark.integration

NS = "shop"
GAUGE = "app_load_requests_per_second"


def conditions(outcome: Outcome) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in outcome.status["conditions"]}


def run(
    kube_api: EmulatedCluster,
    kube: Kube,
    state: PolicyState,
    name: str = "peak",
    options: SolveOptions | None = None,
) -> Outcome:
    body = kube_api.stored("peakpilot.io/v1alpha1", "scalingpolicies", NS, name)
    return reconcile(kube, body, state, options)


def backfilled(
    factory: PrometheusFactory,
    loads: dict[str, float],
    *,
    hours: float = 0.25,
    per_minute: float = 0.0,
) -> tuple[PrometheusServer, float, float]:
    """A Prometheus holding each app's load (rising ``per_minute`` rps a minute) from ``start``
    to ``end`` (under a minute ago), so an instant query now sees a fresh last sample.

    Returns (server, start, end). Backfilled, not scraped: ready at once, exact values."""
    end = math.floor(time.time() / 60) * 60  # the last sample under a minute old: fresh
    start = end - hours * 3600

    def ramp(base: float) -> Callable[[float], float]:
        return lambda t: base + per_minute * (t - start) / 60

    series = [
        Series.from_function(GAUGE, {"app": app}, ramp(base), start=start, end=end, step=60)
        for app, base in loads.items()
    ]
    return factory(history=series), start, end


def test_first_reconcile_reads_history_with_secret_credentials(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    server, start, end = backfilled(prometheus_factory, {"checkout": 100}, hours=4, per_minute=1)
    last = 100 + (end - start) / 60  # 340 rps
    kube = Kube(kube_client)
    kube_api.create(secret(NS, "prom-token", {"token": "s3cret\n"}))
    kube_api.create(secret(NS, "prom-basic", {"user": "pilot", "password": "pa55"}))
    kube_api.create(deployment(NS, "checkout", 2))
    with RecordingProxy(server.url) as proxy:
        bearer = {"bearerTokenSecret": {"name": "prom-token", "key": "token"}}
        kube_api.create(
            policy(
                NS,
                "peak",
                proxy.url,
                [workload("checkout", max_replicas=300)],
                prometheus={"url": proxy.url, "timeout": "5s", "auth": bearer},
                forecast={"method": "auto", "history": "4h"},
            )
        )
        state = PolicyState()
        outcome = run(kube_api, kube, state)
        assert outcome.decision is not None
        given = outcome.decision.input("checkout")
        assert given.load == pytest.approx(last)
        # The forecaster learnt the 4 h ramp before its first live value, so the trend model
        # already passes its accuracy gate (alone, it would wait an hour for scored buckets).
        forecaster = state.memory.of("checkout").forecaster
        assert forecaster is not None and forecaster.state.first_time is not None
        assert forecaster.state.first_time < end - 3 * 3600  # from hours before, not now
        assert given.forecast is not None and given.forecast.method == "trend"
        assert conditions(outcome)["MetricsAvailable"] == ("True", "AllLoadsRead")

        # Both the instant and the range query carried the token from the Secret.
        seen = proxy.requests("/api/v1/")
        assert {path.split("?")[0] for path, _ in seen} == {"/api/v1/query", "/api/v1/query_range"}
        assert {h.get("authorization") for _, h in seen} == {"Bearer s3cret"}
        # The history is read once per workload, not every reconcile.
        run(kube_api, kube, state)
        assert len(proxy.requests("/api/v1/query_range")) == 1
        assert len(proxy.requests("/api/v1/query?")) == 4  # per reconcile: load, sample age

        # Basic auth from a Secret.
        kube_api.patch(
            *("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak"),
            {
                "spec": {
                    "prometheus": {
                        "auth": {
                            "bearerTokenSecret": None,
                            "basicAuth": {
                                "username": {"name": "prom-basic", "key": "user"},
                                "password": {"name": "prom-basic", "key": "password"},
                            },
                        }
                    }
                }
            },
        )
        run(kube_api, kube, state)
        _, headers = proxy.requests("/api/v1/query?")[-1]
        assert headers["authorization"] == "Basic " + base64.b64encode(b"pilot:pa55").decode()

        # A missing Secret is a metric failure that names it; nothing scales down.
        kube_api.patch(
            *("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak"),
            {
                "spec": {
                    "prometheus": {
                        "auth": {
                            "basicAuth": None,
                            "bearerTokenSecret": {"name": "gone", "key": "t"},
                        }
                    }
                }
            },
        )
        calls = len(proxy.requests())
        outcome = run(kube_api, kube, state)
    assert conditions(outcome)["MetricsAvailable"] == ("False", "MetricsUnavailable")
    message = {c["type"]: c["message"] for c in outcome.status["conditions"]}["MetricsAvailable"]
    assert "credentials: Secret gone: not found" in message
    assert len(proxy.requests()) == calls  # no query without its credentials
    assert all(d.desired >= d.current for d in outcome.decision.plan.workloads)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("action", "current", "expected"),
    [
        ({"action": "HoldLastKnown", "ttl": "10m"}, 10, 10),
        ({"action": "Current"}, 10, 10),
        ({"action": "Static", "replicas": 5}, 10, 10),
        ({"action": "Static", "replicas": 5}, 3, 5),
    ],
    ids=["hold-no-history", "current", "static-below-current", "static-above-current"],
)
def test_metric_failure_never_scales_down(
    kube_api: EmulatedCluster,
    kube_client: Any,
    action: dict[str, Any],
    current: int,
    expected: int,
) -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"  # connection refused
    kube_api.create(deployment(NS, "checkout", current))
    kube_api.create(
        policy(NS, "peak", nothing_there, [workload("checkout")], onMetricFailure=action)
    )
    outcome = run(kube_api, Kube(kube_client), PolicyState())
    assert replicas(kube_api, NS, "checkout") == expected
    assert conditions(outcome)["MetricsAvailable"] == ("False", "MetricsUnavailable")
    assert conditions(outcome)["FallbackActive"] == ("True", "MetricFallback")
    assert [e.reason for e in outcome.events if e.type == "Warning"] == ["MetricsUnavailable"]


def test_held_value_expires_into_current_replicas(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    server, _, _ = backfilled(prometheus_factory, {"checkout": 400})
    kube_api.create(deployment(NS, "checkout", 2))
    failure = {"action": "HoldLastKnown", "ttl": "1m"}
    kube_api.create(policy(NS, "peak", server.url, [workload("checkout")], onMetricFailure=failure))
    kube, state = Kube(kube_client), PolicyState()
    first = run(kube_api, kube, state)
    assert first.decision is not None and first.decision.input("checkout").source == "observed"
    assert replicas(kube_api, NS, "checkout") == 13
    server.stop()
    body = kube_api.stored("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")
    t0 = time.time()
    held = reconcile(kube, body, state, now=t0 + 30)
    assert held.decision is not None and held.decision.input("checkout").source == "held"
    expired = reconcile(kube, body, state, now=t0 + 120)
    assert expired.decision is not None and expired.decision.input("checkout").source == "missing"
    assert replica_history(kube_api, NS, "checkout") == [2, 13]
    # One warning when the metric went missing, not one per reconcile.
    assert [e.reason for e in held.events + expired.events] == ["MetricsUnavailable"]


def test_solver_overrun_falls_back_to_the_greedy_plan(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    server, _, _ = backfilled(prometheus_factory, {"checkout": 400, "catalog": 400})
    for app in ("checkout", "catalog"):
        kube_api.create(deployment(NS, app, 2))
    shared = [
        workload("checkout", priority=10, cost={"perReplicaHour": 1}),
        workload("catalog", priority=1, cost={"perReplicaHour": 1}),
    ]
    kube_api.create(policy(NS, "peak", server.url, shared, budget={"maxCostPerHour": 20}))
    kube, state = Kube(kube_client), PolicyState()
    no_time = SolveOptions(deadline=0.0)  # the solver cannot answer in time
    outcome = run(kube_api, kube, state, options=no_time)
    assert conditions(outcome)["FallbackActive"] == ("True", "GreedyPlan")
    fallback = {c["type"]: c["message"] for c in outcome.status["conditions"]}["FallbackActive"]
    assert fallback.startswith("greedy plan: the solver") and "deadline" in fallback
    assert outcome.status["lastPlan"]["solver"]["usedGreedy"] is True
    assert [e.reason for e in outcome.events if e.type == "Warning"] == ["GreedyPlan"]
    # The greedy plan is applied, within the budget.
    assert replicas(kube_api, NS, "checkout") + replicas(kube_api, NS, "catalog") <= 20
    assert conditions(outcome)["BudgetBinding"] == ("True", "Binding")
    # A solver that answers again clears the condition.
    again = run(kube_api, kube, state)
    assert conditions(again)["FallbackActive"] == ("False", "None")


def test_scale_conflicts_are_retried_and_a_concurrent_resize_is_left_alone(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    server, _, _ = backfilled(prometheus_factory, {"checkout": 400, "cart": 400})
    for app in ("checkout", "cart"):
        kube_api.create(deployment(NS, app, 2))
    kube_api.create(
        policy(
            NS,
            "peak",
            server.url,
            [workload("checkout"), workload("cart")],
            behavior=FAST_BEHAVIOR,
        )
    )
    conflict = kube_api.fail(
        Fault(
            status=409,
            method="PATCH",
            plural="deployments",
            name="checkout",
            subresource="scale",
            times=1,
        )
    )

    class SomeoneElse(Kube):
        """Between the observation and the write, a person resizes cart to 5."""

        def set_replicas(
            self, target: Target, replicas: int, expected: int, attempts: int = 3
        ) -> int:
            if target.name == "cart":
                kube_api.patch("apps/v1", "deployments", NS, "cart", {"spec": {"replicas": 5}})
            return super().set_replicas(target, replicas, expected, attempts)

    outcome = run(kube_api, SomeoneElse(kube_client), PolicyState())
    assert conflict.hits == 1
    assert replicas(kube_api, NS, "checkout") == 13  # retried after the 409
    assert replica_history(kube_api, NS, "cart") == [2, 5]  # the person's count stands
    assert conditions(outcome)["Ready"] == ("False", "WorkloadProblems")
    (failed,) = [e for e in outcome.events if e.reason == "ScaleFailed"]
    assert "resized to 5 by someone else" in failed.message
    assert [e.reason for e in outcome.events if e.type == "Normal"] == ["ScaledUp"]


def test_a_failed_scale_write_does_not_count_against_the_rate_limit(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    server, _, _ = backfilled(prometheus_factory, {"checkout": 400})
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(policy(NS, "peak", server.url, [workload("checkout")]))  # 1000 % per 1 s
    forbidden = kube_api.fail(
        Fault(status=403, method="PATCH", subresource="scale", name="checkout", times=None)
    )
    kube, state = Kube(kube_client), PolicyState()
    body = kube_api.stored("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")
    t0 = time.time()
    first = reconcile(kube, body, state, now=t0)
    assert [e.reason for e in first.events] == ["ScaleFailed", "WorkloadProblems"]
    # Half a second later, inside the rate limit's 1 s period: the failed 2 -> 13 never
    # happened, so it is planned again rather than "capped by the scale-up rate limit".
    again = reconcile(kube, body, state, now=t0 + 0.5)
    (planned,) = again.status["lastPlan"]["workloads"]
    assert (planned["current"], planned["desired"]) == (2, 13), planned["reason"]
    assert forbidden.hits == 2
    assert replica_history(kube_api, NS, "checkout") == [2]


def test_a_keda_scaled_object_owns_its_target_until_taken_over(
    kube_api: EmulatedCluster, kube_client: Any, prometheus_factory: PrometheusFactory
) -> None:
    server, _, _ = backfilled(prometheus_factory, {"checkout": 400, "cart": 400})
    kube_api.register_resource("keda.sh/v1alpha1", "scaledobjects", "ScaledObject")
    for app in ("checkout", "cart"):
        kube_api.create(deployment(NS, app, 2))
    kube_api.create(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "checkout-so", "namespace": NS},
            "spec": {  # kind defaults to Deployment, as in KEDA
                "scaleTargetRef": {"name": "checkout"},
                "triggers": [{"type": "cpu", "metadata": {"value": "60"}}],
            },
        }
    )
    kube_api.create(policy(NS, "peak", server.url, [workload("checkout"), workload("cart")]))
    kube, state = Kube(kube_client), PolicyState()

    def listings() -> int:
        return len(kube_api.requests(lambda r: r.action == "LIST" and r.plural == "scaledobjects"))

    refused = run(kube_api, kube, state)
    assert conditions(refused)["Ready"] == ("False", "WorkloadProblems")
    message = {c["type"]: c["message"] for c in refused.status["conditions"]}["Ready"]
    assert "checkout: Deployment/checkout is already scaled by ScaledObject/checkout-so" in message
    assert "peakpilot.io/take-over=true" in message
    assert listings() == 1  # one listing per reconcile, not one per workload
    assert replica_history(kube_api, NS, "checkout") == [2]
    assert replicas(kube_api, NS, "cart") == 13  # the other workload is not held back

    annotation = {"metadata": {"annotations": {"peakpilot.io/take-over": "true"}}}
    kube_api.patch("apps/v1", "deployments", NS, "checkout", annotation)
    taken = run(kube_api, kube, state)
    assert replicas(kube_api, NS, "checkout") == 13
    assert conditions(taken)["Ready"] == ("True", "Reconciled")


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_trusts_the_ca_from_a_secret(
    kube_api: EmulatedCluster,
    kube_client: Any,
    prometheus_factory: PrometheusFactory,
    workdir: Path,
) -> None:
    tls = self_signed_certificate(workdir)
    if tls is None:
        pytest.skip("no openssl to make a certificate")
    server, _, _ = backfilled(prometheus_factory, {"checkout": 400})
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(secret(NS, "prom-ca", {"ca.crt": tls[0].read_text()}))
    kube, state = Kube(kube_client), PolicyState()
    ref = ("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")

    def auth(value: dict[str, Any] | None) -> None:
        kube_api.patch(*ref, {"spec": {"prometheus": {"auth": value}}})

    with RecordingProxy(server.url, tls=tls) as proxy:  # HTTPS in front of Prometheus
        assert proxy.url.startswith("https://")
        kube_api.create(policy(NS, "peak", proxy.url, [workload("checkout")]))
        # Not trusted by default: a metric failure, never a zero.
        untrusted = run(kube_api, kube, state)
        assert conditions(untrusted)["MetricsAvailable"] == ("False", "MetricsUnavailable")
        message = {c["type"]: c["message"] for c in untrusted.status["conditions"]}
        assert "CERTIFICATE_VERIFY_FAILED" in message["MetricsAvailable"]
        assert replicas(kube_api, NS, "checkout") == 2
        # The CA from the Secret makes it trusted.
        auth({"caSecret": {"name": "prom-ca", "key": "ca.crt"}})
        trusted = run(kube_api, kube, state)
        assert conditions(trusted)["MetricsAvailable"] == ("True", "AllLoadsRead")
        assert replicas(kube_api, NS, "checkout") == 13
        # One CA file per distinct content, not one per reconcile.
        files = set(Path(tempfile.gettempdir()).glob("peakpilot-ca-*.pem"))
        run(kube_api, kube, state)
        assert set(Path(tempfile.gettempdir()).glob("peakpilot-ca-*.pem")) == files
        # insecureSkipVerify: no verification at all.
        auth({"caSecret": None, "insecureSkipVerify": True})
        skipped = run(kube_api, kube, state)
        assert conditions(skipped)["MetricsAvailable"] == ("True", "AllLoadsRead")


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("vector(0) / 0", "the value is NaN"),
        ("vector(1) / 0", "the value is +Inf"),
        ("vector(-1)", "is negative"),
        ('app_load_requests_per_second{app="nobody"}', "returned no series"),
        ("app_load_requests_per_second", "returned 2 series; wrap it in sum(...)"),
        ('app_load_requests_per_second{app="old"}', "returned no series"),  # > 5 min old
        ("sum(", "Prometheus rejected the query"),
    ],
    ids=["nan", "inf", "negative", "empty", "several", "stale", "invalid"],
)
def test_a_real_prometheus_answer_that_is_not_a_load_is_a_failure(
    prometheus_factory: PrometheusFactory, query: str, why: str
) -> None:
    from peakpilot.prometheus import MetricError, PrometheusSettings, PrometheusSource

    end = math.floor(time.time() / 60) * 60  # the last sample under a minute old: fresh
    series = [
        Series(GAUGE, {"app": "checkout"}, [(end - 60, 10.0), (end, 10.0)]),
        Series(GAUGE, {"app": "cart"}, [(end - 60, 10.0), (end, 10.0)]),
        Series(GAUGE, {"app": "old"}, [(end - 900, 10.0), (end - 600, 10.0)]),
    ]
    server = prometheus_factory(history=series)
    source = PrometheusSource(PrometheusSettings(server.url, timeout=5))
    try:
        assert source.instant('sum(app_load_requests_per_second{app="checkout"})') == 10
        with pytest.raises(MetricError, match=re.escape(why)):
            source.instant(query)
    finally:
        source.close()


def test_a_prometheus_that_does_not_answer_times_out(
    kube_api: EmulatedCluster, kube_client: Any
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kube_api.create(deployment(NS, "checkout", 4))
        spec = policy(NS, "peak", url, [workload("checkout")])
        spec["spec"]["prometheus"]["timeout"] = "500ms"
        kube_api.create(spec)
        started = time.monotonic()
        outcome = run(kube_api, Kube(kube_client), PolicyState())
        took = time.monotonic() - started
    message = {c["type"]: c["message"] for c in outcome.status["conditions"]}
    assert "Prometheus did not answer within 0.5s" in message["MetricsAvailable"]
    assert replicas(kube_api, NS, "checkout") == 4
    assert took < 30  # bounded by the timeout, not hanging (a loose bound: not a timing test)
