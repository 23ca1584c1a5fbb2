"""The plan document: `plan -o json` prints it whole, `status.lastPlan` holds it compact. One
function makes both, so a key means the same in each; compact only leaves keys out."""

from __future__ import annotations

import json
from typing import Any

from peakpilot import api
from peakpilot.report import STATUS_TEXT, plan_document
from peakpilot.translate import to_policy
from peakplan.controller import Decision, Memory, Observation, WorkloadObservation, decide

AT = 1_794_268_800.0  # 2026-11-10T00:00:00Z
LONG_ERROR = "cannot reach Prometheus: " + "x" * 700  # a note longer than status keeps


def workload(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "targetRef": {"kind": "Deployment", "name": name},
        "minReplicas": 1,
        "maxReplicas": 100,
        "load": {"query": f"sum(rate(requests{{app='{name}'}}[1m]))"},
        "capacityPerReplica": 10,
        "cost": {"perReplicaHour": 1.0},
    }


def decision() -> Decision:
    """Two workloads under a binding $10/h budget, a third whose load is missing."""
    spec = api.ScalingPolicySpec.model_validate(
        {
            "workloads": [workload("web"), workload("api"), workload("cart")],
            "budget": {"maxCostPerHour": 10},
            "forecast": {"method": "auto"},
        }
    )
    seen = {
        "web": WorkloadObservation(4, 200.0, None),  # needs 25
        "api": WorkloadObservation(4, 120.0, None),  # needs 15
        "cart": WorkloadObservation(3, None, LONG_ERROR),
    }
    return decide(to_policy(spec), Observation(AT, seen), Memory())


# What compact leaves out, and nothing else (docs/cli.md says the same).
DROPPED = {
    "policy",
    "solver.formulation",
    "solver.variables",
    "solver.constraints",
    "workloads[].forecast.horizonSeconds",
    "workloads[].forecast.value",
    "workloads[].forecast.band",
    "workloads[].forecast.scores",
}


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a document; list items share one path (`[]`)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= _paths(inner, path)
    elif isinstance(value, list):
        for item in value:
            out |= _paths(item, f"{prefix}[]")
    return out


def _same(compact: Any, full: Any, path: str = "") -> list[str]:
    """Where a compact value differs from the full one (a text may only be cut short)."""
    if isinstance(compact, dict):
        return [d for k, v in compact.items() for d in _same(v, full[k], f"{path}.{k}")]
    if isinstance(compact, list):
        if len(compact) != len(full):
            return [path]
        return [
            d
            for i, (c, f) in enumerate(zip(compact, full, strict=True))
            for d in _same(c, f, f"{path}[{i}]")
        ]
    if isinstance(compact, str) and isinstance(full, str):
        return [] if full.startswith(compact) and len(compact) <= STATUS_TEXT else [path]
    return [] if compact == full else [path]


def test_compact_leaves_out_only_the_documented_keys_and_keeps_every_value() -> None:
    d = decision()
    full, compact = plan_document(d, "shop"), plan_document(d, compact=True)
    assert _paths(full) - _paths(compact) == DROPPED
    assert _paths(compact) <= _paths(full)
    assert _same(compact, full) == []


def test_load_is_the_observed_load_and_demand_what_was_sized_for_in_both() -> None:
    d = decision()
    for document in (plan_document(d, "shop"), plan_document(d, compact=True)):
        rows = {w["name"]: w for w in document["workloads"]}
        assert (rows["web"]["load"], rows["api"]["load"]) == (200.0, 120.0)
        assert rows["web"]["demand"] >= 200.0 and rows["web"]["source"] == "observed"
        # Missing and nothing held: the plan keeps the current replicas and sized nothing, so
        # demand, need, utilisation and shortfall are null (not 0), and the note says why.
        cart = rows["cart"]
        assert (cart["load"], cart["source"], cart["current"], cart["desired"]) == (
            None,
            "missing",
            3,
            3,
        )
        assert [cart[k] for k in ("demand", "needed", "utilization", "outsideSlo")] == [None] * 4
        assert cart["note"].startswith("load unavailable (cannot reach Prometheus: xxx")
        assert "load needs" not in cart["reason"] and cart["reason"]
        assert cart["costPerHour"] == 3.0  # what it costs is known


