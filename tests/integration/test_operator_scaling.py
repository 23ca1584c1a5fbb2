"""The product operator (`peakpilot operator`) as a real process, against a real Prometheus that
scrapes the load exporter and the emulated API server: a load step is applied through /scale and
recorded (status, Event, /metrics); pausing by annotation; deleting a policy.

Every wait polls a condition with a deadline; no assertion is about how long anything took (the
reaction time is measured by bench/reaction.py).
"""

from __future__ import annotations

import re
from pathlib import Path

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
    deployment,
    load_query,
    policy,
    replica_history,
    replicas,
    sample_of,
    scale_patches,
    workload,
)

pytestmark = pytest.mark.integration

NS = "shop"
OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
PAUSED = "peakpilot.io/paused"


def documented_metrics() -> set[str]:
    """The metric names in the operations guide's "Metrics" table."""
    text = OPERATIONS_DOC.read_text()
    section = text.split("## Metrics", 1)[1].split("Suggested alerts", 1)[0]
    return set(re.findall(r"`(peakpilot_[a-z_]+)`", section))


def test_a_load_step_is_applied_through_scale_and_recorded(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    load_exporter.set_rate("checkout", 40)  # 40 rps at 40 rps/replica and 80 %: 2 replicas
    load_exporter.set_rate("cart", 40)
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(deployment(NS, "cart", 2))
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout"), workload("cart")]))
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "peak")

    # Steady load: reconciled, nothing to change (the first scrape takes ~5 s).
    probe.wait_condition("MetricsAvailable", "True", "AllLoadsRead", timeout=40)
    probe.wait_condition("Ready", "True", "Reconciled")
    assert scale_patches(kube_api, NS) == []

    # The step: 400 rps needs ceil(400 / (40 x 0.8)) = 13 replicas.
    load_exporter.set_rate("checkout", 400)
    wait_until(lambda: replicas(kube_api, NS, "checkout") == 13, timeout=30, what="checkout at 13")
    (patch,) = scale_patches(kube_api, NS, "checkout")
    assert patch.content_type is not None and "merge-patch" in patch.content_type
    assert patch.data["spec"] == {"replicas": 13}
    assert patch.data["metadata"]["resourceVersion"]  # optimistic concurrency
    assert replica_history(kube_api, NS, "checkout") == [2, 13]  # one step, no overshoot
    assert replica_history(kube_api, NS, "cart") == [2]

    # status: the plan that made the change, its reason and the generation it describes.
    def planned_13() -> dict[str, object] | None:
        entry = probe.planned("checkout")
        return entry if entry and entry["current"] == 2 and entry["desired"] == 13 else None

    entry = wait_until(planned_13, timeout=15, what="the plan 2 -> 13 in status") or {}
    assert entry["load"] == 400 and "400.0 rps needs 13" in str(entry["reason"])
    status = probe.status()
    assert status["observedGeneration"] == probe.obj()["metadata"]["generation"] == 1
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "MetricsAvailable",
        "BudgetBinding",
        "FallbackActive",
        "Paused",
    }
    assert (probe.condition("FallbackActive") or {}).get("status") == "False"
    assert status["lastPlan"]["solver"]["usedGreedy"] is False

    # A Kubernetes Event on the scale change, naming the reason.
    def scaled_up() -> list[dict[str, object]]:
        return [e for e in probe.events() if e["reason"] == "ScaledUp"]

    (event,) = wait_until(scaled_up, timeout=15, what="the ScaledUp event")
    assert event["type"] == "Normal"
    assert event["message"] == (
        "checkout (Deployment/checkout): 2 -> 13: 400.0 rps needs 13 at 80% target"
    )
    assert event["involvedObject"]["kind"] == "ScalingPolicy"  # type: ignore[index]
    assert event["reportingComponent"] == "peakpilot"

    # /metrics: every metric the operations guide documents, with this policy's values.
    assert documented_metrics() <= operator.metric_names()
    labels = {"namespace": NS, "policy": "peak"}
    scrape = operator.samples()  # one scrape: the values below belong together

    def value(name: str, **more: str) -> float | None:
        return sample_of(scrape, name, **labels, **more)

    assert value("peakpilot_scale_changes_total", workload="checkout", direction="up") == 1
    assert value("peakpilot_scale_changes_total", workload="cart", direction="up") is None
    assert value("peakpilot_desired_replicas", workload="checkout") == 13
    assert value("peakpilot_desired_replicas", workload="cart") == 2
    age = value("peakpilot_metric_age_seconds", workload="checkout")
    assert age is not None and 0 <= age < 60
    reconciles = value("peakpilot_reconciles_total", outcome="ok")
    assert reconciles is not None and reconciles >= 2
    assert value("peakpilot_greedy_fallback") == 0
    assert value("peakpilot_solve_seconds_count") == reconciles

    assert operator.stop() == 0
    assert "Traceback" not in operator.log()


