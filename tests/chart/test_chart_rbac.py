"""RBAC: the chart, rendered and installed by the real Helm engine, grants exactly the API calls
the operator makes (peakpilot.apicalls.API_CALLS), in every watch mode and with peering.

tests/integration/test_operator_api_calls.py checks the other half: that a real operator run
makes no call the table lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from chartkit import NAMESPACE, RELEASE, SCENARIOS, by_kind, one

from peakpilot.apicalls import API_CALLS, Rule, applies, expand, rules

pytestmark = pytest.mark.chart

Objects = Callable[[str], list[dict[str, Any]]]
RENDERED = ["default", "namespaced", "ha", "ha-namespaced", "no-peering-crds"]
ANY_NAMESPACE = "any-namespace"  # cluster mode: a namespace no value names


def triples(role: dict[str, Any]) -> set[Rule]:
    return {
        Rule(group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


@dataclass
class Authorizer:
    """Kubernetes' RBAC authorizer over the rendered objects, for the operator's account: a
    request is allowed when a rule of a ClusterRole bound cluster-wide, or of a Role bound in
    the request's namespace, matches its group, resource, verb and (if listed) name."""

    cluster: list[dict[str, Any]] = field(default_factory=list)
    namespaced: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: list[dict[str, Any]]) -> Authorizer:
        sa = one(objects, "ServiceAccount")["metadata"]
        subject = {"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}
        roles = {
            (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
            for o in by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
        }
        auth = cls()
        for binding in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding"):
            if subject not in binding["subjects"]:
                continue
            ref, ns = binding["roleRef"], binding["metadata"].get("namespace")
            role = roles[ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"]]
            if binding["kind"] == "ClusterRoleBinding":
                auth.cluster.extend(role["rules"])
            else:
                auth.namespaced.setdefault(ns, []).extend(role["rules"])
        return auth

    def allows(self, rule: Rule, namespace: str | None, name: str | None = None) -> bool:
        scoped = self.namespaced.get(namespace, []) if namespace is not None else []
        return any(
            rule.group in r.get("apiGroups", [])
            and rule.resource in r.get("resources", [])
            and rule.verb in r.get("verbs", [])
            and (not r.get("resourceNames") or name in r["resourceNames"])
            for r in [*self.cluster, *scoped]
        )


@dataclass(frozen=True)
class Mode:
    clusterwide: bool
    peering: bool
    namespaces: list[str]
    extra_targets: list[tuple[str, str]]
    secrets: list[tuple[str, str]]  # (namespace, name)

    @classmethod
    def of(cls, scenario: str) -> Mode:
        values = SCENARIOS[scenario]
        watch, rbac = values.get("watch", {}), values.get("rbac", {})
        peering = values.get("replicaCount", 1) > 1 or values.get("peering", {}).get("enabled")
        return cls(
            clusterwide=watch.get("mode", "cluster") == "cluster",
            peering=bool(peering),
            namespaces=watch.get("namespaces", []) or [ANY_NAMESPACE],
            extra_targets=[
                (e["apiGroup"], e["resource"]) for e in rbac.get("extraScaleTargets", [])
            ],
            secrets=[(s["namespace"], s["name"]) for s in rbac.get("secrets", [])],
        )

    def needed(self, *, cluster_scoped: bool | None = None) -> set[Rule]:
        return rules(
            clusterwide=self.clusterwide,
            peering=self.peering,
            auth=bool(self.secrets),
            extra_targets=self.extra_targets,
            cluster_scoped=cluster_scoped,
        )


@pytest.mark.parametrize("scenario", RENDERED)
def test_every_api_call_of_the_table_is_allowed(manifests: Objects, scenario: str) -> None:
    mode, auth = Mode.of(scenario), Authorizer.of(manifests(scenario))
    for call in API_CALLS:
        if not applies(call, clusterwide=mode.clusterwide, peering=mode.peering, auth=False):
            continue
        for rule in expand(call, mode.extra_targets):
            where = [None] if call.cluster_scoped else mode.namespaces
            for ns in where:
                assert auth.allows(rule, ns), f"{scenario}: {rule} in {ns} ({call.why})"
    for ns, name in mode.secrets:  # auth: exactly the listed Secrets, by name
        assert auth.allows(Rule("", "secrets", "get"), ns, name), (scenario, ns, name)
        assert not auth.allows(Rule("", "secrets", "get"), ns, "another-secret"), scenario


def test_extra_target_kinds_get_the_target_and_its_scale(manifests: Objects) -> None:
    # The operator reads the Rollout itself before its /scale: without get it is "forbidden".
    auth = Authorizer.of(manifests("ha"))
    for verb, resource in [
        ("get", "rollouts"),
        ("get", "rollouts/scale"),
        ("patch", "rollouts/scale"),
    ]:
        assert auth.allows(Rule("argoproj.io", resource, verb), "shop"), (verb, resource)
    assert not Authorizer.of(manifests("default")).allows(
        Rule("argoproj.io", "rollouts", "get"), "shop"
    )
    default = Authorizer.of(manifests("default"))
    for verb, resource in [("get", "replicasets"), ("patch", "replicasets/scale")]:
        assert default.allows(Rule("apps", resource, verb), "shop"), (verb, resource)


@pytest.mark.parametrize("scenario", RENDERED)
def test_rbac_grants_nothing_beyond_the_table(manifests: Objects, scenario: str) -> None:
    mode, objects = Mode.of(scenario), manifests(scenario)
    for role in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
        where = f"{role['kind']}/{role['metadata']['name']}"
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, where
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f"wildcard {key} in {where}"
            if "secrets" in rule["resources"]:  # resourceNames cannot restrict list or watch
                assert role["kind"] == "Role" and rule.get("resourceNames"), where
                assert rule["verbs"] == ["get"], where
    # Cluster-scoped kinds in ClusterRoles only; the rest in ClusterRoles (cluster mode) or in
    # the watched namespaces' Roles (namespaced mode), and nothing else anywhere.
    secrets = {Rule("", "secrets", "get")}
    cluster = set().union(*(triples(r) for r in by_kind(objects, "ClusterRole")))
    by_namespace: dict[str, set[Rule]] = {}
    for role in by_kind(objects, "Role"):
        by_namespace.setdefault(role["metadata"]["namespace"], set()).update(triples(role))
    if mode.clusterwide:
        assert cluster == mode.needed() - secrets
        watched: list[str] = []
    else:
        assert cluster == mode.needed(cluster_scoped=True)
        watched = mode.namespaces
    for ns, granted in by_namespace.items():
        needed = mode.needed(cluster_scoped=False) if ns in watched else set()
        assert granted - secrets == needed - secrets, ns
    assert set(watched) <= set(by_namespace)


def test_peering_permissions_follow_the_mode(manifests: Objects) -> None:
    peering = {"clusterkopfpeerings", "kopfpeerings"}
    assert not {r for r in triples(one(manifests("default"), "ClusterRole")) if r[1] in peering}
    assert Authorizer.of(manifests("ha")).allows(
        Rule("kopf.dev", "clusterkopfpeerings", "patch"), None
    )
    namespaced = Authorizer.of(manifests("ha-namespaced"))
    for ns in ("team-a", "team-b"):
        assert namespaced.allows(Rule("kopf.dev", "kopfpeerings", "patch"), ns)
    assert not namespaced.allows(Rule("kopf.dev", "clusterkopfpeerings", "patch"), None)


@pytest.mark.parametrize("scenario", ["namespaced", "ha-namespaced"])
def test_namespaced_mode_uses_roles_in_the_watched_namespaces(
    manifests: Objects, scenario: str
) -> None:
    objects = manifests(scenario)
    # The only ClusterRole left is Kopf's discovery: CRDs and namespaces, no policy or target.
    (cluster_role,) = by_kind(objects, "ClusterRole")
    assert {r.resource for r in triples(cluster_role)} == {
        "customresourcedefinitions",
        "namespaces",
    }
    roles = {r["metadata"]["namespace"] for r in by_kind(objects, "Role")}
    assert roles == {"team-a", "team-b"} | {ns for ns, _ in Mode.of(scenario).secrets}
    auth = Authorizer.of(objects)
    assert not auth.allows(Rule("apps", "deployments/scale", "patch"), "elsewhere")


def test_no_secret_access_by_default(manifests: Objects) -> None:
    objects = manifests("default")
    for role in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
        assert not {t for t in triples(role) if t.resource == "secrets"}


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