def test_a_held_load_keeps_its_figures_in_both() -> None:
    spec = api.ScalingPolicySpec.model_validate({"workloads": [workload("web")]})
    policy, memory = to_policy(spec), Memory()
    decide(policy, Observation(AT, {"web": WorkloadObservation(2, 200.0, None)}), memory)
    later = Observation(AT + 30, {"web": WorkloadObservation(25, None, "no series")})
    d = decide(policy, later, memory)
    for document in (plan_document(d, "shop"), plan_document(d, compact=True)):
        (web,) = document["workloads"]
        assert (web["load"], web["source"], web["demand"]) == (None, "held", 200.0)
        assert web["needed"] == 25 and web["utilization"] is not None
    api.LastPlan.model_validate(plan_document(d, compact=True))


def test_status_texts_are_cut_to_the_crd_limit_and_the_schema_holds_the_compact_form() -> None:
    d = decision()
    assert len(d.input("cart").note) > STATUS_TEXT
    full, compact = plan_document(d, "shop"), plan_document(d, compact=True)
    cart = {w["name"]: w for w in compact["workloads"]}["cart"]
    assert len(cart["note"]) == STATUS_TEXT
    assert {w["name"]: w for w in full["workloads"]}["cart"]["note"] == d.input("cart").note
    assert compact["binding"] and compact["binding"][0]["relax"]["replicas"]
    api.LastPlan.model_validate(compact)  # every key is in the CRD's status schema


# A policy of 1000 workloads: status.lastPlan lists those that matter now, and stays small.


def big_decision(changed: int, missing: int, unreadable: int = 0) -> Decision:
    """1000 workloads: the first `changed` see twice the load they are sized for, the next
    `missing` have no load (a long error), the last `unreadable` were never readable."""
    spec = api.ScalingPolicySpec.model_validate(
        {"workloads": [workload(f"w{i:04d}") for i in range(1000)]}
    )
    seen = {}
    for i in range(1000 - unreadable):
        if i < changed:
            seen[f"w{i:04d}"] = WorkloadObservation(4, 64.0, None)  # needs 8
        elif i < changed + missing:
            seen[f"w{i:04d}"] = WorkloadObservation(4, None, LONG_ERROR)
        else:
            seen[f"w{i:04d}"] = WorkloadObservation(4, 32.0, None)  # needs 4: unchanged
    for i in range(1000 - unreadable, 1000):
        seen[f"w{i:04d}"] = WorkloadObservation(0, None, LONG_ERROR, unreadable=LONG_ERROR)
    return decide(to_policy(spec), Observation(AT, seen), Memory())


def _size(document: dict[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")))


def test_status_of_1000_workloads_lists_the_changed_ones_and_counts_the_rest() -> None:
    d = big_decision(changed=30, missing=0)
    compact = plan_document(d, compact=True)
    assert [w["name"] for w in compact["workloads"]] == [f"w{i:04d}" for i in range(30)]
    assert compact["omittedWorkloads"] == 970
    assert compact["totals"]["workloads"] == 1000 and compact["totals"]["changed"] == 30
    assert compact["totals"]["desiredReplicas"] == 30 * 8 + 970 * 4
    assert _size(compact) < 16 * 1024
    api.LastPlan.model_validate(compact)
    full = plan_document(d, "shop")
    assert len(full["workloads"]) == 1000 and full["omittedWorkloads"] == 0


def test_status_of_1000_workloads_stays_under_256_kib_whatever_happens() -> None:
    # Every load missing with a long error and every target unreadable: the largest status.
    for d in (big_decision(changed=0, missing=1000), big_decision(0, 500, unreadable=500)):
        compact = plan_document(d, compact=True)
        assert len(compact["workloads"]) <= 100 and len(compact["leftOut"]) <= 100
        assert _size(compact) < 256 * 1024, _size(compact)
        api.LastPlan.model_validate(compact)
    assert "400 more workloads left out (not listed)" in compact["notes"]


def test_up_to_100_workloads_status_lists_every_one() -> None:
    d = decision()
    assert len(plan_document(d, compact=True)["workloads"]) == len(d.plan.workloads)
    assert plan_document(d, compact=True)["omittedWorkloads"] == 0
