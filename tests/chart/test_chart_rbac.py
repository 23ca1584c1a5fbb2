"""RBAC: least privilege, checked against an explicit allow-list, in both watch modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chartkit import NAMESPACE, RELEASE, SCENARIOS, by_kind, one

pytestmark = pytest.mark.chart

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)
Objects = Callable[[str], list[dict[str, Any]]]

# Everything the chart may ever grant, whatever the values (extra /scale kinds come on top).
ALLOWED: dict[tuple[str, str], set[str]] = {
    # patch: Kopf's finalizer and progress annotations on the policy object itself.
    ("peakpilot.io", "scalingpolicies"): {"get", "list", "watch", "patch"},
    ("peakpilot.io", "scalingpolicies/status"): {"patch"},
    ("", "events"): {"create"},
    ("events.k8s.io", "events"): {"create"},
    ("apps", "deployments"): {"get", "list", "watch"},
    ("apps", "statefulsets"): {"get", "list", "watch"},
    ("apps", "deployments/scale"): {"get", "patch"},
    ("apps", "statefulsets/scale"): {"get", "patch"},
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch"},
    ("keda.sh", "scaledobjects"): {"get", "list", "watch"},
    ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
    ("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    ("", "namespaces"): {"list", "watch"},
    ("", "secrets"): {"get"},  # and only with resourceNames, see below
}
# Cluster-scoped kinds: granting them in a namespaced Role would be meaningless.
CLUSTER_SCOPED = {("", "namespaces"), ("apiextensions.k8s.io", "customresourcedefinitions")}
CLUSTER_SCOPED |= {("kopf.dev", "clusterkopfpeerings")}
# What the operator runs on in any mode: policies, targets, ownership checks, events.
WORKLOAD = {
    (group, resource, verb)
    for (group, resource), verbs in ALLOWED.items()
    if group not in {"kopf.dev", "apiextensions.k8s.io"}
    and resource not in {"namespaces", "secrets"}
    for verb in verbs
}
KOPF_CLUSTER_WIDE = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "get"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}
PEERING_CLUSTER = {
    ("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")
}
PEERING_NAMESPACED = {("kopf.dev", "kopfpeerings", v) for v in ("get", "list", "watch", "patch")}
RENDERED = ["default", "namespaced", "ha", "ha-namespaced", "no-peering-crds"]


def triples(role: dict[str, Any]) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def extra_scale_allowed(scenario: str) -> dict[tuple[str, str], set[str]]:
    extras = SCENARIOS[scenario].get("rbac", {}).get("extraScaleTargets", [])
    return {(e["apiGroup"], f"{e['resource']}/scale"): {"get", "patch"} for e in extras}


@pytest.mark.parametrize("scenario", RENDERED)
def test_rbac_grants_nothing_beyond_the_allow_list(manifests: Objects, scenario: str) -> None:
    allowed = ALLOWED | extra_scale_allowed(scenario)
    roles = by_kind(manifests(scenario), "ClusterRole") + by_kind(manifests(scenario), "Role")
    assert roles
    for role in roles:
        where = f"{role['kind']}/{role['metadata']['name']}"
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, where
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"wildcard {field} in {where}"
            for group, resource, verb in triples({"rules": [rule]}):
                assert verb in allowed.get((group, resource), set()), (
                    f"{where} grants {verb} on {group or 'core'}/{resource}"
                )
                if resource == "secrets":
                    assert role["kind"] == "Role" and rule.get("resourceNames"), where
                if role["kind"] == "Role":
                    assert (group, resource) not in CLUSTER_SCOPED, where


def test_cluster_mode_grants_exactly_what_the_operator_needs(manifests: Objects) -> None:
    objects = manifests("default")
    assert by_kind(objects, "Role") == []
    role = one(objects, "ClusterRole")
    # One replica runs standalone: no peering permissions, no Secrets.
    assert triples(role) == WORKLOAD | KOPF_CLUSTER_WIDE


def test_peering_permissions_follow_the_mode(manifests: Objects) -> None:
    cluster = one(manifests("ha"), "ClusterRole")
    assert triples(cluster) >= PEERING_CLUSTER
    assert not PEERING_NAMESPACED & triples(cluster)
    for role in by_kind(manifests("ha-namespaced"), "Role"):
        assert triples(role) >= PEERING_NAMESPACED


def test_extra_scale_targets_get_only_their_scale_subresource(manifests: Objects) -> None:
    role = one(manifests("ha"), "ClusterRole")
    argo = {t for t in triples(role) if t[0] == "argoproj.io"}
    assert argo == {
        ("argoproj.io", "rollouts/scale", "get"),
        ("argoproj.io", "rollouts/scale", "patch"),
    }


@pytest.mark.parametrize("scenario", ["namespaced", "ha-namespaced"])
def test_namespaced_mode_uses_roles_in_the_watched_namespaces(
    manifests: Objects, scenario: str
) -> None:
    objects = manifests(scenario)
    # The only ClusterRole left is Kopf's CRD discovery; no policy or target permission.
    (cluster_role,) = by_kind(objects, "ClusterRole")
    assert triples(cluster_role) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")
    }
    roles = {r["metadata"]["namespace"]: r for r in by_kind(objects, "Role")}
    assert set(roles) == {"team-a", "team-b"} | {
        s["namespace"] for s in SCENARIOS[scenario].get("rbac", {}).get("secrets", [])
    }
    for ns in ("team-a", "team-b"):
        main = [r for r in by_kind(objects, "Role") if r["metadata"]["namespace"] == ns]
        granted = set().union(*(triples(r) for r in main))
        assert granted >= WORKLOAD


@pytest.mark.parametrize("scenario", ["namespaced", "ha"])
def test_secrets_are_readable_only_by_name(manifests: Objects, scenario: str) -> None:
    wanted: dict[str, set[str]] = {}
    for s in SCENARIOS[scenario]["rbac"]["secrets"]:
        wanted.setdefault(s["namespace"], set()).add(s["name"])
    granted: dict[str, set[str]] = {}
    for role in by_kind(manifests(scenario), "Role"):
        for rule in role["rules"]:
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"]
                ns = role["metadata"]["namespace"]
                granted.setdefault(ns, set()).update(rule["resourceNames"])
    assert granted == wanted


def test_no_secret_access_by_default(manifests: Objects) -> None:
    for role in by_kind(manifests("default"), "ClusterRole") + by_kind(
        manifests("default"), "Role"
    ):
        assert not {t for t in triples(role) if t[1] == "secrets"}


@pytest.mark.parametrize("scenario", RENDERED)
def test_bindings_tie_each_role_to_the_operator_service_account(
    manifests: Objects, scenario: str
) -> None:
    objects = manifests(scenario)
    sa = one(objects, "ServiceAccount")
    assert sa["metadata"]["namespace"] == NAMESPACE
    roles = {("ClusterRole", r["metadata"]["name"]) for r in by_kind(objects, "ClusterRole")}
    roles |= {
        ("Role", r["metadata"]["namespace"], r["metadata"]["name"])
        for r in by_kind(objects, "Role")
    }
    bound = set()
    for binding in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding"):
        ref = binding["roleRef"]
        if binding["kind"] == "RoleBinding":
            assert ref["kind"] == "Role"  # never bind a ClusterRole's rules into a namespace
            bound.add(("Role", binding["metadata"]["namespace"], ref["name"]))
        else:
            bound.add((ref["kind"], ref["name"]))
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
        ]
    assert bound == roles
    assert sa["metadata"]["name"] == RELEASE