def test_pausing_by_annotation_and_deleting_the_policy(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    for app in ("checkout", "cart", "sentinel"):
        load_exporter.set_rate(app, 40)
        kube_api.create(deployment(NS if app != "sentinel" else "ops", app, 2))
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout"), workload("cart")]))
    # Another policy, to know the operator is alive and reconciling while "peak" is not.
    kube_api.create(policy("ops", "sentinel", prometheus.url, [workload("sentinel")]))
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "peak")
    sentinel = PolicyProbe(kube_api, "ops", "sentinel")
    probe.wait_condition("MetricsAvailable", "True", timeout=40)
    probe.wait_condition("Paused", "False", "Active")

    def seen_by_prometheus(app: str, rps: float) -> None:
        prometheus.wait_for_value(load_query(app), lambda v: v == rps, timeout=15)

    # -- one workload paused: annotate its target. It is held; the other one still scales.
    kube_api.patch(
        "apps/v1", "deployments", NS, "cart", {"metadata": {"annotations": {PAUSED: "true"}}}
    )
    paused = probe.wait_condition("Paused", "True", "WorkloadsPaused")
    assert paused["message"] == "cart"
    load_exporter.set_rate("cart", 400)
    load_exporter.set_rate("checkout", 400)
    seen_by_prometheus("cart", 400)
    wait_until(lambda: replicas(kube_api, NS, "checkout") == 13, timeout=20, what="checkout")

    def held_at_400() -> bool:
        entry = probe.planned("cart") or {}
        return entry.get("load") == 400 and entry.get("desired") == 2

    wait_until(held_at_400, timeout=15, what="cart planned on 400 rps and held at 2")
    assert "paused" in str((probe.planned("cart") or {}).get("reason"))
    assert scale_patches(kube_api, NS, "cart") == []
    # Unpaused, it scales on the next reconcile.
    kube_api.patch(
        "apps/v1", "deployments", NS, "cart", {"metadata": {"annotations": {PAUSED: None}}}
    )
    wait_until(lambda: replicas(kube_api, NS, "cart") == 13, timeout=20, what="cart at 13")
    probe.wait_condition("Paused", "False", "Active")

    # -- the whole policy paused: annotate the policy. Nothing is planned or applied.
    kube_api.patch(*probe.ref, {"metadata": {"annotations": {PAUSED: "true"}}})
    probe.wait_condition("Paused", "True", "PausedByAnnotation")
    probe.wait_condition("Ready", "True", "Paused")
    patches = len(scale_patches(kube_api, NS))
    load_exporter.set_rate("checkout", 800)  # would need 25
    seen_by_prometheus("checkout", 800)
    probe.wait_reconciles(3)
    assert replicas(kube_api, NS, "checkout") == 13
    assert len(scale_patches(kube_api, NS)) == patches
    kube_api.patch(*probe.ref, {"metadata": {"annotations": {PAUSED: None}}})
    wait_until(lambda: replicas(kube_api, NS, "checkout") == 25, timeout=20, what="checkout 25")
    probe.wait_condition("Paused", "False", "Active")

    # -- the policy deleted: Kopf's finalizer is released once the loop stopped; the workloads
    #    stay at their current replicas, though their load now asks for fewer.
    kube_api.delete(*probe.ref)
    wait_until(lambda: not kube_api.exists(*probe.ref), timeout=20, what="the policy to go")
    patches = len(scale_patches(kube_api, NS))
    load_exporter.set_rate("checkout", 40)
    load_exporter.set_rate("cart", 40)
    seen_by_prometheus("checkout", 40)
    sentinel.wait_reconciles(3)  # the operator goes on reconciling the other policy
    assert replicas(kube_api, NS, "checkout") == 25
    assert replicas(kube_api, NS, "cart") == 13
    assert len(scale_patches(kube_api, NS)) == patches
    # Its series are gone from /metrics; the other policy's remain.
    assert operator.sample("peakpilot_desired_replicas", policy="peak", workload="checkout") is None
    assert operator.sample("peakpilot_desired_replicas", policy="sentinel", workload="sentinel")
    sentinel.wait_condition("Ready", "True", "Reconciled")

    assert operator.stop() == 0
    assert "Traceback" not in operator.log()
