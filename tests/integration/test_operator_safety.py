"""Safety of the product operator as a real process: Prometheus goes away (no scale-down on
missing data, the conditions say so, recovery when it returns) and the operator restarts (it
resumes where it was, without undoing what the stabilisation window holds).
"""

from __future__ import annotations

import pytest
from harness import (
    EmulatedCluster,
    LoadExporter,
    PeakPilotFactory,
    PolicyProbe,
    PrometheusServer,
    wait_until,
)
from harness.peakpilot import (
    FAST_BEHAVIOR,
    deployment,
    load_query,
    policy,
    replica_history,
    replicas,
    scale_patches,
    workload,
)

pytestmark = pytest.mark.integration

NS = "shop"


def test_prometheus_down_never_scales_down_and_recovers(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    load_exporter.set_rate("checkout", 200)  # 200 rps needs ceil(200 / 32) = 7
    kube_api.create(deployment(NS, "checkout", 7))
    kube_api.create(
        policy(
            NS,
            "peak",
            prometheus.url,
            [workload("checkout")],
            onMetricFailure={"action": "HoldLastKnown", "ttl": "2s"},
        )
    )
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "peak")
    probe.wait_condition("MetricsAvailable", "True", timeout=40)
    wait_until(
        lambda: (probe.planned("checkout") or {}).get("load") == 200,
        timeout=15,
        what="a plan on 200 rps",
    )
    assert (probe.planned("checkout") or {}).get("desired") == 7

    # Prometheus stops; meanwhile the load falls (nobody can see it).
    prometheus.stop()
    load_exporter.set_rate("checkout", 40)
    down = probe.wait_condition("MetricsAvailable", "False", "MetricsUnavailable")
    # Refused, or (while it shuts down) accepted and never answered: either is a failure.
    assert prometheus.url in down["message"]
    assert "cannot reach Prometheus" in down["message"] or "did not answer" in down["message"]
    fallback = probe.wait_condition("FallbackActive", "True", "MetricFallback")
    assert "checkout" in fallback["message"]
    probe.wait_reconciles(4)  # past the 2 s ttl of the held value: current replicas are kept
    planned = probe.planned("checkout") or {}
    assert planned["desired"] == 7 and "no scale-down on missing data" in planned["reason"]
    assert replicas(kube_api, NS, "checkout") == 7
    assert scale_patches(kube_api, NS) == []
    # One warning for the outage, not one per reconcile.
    unreachable = [
        e
        for e in probe.events()
        if e["reason"] == "MetricsUnavailable" and prometheus.url in str(e["message"])
    ]
    assert len(unreachable) == 1 and unreachable[0]["type"] == "Warning"

    # Prometheus returns: the load it now sees (40 rps) is planned and applied.
    prometheus.start()
    probe.wait_condition("MetricsAvailable", "True", "AllLoadsRead", timeout=40)
    wait_until(lambda: replicas(kube_api, NS, "checkout") == 2, timeout=40, what="scale-down")
    assert replica_history(kube_api, NS, "checkout") == [7, 2]
    probe.wait_condition("FallbackActive", "False")
    probe.wait_condition("Ready", "True", "Reconciled")
    assert operator.running and "Traceback" not in operator.log()  # the fault matrix's no-crash


def test_an_operator_restart_resumes_without_flapping(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    load_exporter.set_rate("checkout", 400)  # needs 13
    kube_api.create(deployment(NS, "checkout", 13))
    behavior = {
        "scaleUp": FAST_BEHAVIOR["scaleUp"],
        "scaleDown": {  # the HPA's default window: 5 minutes before a scale-down
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
        },
    }
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout")], behavior=behavior))
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "peak")
    probe.wait_condition("MetricsAvailable", "True", timeout=40)

    def planned_on(load: float) -> bool:
        return (probe.planned("checkout") or {}).get("load") == load

    wait_until(lambda: planned_on(400), timeout=15, what="a plan on 400 rps")
    # The load falls: the scale-down window holds the replicas.
    load_exporter.set_rate("checkout", 40)
    prometheus.wait_for_value(load_query("checkout"), lambda v: v == 40, timeout=15)
    wait_until(lambda: planned_on(40), timeout=15, what="a plan on 40 rps")
    held = probe.planned("checkout") or {}
    assert held["desired"] == 13 and "scale-down" in held["reason"]

    # Restart: a new process with empty memory resumes at 13, not at what 40 rps needs.
    assert operator.stop() == 0
    before = probe.reconciles()
    operator.start()
    operator.wait_ready(timeout=60)
    probe.wait_reconciles(4, after=before)
    assert planned_on(40) and (probe.planned("checkout") or {}).get("desired") == 13
    assert replica_history(kube_api, NS, "checkout") == [13]
    probe.wait_condition("Ready", "True", "Reconciled")

    # ... and it acts on the next real change.
    load_exporter.set_rate("checkout", 800)  # needs 25
    wait_until(lambda: replicas(kube_api, NS, "checkout") == 25, timeout=30, what="25")
    assert replica_history(kube_api, NS, "checkout") == [13, 25]
    assert operator.stop() == 0
    assert "Traceback" not in operator.log()
