"""Several policies in one real operator process, each in its own namespace and each reconciled
on its own: Preview plans without applying, an HPA-owned target is refused (until annotated for
take-over), an invalid policy is reported while the others keep working (and picks up its fix),
and a binding budget is explained in status.
"""

from __future__ import annotations

from typing import Any

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
    hpa,
    policy,
    replica_history,
    replicas,
    scale_patches,
    workload,
)

pytestmark = pytest.mark.integration

TAKE_OVER = "peakpilot.io/take-over"


def test_preview_ownership_invalid_spec_and_budget_side_by_side(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    for app in ("web", "api", "broken", "checkout", "catalog"):
        load_exporter.set_rate(app, 400)  # each needs 13 at 40 rps/replica and 80 %
    url = prometheus.url
    # Preview: plan and status only.
    kube_api.create(deployment("preview", "web", 2))
    kube_api.create(policy("preview", "p", url, [workload("web")], mode="Preview"))
    # A target an HPA already scales.
    kube_api.create(deployment("owned", "api", 2))
    kube_api.create(hpa("owned", "api-hpa", "api"))
    kube_api.create(policy("owned", "p", url, [workload("api")]))
    # minReplicas > maxReplicas: the API emulator stores it (it validates no CRD schema).
    kube_api.create(deployment("broken", "broken", 2))
    bad = workload("broken", min_replicas=20, max_replicas=10)
    kube_api.create(policy("broken", "p", url, [bad]))
    # Two workloads sharing a cost budget that cannot carry both: 26/h needed, 20/h allowed.
    for app in ("checkout", "catalog"):
        kube_api.create(deployment("budget", app, 2))
    shared = [
        workload("checkout", priority=10, cost={"perReplicaHour": 1}),
        workload("catalog", priority=1, cost={"perReplicaHour": 1}),
    ]
    kube_api.create(policy("budget", "p", url, shared, budget={"maxCostPerHour": 20}))

    operator = peakpilot_factory()
    preview = PolicyProbe(kube_api, "preview", "p")
    owned = PolicyProbe(kube_api, "owned", "p")
    broken = PolicyProbe(kube_api, "broken", "p")
    budget = PolicyProbe(kube_api, "budget", "p")

    # -- the invalid policy: Ready=False InvalidSpec naming the field and the fix, once.
    invalid = broken.wait_condition("Ready", "False", "InvalidSpec")
    assert invalid["message"] == (
        "spec.workloads[0].minReplicas: minReplicas must be <= maxReplicas: "
        "lower minReplicas or raise maxReplicas"
    )
    assert broken.status()["observedGeneration"] == 1

    # -- Preview: the plan is in status, nothing is applied.
    preview.wait_condition("MetricsAvailable", "True", timeout=40)
    wait_until(
        lambda: (preview.planned("web") or {}).get("desired") == 13,
        timeout=20,
        what="the preview plan",
    )
    preview.wait_condition("Paused", "True", "Preview")
    preview.wait_condition("Ready", "True", "Reconciled")

    # -- the HPA-owned target: refused with a condition naming the owner and the way out.
    refused = owned.wait_condition("Ready", "False", "WorkloadProblems", timeout=20)
    assert "HorizontalPodAutoscaler/api-hpa" in refused["message"]
    assert f"{TAKE_OVER}=true" in refused["message"]
    wait_until(
        lambda: (owned.planned("api") or {}).get("load") == 400,
        timeout=20,
        what="a plan for api on 400 rps",
    )
    assert (owned.planned("api") or {}).get("desired") == 2
    assert any(e["reason"] == "WorkloadProblems" for e in owned.events())

    # -- the budget: binding, explained in status.
    binding = budget.wait_condition("BudgetBinding", "True", "Binding", timeout=20)
    assert binding["message"].startswith("cost limit 20 binds (meeting every SLO needs 26)")
    wait_until(
        lambda: replicas(kube_api, "budget", "catalog") == 7, timeout=20, what="catalog at 7"
    )
    assert replicas(kube_api, "budget", "checkout") == 13  # the high priority is protected
    plan: dict[str, Any] = budget.last_plan() or {}
    (cost,) = plan["binding"]
    assert cost["constraint"] == "cost"
    assert (cost["limit"], cost["used"], cost["needed"]) == (20, 20, 26)
    assert cost["relax"]["replicas"] == {"catalog": 2} and cost["relax"]["by"] == 2
    assert cost["squeezed"] == {"catalog": 13 - 7}  # short of what its load needs
    assert plan["totals"]["costPerHour"] <= 20
    catalog = budget.planned("catalog") or {}
    assert catalog["limitedBy"] == "budget:cost" and "squeezed" in catalog["reason"]
    assert plan["solver"]["name"] == "highs" and plan["solver"]["status"] == "optimal"
    # What `kubectl get sp` shows (the CRD's printer columns read status.summary).
    summary = budget.status()["summary"]
    assert (summary["workloads"], summary["budgetPerHour"], summary["binding"]) == (2, 20, "cost")
    assert summary["desiredReplicas"] == 13 + 7 and summary["costPerHour"] == 20
    assert (summary["fallback"], summary["paused"]) == (False, False)
    assert preview.status()["summary"]["paused"] is True

    # -- the invalid policy kept failing quietly while the others were reconciled.
    assert broken.status()["summary"].get("desiredReplicas") is None  # no plan, no figures
    assert broken.condition("Ready") == invalid | {"observedGeneration": 1}
    assert [e["reason"] for e in broken.events()] == ["InvalidSpec"]
    assert scale_patches(kube_api, "broken") == []
    # Its fix is picked up by the running loop.
    fixed = workload("broken", min_replicas=1, max_replicas=10)
    kube_api.patch(*broken.ref, {"spec": {"workloads": [fixed]}})
    broken.wait_condition("Ready", "True", "Reconciled", timeout=20)
    assert broken.status()["observedGeneration"] == 2
    wait_until(lambda: replicas(kube_api, "broken", "broken") == 10, timeout=20, what="max 10")

    # -- the owned target, annotated for take-over, is scaled.
    kube_api.patch(
        "apps/v1", "deployments", "owned", "api", {"metadata": {"annotations": {TAKE_OVER: "true"}}}
    )
    wait_until(lambda: replicas(kube_api, "owned", "api") == 13, timeout=20, what="api at 13")
    owned.wait_condition("Ready", "True", "Reconciled")

    # Preview never touched its target.
    assert scale_patches(kube_api, "preview") == []
    assert replica_history(kube_api, "preview", "web") == [2]
    assert operator.stop() == 0
    assert "Traceback" not in operator.log()
