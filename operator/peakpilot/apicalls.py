"""Every Kubernetes API call the operator makes, PeakPilot's own and Kopf's: one table.

The chart's RBAC is checked against it (tests/chart/test_chart_rbac.py renders the chart with the
Helm engine and asks, for every call here, whether the rendered rules allow it, and that they
allow nothing else), and tests/integration/test_operator_api_calls.py records the requests of a
real operator run and checks that each one is here. A new API call goes into this table first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from peakpilot import api
from peakpilot.kube import BUILTIN_PLURALS

# Stands for the resource of every kind a policy may target: the built-in scalable kinds
# (kube.BUILTIN_PLURALS) and the chart's rbac.extraScaleTargets.
TARGETS = "<targets>"
Only = Literal["cluster-wide", "namespaced", "peering", "auth"]


@dataclass(frozen=True)
class ApiCall:
    group: str  # "" is the core group; ignored for TARGETS (each target kind has its own)
    resource: str  # plural, or "plural/subresource"; TARGETS or TARGETS + "/scale"
    verbs: tuple[str, ...]
    by: Literal["peakpilot", "kopf"]
    why: str
    only: Only | None = None  # None: always; else only in that watch mode, with peering or auth
    cluster_scoped: bool = False  # a cluster-scoped resource: granted by a ClusterRole


API_CALLS: tuple[ApiCall, ...] = (
    ApiCall(api.GROUP, api.PLURAL, ("list", "watch"), "kopf", "the policies, and their edits"),
    ApiCall(
        api.GROUP,
        api.PLURAL,
        ("patch",),
        "kopf",
        "Kopf's finalizer (it stops a deleted policy's loop) and progress annotations",
    ),
    ApiCall(
        api.GROUP,
        f"{api.PLURAL}/status",
        ("patch",),
        "peakpilot",
        "each reconcile's plan, conditions",
    ),
    ApiCall("", "events", ("create",), "kopf", "Events explaining decisions (Kopf posts them)"),
    ApiCall(
        "",
        TARGETS,
        ("get",),
        "peakpilot",
        "the target itself before its /scale: annotations, readyReplicas, whether it exists",
    ),
    ApiCall("", f"{TARGETS}/scale", ("get", "patch"), "peakpilot", "read and set replicas"),
    *(
        ApiCall(
            group,
            plural,
            ("list",),
            "peakpilot",
            "a policy's targets of one built-in kind, in one request when it names more than "
            "observe.LIST_ABOVE (10) of them (spec.replicas is their /scale)",
        )
        for (group, _), plural in BUILTIN_PLURALS.items()
    ),
    ApiCall(
        "autoscaling",
        "horizontalpodautoscalers",
        ("list",),
        "peakpilot",
        "ownership check: never fight an HPA over a target",
    ),
    ApiCall(
        "keda.sh",
        "scaledobjects",
        ("list",),
        "peakpilot",
        "ownership check: never fight a KEDA ScaledObject (a 404 when KEDA is absent)",
    ),
    ApiCall(
        "",
        "secrets",
        ("get",),
        "peakpilot",
        "credentials a policy names in spec.prometheus.auth (the chart: by name, rbac.secrets)",
        only="auth",
    ),
    ApiCall(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        ("list", "watch"),
        "kopf",
        "Kopf's resource discovery (CRDs added or removed while it runs)",
        cluster_scoped=True,
    ),
    ApiCall(
        "",
        "namespaces",
        ("list", "watch"),
        "kopf",
        "Kopf's namespace observation, with --namespace only (cluster-wide it watches across "
        "namespaces and never looks at them)",
        only="namespaced",
        cluster_scoped=True,
    ),
    ApiCall(
        "kopf.dev",
        "clusterkopfpeerings",
        ("list", "watch", "patch"),
        "kopf",
        "peering, cluster-wide: the replicas' keep-alives in the object's status",
        only="peering",
        cluster_scoped=True,
    ),
    ApiCall(
        "kopf.dev",
        "clusterkopfpeerings",
        ("get",),
        "peakpilot",
        "the peering guard (peering.py): no duplicate priority, no missing object",
        only="peering",
        cluster_scoped=True,
    ),
    ApiCall(
        "kopf.dev",
        "kopfpeerings",
        ("list", "watch", "patch"),
        "kopf",
        "peering, with --namespace: a KopfPeering in each watched namespace",
        only="peering",
    ),
    ApiCall(
        "kopf.dev",
        "kopfpeerings",
        ("get",),
        "peakpilot",
        "the peering guard (peering.py), in each watched namespace",
        only="peering",
    ),
)
# Which peering resource goes with which watch mode.
_PEERING_MODE = {"clusterkopfpeerings": "cluster-wide", "kopfpeerings": "namespaced"}


class Rule(NamedTuple):
    """One permission: a verb on a resource (or subresource) of an API group."""

    group: str
    resource: str
    verb: str


def target_kinds(extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """(group, plural) of every kind a policy may target: the built-ins and ``extra``."""
    builtin = [(group, plural) for (group, _), plural in BUILTIN_PLURALS.items()]
    return builtin + [k for k in extra if k not in builtin]


def applies(call: ApiCall, *, clusterwide: bool, peering: bool, auth: bool) -> bool:
    """Whether an operator run in this mode makes ``call``."""
    mode = "cluster-wide" if clusterwide else "namespaced"
    if call.resource in _PEERING_MODE:
        return peering and _PEERING_MODE[call.resource] == mode
    return call.only is None or call.only == mode or (call.only == "auth" and auth)


def expand(call: ApiCall, extra_targets: Iterable[tuple[str, str]] = ()) -> list[Rule]:
    """The permissions one table row stands for (a TARGETS row: one per target kind)."""
    if not call.resource.startswith(TARGETS):
        return [Rule(call.group, call.resource, verb) for verb in call.verbs]
    sub = call.resource.removeprefix(TARGETS)
    return [
        Rule(group, plural + sub, verb)
        for group, plural in target_kinds(extra_targets)
        for verb in call.verbs
    ]


def rules(
    *,
    clusterwide: bool,
    peering: bool,
    auth: bool = False,
    extra_targets: Iterable[tuple[str, str]] = (),
    cluster_scoped: bool | None = None,
) -> set[Rule]:
    """Every permission an operator run in this mode needs (``cluster_scoped``: only those on
    cluster-scoped resources, or only the others)."""
    extra = list(extra_targets)
    return {
        rule
        for call in API_CALLS
        if applies(call, clusterwide=clusterwide, peering=peering, auth=auth)
        and (cluster_scoped is None or call.cluster_scoped == cluster_scoped)
        for rule in expand(call, extra)
    }
