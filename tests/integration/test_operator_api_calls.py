"""Every API request a real operator run makes is in peakpilot.apicalls.API_CALLS, the table the
chart's RBAC is checked against (tests/chart/test_chart_rbac.py): a call the table misses would be
forbidden in a cluster installed from the chart, and no emulator would notice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import pytest
from harness import (
    EmulatedCluster,
    PeakPilotFactory,
    PolicyProbe,
    PrometheusFactory,
    PrometheusServer,
    ScalePaths,
    SeenRequest,
    Series,
    wait_until,
)
from harness.peakpilot import (
    GROUP_VERSION,
    PLURAL,
    deployment,
    hpa,
    policy,
    secret,
    workload,
)

from peakpilot.apicalls import Rule, rules

pytestmark = pytest.mark.integration

NS = "shop"
GAUGE = "app_load_requests_per_second"
PEERING = "peakpilot"
# The target kinds a run scales: each built-in one, and a custom kind with /scale (an Argo Rollout).
KINDS = {
    "web": ("apps/v1", "Deployment", "deployments"),
    "db": ("apps/v1", "StatefulSet", "statefulsets"),
    "batch": ("apps/v1", "ReplicaSet", "replicasets"),
    "canary": ("argoproj.io/v1alpha1", "Rollout", "rollouts"),
}
EXTRA_TARGETS = (("argoproj.io", "rollouts"),)


def backfilled(factory: PrometheusFactory, apps: Iterable[str]) -> PrometheusServer:
    end = math.floor(time.time() / 60) * 60
    series = [
        Series.from_function(GAUGE, {"app": a}, lambda _t: 400.0, start=end - 600, end=end, step=60)
        for a in apps
    ]
    return factory(history=series)


def verb(request: SeenRequest) -> str:
    """The RBAC verb of a request, as the API server's authorizer names it."""
    if request.action == "WATCH":
        return "watch"
    if request.method == "GET":
        return "get" if request.name else "list"
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[request.method]


def rule_of(request: SeenRequest) -> Rule | None:
    """(group, resource[/subresource], verb, namespaced) of a resource request; None for
    discovery (/api, /apis/...: non-resource URLs every authenticated user may read)."""
    if request.plural is None:
        return None
    resource = f"{request.plural}/{request.subresource}" if request.subresource else request.plural
    return Rule(request.group or "", resource, verb(request))


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_every_request_of_a_real_run_is_in_the_table(
    kube_api: EmulatedCluster,
    prometheus_factory: PrometheusFactory,
    peakpilot_factory: PeakPilotFactory,
    mode: str,
) -> None:
    server = backfilled(prometheus_factory, KINDS)  # 400 rps: 13 replicas each
    kube_api.register_kopf_peering()
    kube_api.register_resource(
        "argoproj.io/v1alpha1", "rollouts", "Rollout", subresources=["status"], scale=ScalePaths()
    )
    if mode == "cluster-wide":
        kube_api.create(
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "ClusterKopfPeering",
                "metadata": {"name": PEERING},
            }
        )
    else:
        kube_api.create(
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": PEERING, "namespace": NS},
            }
        )
    for app, (api_version, kind, _) in KINDS.items():
        kube_api.create({**deployment(NS, app, 2), "apiVersion": api_version, "kind": kind})
    kube_api.create(hpa(NS, "other", "unrelated"))  # the ownership check lists something
    kube_api.create(secret(NS, "prom-token", {"token": "s3cret"}))
    targets = []
    for app, (api_version, kind, _) in KINDS.items():
        w = workload(app, kind=kind)
        w["targetRef"]["apiVersion"] = api_version
        targets.append(w)
    auth = {"bearerTokenSecret": {"name": "prom-token", "key": "token"}}
    prometheus = {"url": server.url, "timeout": "2s", "auth": auth}
    kube_api.create(policy(NS, "peak", server.url, targets, prometheus=prometheus))
    kube_api.create(policy(NS, "gone", server.url, [workload("web")], mode="Preview"))
    # More than observe.LIST_ABOVE targets of each built-in kind: read with one list per kind.
    many = []
    for i in range(11):
        for api_version, kind, short in (
            ("apps/v1", "Deployment", "d"),
            ("apps/v1", "StatefulSet", "s"),
            ("apps/v1", "ReplicaSet", "r"),
        ):
            name = f"many-{short}{i}"
            kube_api.create({**deployment(NS, name, 2), "apiVersion": api_version, "kind": kind})
            many.append(workload(name, kind=kind))
    kube_api.create(policy(NS, "many", server.url, many, mode="Preview", prometheus=prometheus))

    operator = peakpilot_factory(peering=PEERING, namespaces=[NS] if mode == "namespaced" else ())
    for app, (api_version, _, plural) in KINDS.items():
        wait_until(
            lambda a=app, v=api_version, p=plural: (
                kube_api.stored(v, p, NS, a)["spec"]["replicas"] == 13
            ),
            timeout=40,
            what=f"{app} scaled to 13",
        )
    probe = PolicyProbe(kube_api, NS, "peak")
    probe.wait_condition("Ready", "True", "Reconciled")
    wait_until(lambda: PolicyProbe(kube_api, NS, "many").reconciles() >= 1, timeout=20, what="many")
    wait_until(lambda: probe.events(), timeout=10, what="an Event about the policy")
    kube_api.delete(GROUP_VERSION, PLURAL, NS, "gone")  # Kopf releases its finalizer
    wait_until(
        lambda: not kube_api.exists(GROUP_VERSION, PLURAL, NS, "gone"), timeout=20, what="deleted"
    )
    assert operator.stop() == 0  # and leaves the peering object

    allowed = rules(
        clusterwide=mode == "cluster-wide", peering=True, auth=True, extra_targets=EXTRA_TARGETS
    )
    # The operator's requests: the test's own ones (as a user) go through urllib.
    made = {
        rule
        for r in kube_api.requests(lambda r: not (r.user_agent or "").startswith("Python-urllib"))
        if (rule := rule_of(r)) is not None
    }
    assert made - allowed == set(), "calls missing from peakpilot.apicalls.API_CALLS"
    # And the table holds nothing this run does not need (the chart grants exactly the table).
    assert allowed - made == set(), "rows of API_CALLS no run makes"
