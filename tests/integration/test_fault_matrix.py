"""The fault matrix (docs/operations.md, "Fault matrix"): each fault against the real operator
process, a real Prometheus and the emulated API server.

Every test checks the same three things: no scale-down on missing data (a workload's replica
history never goes below where it started while the fault lasts), no crash (the process stays
up, logs no traceback, and keeps reconciling a policy the fault does not touch), and no lost
status (the policy that meets the fault says what happened in its conditions). Where the fault
can heal, the test heals it and checks that the operator acts again.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import (
    EmulatedCluster,
    Fault,
    LoadExporter,
    PeakPilotFactory,
    PeakPilotProcess,
    PolicyProbe,
    PrometheusFactory,
    PrometheusServer,
    Series,
    wait_until,
)
from harness.peakpilot import (
    GROUP_VERSION,
    PLURAL,
    RecordingProxy,
    deployment,
    load_query,
    policy,
    replica_history,
    replicas,
    scale_patches,
    secret,
    workload,
)

from peakpilot.peering import priority_of

pytestmark = pytest.mark.integration

NS = "shop"  # where the faults happen
CALM = "calm"  # a policy no fault touches: it must keep being reconciled throughout
UNOWNED = "unowned"  # where listing the HPAs fails
PEERING = "peakpilot"  # the Kopf peering object of the two-replica test
GAUGE = "app_load_requests_per_second"  # the exporter's gauge, also backfilled

# basic_auth_users for Prometheus' --web.config.file: admin / "test" (bcrypt, from the
# Prometheus documentation's own example).
WEB_CONFIG = (
    "basic_auth_users:\n  admin: $2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay\n"
)


def calm_policy(
    kube_api: EmulatedCluster, load: LoadExporter, prometheus: PrometheusServer
) -> PolicyProbe:
    """A healthy policy in its own namespace: 100 rps on 4 replicas, which it keeps.

    Returns once Prometheus has scraped its load: before that scrape the calm policy would
    rightly read its load as missing, and a short test would see that, not the fault's effect."""
    load.set_rate("steady", 100)  # ceil(100 / 32) = 4
    kube_api.create(deployment(CALM, "steady", 4))
    kube_api.create(policy(CALM, "calm", prometheus.url, [workload("steady")]))
    wait_until(
        lambda: prometheus.query_value(load_query("steady")) == 100,
        timeout=30,
        what="Prometheus to scrape the calm policy's load",
    )
    return PolicyProbe(kube_api, CALM, "calm")


def assert_unharmed(
    operator: PeakPilotProcess,
    calm: PolicyProbe,
    kube_api: EmulatedCluster,
    started_at: Mapping[str, int],
) -> None:
    """No crash, the calm policy still reconciled and healthy, no workload scaled down."""
    assert operator.running, operator.log_tail()
    calm.wait_reconciles(2)
    assert (calm.condition("Ready") or {}).get("reason") == "Reconciled", calm.status()
    assert (calm.condition("MetricsAvailable") or {}).get("status") == "True", calm.status()
    assert replica_history(kube_api, CALM, "steady") == [4]
    for name, start in started_at.items():
        history = replica_history(kube_api, NS, name)
        assert history[0] == start and history == sorted(history), (name, history)
    assert "Traceback" not in operator.log()


def message(probe: PolicyProbe, kind: str) -> str:
    return str((probe.condition(kind) or {}).get("message", ""))


def warnings(probe: PolicyProbe, reason: str) -> list[str]:
    return [str(e["message"]) for e in probe.events() if e.get("reason") == reason]


def wait_replicas(kube_api: EmulatedCluster, app: str, count: int, *, ns: str = NS) -> None:
    wait_until(
        lambda: replicas(kube_api, ns, app) == count, timeout=40, what=f"{ns}/{app} at {count}"
    )


def wait_healed(
    kube_api: EmulatedCluster,
    probes: Mapping[str, PolicyProbe],
    count: int,
    condition: tuple[str, str, str],
    history: list[int],
) -> None:
    """Each policy's workload (named as the policy) reaches ``count`` replicas in one step
    (``history``), and the policy's ``condition`` (type, status, reason) says it is healthy."""
    for app, probe in probes.items():
        wait_replicas(kube_api, app, count)
        probe.wait_condition(*condition)
        assert replica_history(kube_api, NS, app) == history, app


# -- Prometheus


def test_prometheus_faults_hold_the_workload_and_spare_other_policies(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    prometheus_factory: PrometheusFactory,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
    workdir: Path,
) -> None:
    web_config = workdir / "web.yml"
    web_config.write_text(WEB_CONFIG)
    guarded = prometheus_factory(  # the real Prometheus, behind its own basic auth
        targets=[load_exporter.target], extra_args=[f"--web.config.file={web_config}"]
    )
    calm = calm_policy(kube_api, load_exporter, prometheus)
    slow = RecordingProxy(prometheus.url).start()
    slow.delay = 3.0  # the policy's timeout is 0.5 s
    denied = RecordingProxy(prometheus.url).start()
    denied.status = 403  # e.g. kube-rbac-proxy in front of Prometheus
    try:
        # Each app would need 2 replicas (40 rps) and runs 13: any load read scales it down.
        apps = ("slow", "denied", "unauthorized", "empty", "nan", "huge")
        for app in apps:
            load_exporter.set_rate(app, 40)
            kube_api.create(deployment(NS, app, 13))
        kube_api.create(secret(NS, "prom-basic", {"user": "admin", "password": "not-the-password"}))
        basic = {
            "basicAuth": {
                "username": {"name": "prom-basic", "key": "user"},
                "password": {"name": "prom-basic", "key": "password"},
            }
        }
        specs = {
            "slow": policy(NS, "slow", slow.url, [workload("slow")]),
            "denied": policy(NS, "denied", denied.url, [workload("denied")]),
            "unauthorized": policy(
                NS,
                "unauthorized",
                guarded.url,
                [workload("unauthorized")],
                prometheus={"url": guarded.url, "timeout": "2s", "auth": basic},
            ),
            "empty": policy(
                NS, "empty", prometheus.url, [workload("empty", query=load_query("nobody"))]
            ),
            "nan": policy(
                NS,
                "nan",
                prometheus.url,
                [workload("nan", query=f"{load_query('nan')} * 0 / 0")],
            ),
            # A finite load no service has (4e301 rps; 1.7e308 crashed the planner): its
            # history, read to warm the forecast, is as unusable as the live value.
            "huge": policy(
                NS,
                "huge",
                prometheus.url,
                [workload("huge", query=f"{load_query('huge')} * 1e300")],
                forecast={"method": "auto", "history": "10m"},
            ),
        }
        specs["slow"]["spec"]["prometheus"]["timeout"] = "500ms"
        for spec in specs.values():
            kube_api.create(spec)
        operator = peakpilot_factory()
        probes = {app: PolicyProbe(kube_api, NS, app) for app in apps}
        calm.wait_condition("MetricsAvailable", "True", timeout=40)
        why = {
            "slow": "did not answer within 0.5s",
            "denied": "403",
            "unauthorized": "401",
            "empty": "returned no series",
            "nan": "NaN",
            "huge": "is above 1e+09, the largest load (requests/s) PeakPilot plans for",
        }
        for app, probe in probes.items():
            probe.wait_condition("MetricsAvailable", "False", "MetricsUnavailable")
            assert why[app] in message(probe, "MetricsAvailable"), (app, probe.status())
            assert app in message(probe, "FallbackActive")
            probe.wait_reconciles(2)
            planned = probe.planned(app) or {}
            assert planned.get("desired") == 13, (app, planned)
            # One warning for the outage, not one per reconcile.
            assert len(warnings(probe, "MetricsUnavailable")) == 1, (app, probe.events())
        assert_unharmed(operator, calm, kube_api, dict.fromkeys(apps, 13))
        for app in apps:
            assert replica_history(kube_api, NS, app) == [13]

        # Healed, each one reads 40 rps and scales down to 2, as a working read would have.
        slow.delay = 0.0
        denied.status = None
        kube_api.patch(
            "v1",
            "secrets",
            NS,
            "prom-basic",
            {"data": {"password": base64.b64encode(b"test").decode()}},
        )
        for app in ("empty", "nan", "huge"):
            fixed = {"spec": {"workloads": [workload(app)]}}
            kube_api.patch(GROUP_VERSION, PLURAL, NS, app, fixed)
        # (once its load is read)
        wait_healed(kube_api, probes, 2, ("MetricsAvailable", "True", "AllLoadsRead"), [13, 2])
        assert operator.running
    finally:
        slow.stop()
        denied.stop()


def test_a_stale_sample_holds_the_workload(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    prometheus_factory: PrometheusFactory,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)
    # The newest sample is 200-210 s old: past the 120 s limit, inside Prometheus' 5 min lookback,
    # so the instant query still answers (stamped with the evaluation time, not the sample's).
    end = math.floor((time.time() - 200) / 10) * 10
    load = Series.from_function(
        GAUGE, {"app": "stale"}, lambda _t: 40.0, start=end - 600, end=end, step=10
    )
    old = prometheus_factory(history=[load])
    assert old.query_value(load_query("stale")) == 40.0  # Prometheus itself answers
    kube_api.create(deployment(NS, "stale", 13))  # 40 rps, if read, needs 2
    kube_api.create(policy(NS, "stale", old.url, [workload("stale")]))
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "stale")
    held = probe.wait_condition("MetricsAvailable", "False", "MetricsUnavailable", timeout=40)
    assert re.search(r"the newest sample is 2\d\ds old \(stale, limit 120s\)", held["message"])
    assert "stale" in message(probe, "FallbackActive")
    probe.wait_reconciles(2)
    assert (probe.planned("stale") or {}).get("desired") == 13
    assert len(warnings(probe, "MetricsUnavailable")) == 1
    assert_unharmed(operator, calm, kube_api, {"stale": 13})
    assert replica_history(kube_api, NS, "stale") == [13]


# -- the Kubernetes API


def test_api_errors_hold_the_workload_and_spare_other_policies(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)
    # Each app needs 13 replicas (400 rps) and runs 2: the operator wants to scale every one up.
    apps = ("conflicted", "broken", "forbidden", "nosecret")
    for app in apps:
        load_exporter.set_rate(app, 400)
        kube_api.create(deployment(NS, app, 2))
    kube_api.create(secret(NS, "prom-token", {"token": "s3cret"}))
    bearer = {"bearerTokenSecret": {"name": "prom-token", "key": "token"}}
    for app in apps:
        extra = {}
        if app == "nosecret":
            extra["prometheus"] = {"url": prometheus.url, "timeout": "2s", "auth": bearer}
        kube_api.create(policy(NS, app, prometheus.url, [workload(app)], **extra))

    def on(app: str, **match: object) -> Fault:
        return kube_api.fail(Fault(namespace=NS, times=None, **match))  # type: ignore[arg-type]

    faults = [
        # 409 on every /scale write (someone keeps changing it), and on the status write.
        on("conflicted", status=409, method="PATCH", name="conflicted", subresource="scale"),
        kube_api.fail(
            Fault(
                status=409,
                method="PATCH",
                plural=PLURAL,
                name="conflicted",
                subresource="status",
                times=None,
            )
        ),
        # 500 on reading the target (the object and its /scale).
        on("broken", status=500, method="GET", plural="deployments", name="broken"),
        # 403 on the /scale write (RBAC without patch on deployments/scale).
        on("forbidden", status=403, method="PATCH", name="forbidden", subresource="scale"),
        # 403 outside /scale: the Secret with the Prometheus token (RBAC without get secrets).
        on("nosecret", status=403, method="GET", plural="secrets", name="prom-token"),
    ]
    # 500 on listing the HPAs of a namespace: who else scales its workloads is unknown.
    kube_api.create(deployment(UNOWNED, "unowned", 2))
    load_exporter.set_rate("unowned", 400)
    kube_api.create(policy(UNOWNED, "unowned", prometheus.url, [workload("unowned")]))
    faults.append(
        kube_api.fail(
            Fault(
                status=500,
                method="GET",
                plural="horizontalpodautoscalers",
                namespace=UNOWNED,
                times=None,
            )
        )
    )
    operator = peakpilot_factory()
    calm.wait_condition("MetricsAvailable", "True", timeout=40)
    probes = {app: PolicyProbe(kube_api, NS, app) for app in apps}
    unowned = PolicyProbe(kube_api, UNOWNED, "unowned")
    held = unowned.wait_condition("Ready", "False", "WorkloadProblems")
    assert "held: the ownership check failed" in held["message"] and "500" in held["message"]

    broken = probes["broken"].wait_condition("Ready", "False", "WorkloadProblems")
    assert "HTTP 500" in broken["message"] and "Deployment/broken" in broken["message"]
    forbidden = probes["forbidden"].wait_condition("Ready", "False", "WorkloadProblems")
    assert "forbidden (check the operator's RBAC)" in forbidden["message"]
    # Events are posted after the status patch.
    wait_until(lambda: warnings(probes["forbidden"], "ScaleFailed"), timeout=10, what="ScaleFailed")
    nosecret = probes["nosecret"].wait_condition("MetricsAvailable", "False", "MetricsUnavailable")
    assert "Secret prom-token" in nosecret["message"] and "forbidden" in nosecret["message"]
    # Status writes of "conflicted" all fail while the fault lasts: nothing is recorded yet, and
    # the loop goes on (its /scale writes keep being tried).
    tries = len(kube_api.requests(lambda r: r.method == "PATCH" and r.name == "conflicted"))
    wait_until(
        lambda: (
            len(kube_api.requests(lambda r: r.method == "PATCH" and r.name == "conflicted"))
            >= tries + 6
        ),
        timeout=20,
        what="more /scale and status writes of 'conflicted'",
    )
    assert_unharmed(operator, calm, kube_api, dict.fromkeys(apps, 2))
    for app in apps:
        assert replica_history(kube_api, NS, app) == [2], app
    assert replica_history(kube_api, UNOWNED, "unowned") == [2]
    # Planned, not applied; the target never read is left out of the plan (its replicas are
    # unknown: no share of the budget is guessed for it), and the plan says why.
    forbidden_plan = probes["forbidden"].planned("forbidden") or {}
    assert forbidden_plan.get("desired") == 13, str(forbidden_plan)
    broken_plan = probes["broken"].last_plan() or {}
    assert probes["broken"].planned("broken") is None, str(broken_plan)
    (left_out,) = broken_plan.get("leftOut") or [{}]
    assert left_out.get("name") == "broken", str(broken_plan)
    assert "target unreadable" in left_out.get("reason", "") and "500" in left_out["reason"]

    # The status conflict ends first: the status then says what the /scale conflicts did.
    kube_api.heal(faults[1])
    conflicted = probes["conflicted"].wait_condition("Ready", "False", "WorkloadProblems")
    assert "still conflicting after 3 attempts" in conflicted["message"]
    assert any("conflicting" in m for m in warnings(probes["conflicted"], "ScaleFailed"))

    # Healed, every workload gets its 13 replicas, and every status says so.
    for fault in faults:
        kube_api.heal(fault)
    wait_healed(kube_api, probes, 13, ("Ready", "True", "Reconciled"), [2, 13])
    wait_replicas(kube_api, "unowned", 13, ns=UNOWNED)
    unowned.wait_condition("Ready", "True", "Reconciled")
    assert operator.running and "Traceback" not in operator.log()


def test_a_hung_api_server_is_bounded_by_the_request_timeout(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)
    load_exporter.set_rate("hung", 400)  # needs 13
    kube_api.create(deployment(NS, "hung", 2))
    # The interval (30 s: a 27 s deadline) outlasts the request timeout (read 15 s), so it is
    # the client's timeout that ends the hung call, not the reconcile's deadline.
    kube_api.create(policy(NS, "hung", prometheus.url, [workload("hung")], interval="30s"))
    # Every read of the target (the object and its /scale) is accepted and never answered.
    stuck = kube_api.fail(
        Fault(status=None, hang=True, method="GET", plural="deployments", name="hung", times=None)
    )
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "hung")
    held = probe.wait_condition("Ready", "False", "WorkloadProblems", timeout=60)
    assert (
        "Deployment/hung: the API server did not answer in time (connect 5 s, read 15 s)"
        in (held["message"])
    )
    assert stuck.hits >= 1
    assert_unharmed(operator, calm, kube_api, {"hung": 2})
    assert replica_history(kube_api, NS, "hung") == [2]

    # Answering again (and an edit to reconcile at once), the workload is scaled.
    kube_api.heal(stuck)
    kube_api.patch(GROUP_VERSION, PLURAL, NS, "hung", {"spec": {"interval": "1s"}})
    wait_replicas(kube_api, "hung", 13)
    probe.wait_condition("Ready", "True", "Reconciled")
    assert replica_history(kube_api, NS, "hung") == [2, 13]
    assert operator.running and "Traceback" not in operator.log()


def test_a_target_deleted_mid_cycle_or_without_scale_is_held(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)
    for app in ("checkout", "cart", "worker"):
        load_exporter.set_rate(app, 400)  # needs 13
    for app in ("checkout", "cart"):
        kube_api.create(deployment(NS, app, 2))
    # A custom kind that does not declare the scale subresource.
    kube_api.register_resource("example.com/v1", "queueworkers", "QueueWorker")
    kube_api.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "QueueWorker",
            "metadata": {"name": "worker", "namespace": NS},
            "spec": {"replicas": 2},
        }
    )
    # checkout is deleted between the operator's read and its /scale write.
    gone = kube_api.fail(
        Fault(status=None, delete=True, method="PATCH", name="checkout", subresource="scale")
    )
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout"), workload("cart")]))
    queue = workload("worker", kind="QueueWorker")
    queue["targetRef"]["apiVersion"] = "example.com/v1"
    kube_api.create(policy(NS, "queue", prometheus.url, [queue]))
    operator = peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "peak")
    calm.wait_condition("MetricsAvailable", "True", timeout=40)

    # The write finds it gone; later reconciles cannot read it. cart is scaled all the same.
    wait_until(lambda: gone.hits == 1, timeout=30, what="checkout deleted at its /scale write")
    (failed,) = wait_until(
        lambda: warnings(probe, "ScaleFailed"), timeout=20, what="a ScaleFailed warning"
    )
    assert "checkout" in failed and "not found" in failed
    wait_replicas(kube_api, "cart", 13)
    wait_until(
        lambda: "Deployment/checkout: not found" in message(probe, "Ready"),
        timeout=20,
        what="the status naming the missing target",
    )
    assert (probe.condition("Ready") or {}).get("reason") == "WorkloadProblems"

    # The kind without /scale: held, the status says why, the operator goes on.
    noscale = PolicyProbe(kube_api, NS, "queue").wait_condition(
        "Ready", "False", "WorkloadProblems"
    )
    assert "QueueWorker/worker has no /scale subresource" in noscale["message"]
    assert kube_api.stored("example.com/v1", "queueworkers", NS, "worker")["spec"]["replicas"] == 2
    assert_unharmed(operator, calm, kube_api, {"cart": 2})

    # The target comes back: it is scaled like any other.
    kube_api.create(deployment(NS, "checkout", 2))
    wait_replicas(kube_api, "checkout", 13)
    probe.wait_condition("Ready", "True", "Reconciled")
    assert replica_history(kube_api, NS, "cart") == [2, 13]
    assert operator.running and "Traceback" not in operator.log()


def test_a_dropped_watch_is_watched_again(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)
    operator = peakpilot_factory()
    calm.wait_condition("MetricsAvailable", "True", timeout=40)

    def policy_watches() -> list[object]:
        return kube_api.requests(lambda r: r.action == "WATCH" and r.plural == PLURAL)

    watches = len(policy_watches())
    assert kube_api.drop_watches() >= 1
    wait_until(lambda: len(policy_watches()) > watches, timeout=30, what="a new policy watch")

    # What happens after the drop reaches the operator: a new policy, an edit of an old one.
    load_exporter.set_rate("checkout", 400)  # needs 13
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(policy(NS, "late", prometheus.url, [workload("checkout")]))
    wait_replicas(kube_api, "checkout", 13)
    PolicyProbe(kube_api, NS, "late").wait_condition("Ready", "True", "Reconciled")
    kube_api.patch(GROUP_VERSION, PLURAL, CALM, "calm", {"spec": {"mode": "Preview"}})
    calm.wait_condition("Paused", "True", "Preview")
    assert operator.running and "Traceback" not in operator.log()
    assert replica_history(kube_api, CALM, "steady") == [4]


def test_an_operator_killed_mid_apply_finishes_the_job_after_a_restart(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    for app in ("checkout", "cart"):
        load_exporter.set_rate(app, 400)  # needs 13
        kube_api.create(deployment(NS, app, 2))
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout"), workload("cart")]))
    # cart's /scale write hangs; the operator dies while it waits. The write is then refused
    # (it never reached storage), as when a connection dies with its process.
    stuck = kube_api.fail(
        Fault(status=503, hang=True, method="PATCH", name="cart", subresource="scale", times=None)
    )
    operator = peakpilot_factory()
    wait_until(lambda: stuck.hits >= 1, timeout=40, what="cart's /scale write, hanging")
    assert operator.kill() == -9
    kube_api.heal(stuck)
    assert replica_history(kube_api, NS, "checkout") == [2, 13]  # written before the hang
    assert replica_history(kube_api, NS, "cart") == [2]
    probe = PolicyProbe(kube_api, NS, "peak")
    before = probe.reconciles()

    # A new process re-observes both: checkout is left alone, cart gets its replicas.
    operator.start()
    operator.wait_ready(timeout=60)
    wait_replicas(kube_api, "cart", 13)
    probe.wait_reconciles(2, after=before)
    probe.wait_condition("Ready", "True", "Reconciled")
    assert replica_history(kube_api, NS, "checkout") == [2, 13]
    assert replica_history(kube_api, NS, "cart") == [2, 13]
    assert {w["name"]: w["desired"] for w in (probe.last_plan() or {})["workloads"]} == {
        "checkout": 13,
        "cart": 13,
    }
    assert operator.running and "Traceback" not in operator.log()


# -- two replicas


def reconciled(operator: PeakPilotProcess) -> float:
    """How many reconciles this process has run (its own /metrics): 0 for a standby."""
    return sum(v for (n, _), v in operator.samples().items() if n == "peakpilot_reconciles_total")


def test_two_replicas_one_acts_and_the_other_takes_over_when_it_dies(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    kube_api.register_kopf_peering()
    kube_api.create(
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}
    )
    calm = calm_policy(kube_api, load_exporter, prometheus)
    load_exporter.set_rate("checkout", 400)  # needs 13
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout")]))
    # Each replica's priority comes from its pod name: start the higher one first.
    first, second = sorted(["peakpilot-7c9d-x2k4q", "peakpilot-7c9d-p8z1m"], key=priority_of)[::-1]
    lifetime = {"PEAKPILOT_PEERING_LIFETIME": "6"}  # a dead replica's record expires in 6 s
    active = peakpilot_factory(peering=PEERING, env={"POD_NAME": first, **lifetime})
    wait_replicas(kube_api, "checkout", 13)
    standby = peakpilot_factory(peering=PEERING, env={"POD_NAME": second, **lifetime})

    def records() -> dict[str, Any]:
        peering = kube_api.stored("kopf.dev/v1", "clusterkopfpeerings", None, PEERING)
        return dict(peering.get("status") or {})

    # A peering replica starts paused; it stays so while a live peer has a higher priority.
    wait_until(lambda: set(records()) == {first, second}, timeout=30, what="both records")
    assert records()[first]["priority"] > records()[second]["priority"]

    # Exactly one acts: the active one reconciles on, the standby runs no reconcile at all.
    calm.wait_reconciles(3)
    assert reconciled(active) > 0 and reconciled(standby) == 0
    assert len(scale_patches(kube_api, NS, "checkout")) == 1
    assert standby.running and "Traceback" not in standby.log()

    # The active one dies without a word (its record stays until it expires): the standby
    # resumes and acts on what changed meanwhile.
    assert active.kill() == -9
    load_exporter.set_rate("checkout", 800)  # needs 25
    wait_until(
        lambda: "Resuming operations after the pause" in standby.log(), timeout=40, what="resume"
    )
    wait_replicas(kube_api, "checkout", 25)
    assert reconciled(standby) > 0
    assert replica_history(kube_api, NS, "checkout") == [2, 13, 25]
    assert_unharmed(standby, calm, kube_api, {"checkout": 2})


# -- the solver


def test_the_solver_time_limit_and_an_unmeetable_budget_are_planned_and_said(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)
    # 20 latency SLOs under one cost budget: HiGHS needs more than the 10 ms it is given.
    big = [f"svc{i}" for i in range(20)]
    for i, app in enumerate(big):
        load_exporter.set_rate(app, 200 + 13 * i)
        kube_api.create(deployment(NS, app, 20))
    slo = {"latencyMs": 50, "serviceTimeMs": 20}
    kube_api.create(
        policy(
            NS,
            "big",
            prometheus.url,
            [
                workload(
                    app,
                    capacity=10 + i % 7,
                    slo=slo,
                    priority=1 + i % 5,
                    cost={"perReplicaHour": 0.1 + 0.01 * (i % 3)},
                )
                for i, app in enumerate(big)
            ],
            budget={"maxCostPerHour": 30},  # about 270 replicas of the ~900 wanted
            interval="15s",  # a 13.5 s deadline: 20 queries, the latency curves, the solve
        )
    )
    # Floors no budget can pay for: 4 x 3 replicas at 1/h need 12/h, the budget is 5/h.
    tight = [f"floor{i}" for i in range(4)]
    for app in tight:
        load_exporter.set_rate(app, 400)  # each needs 13
        kube_api.create(deployment(NS, app, 3))
    loads = [workload(app, min_replicas=3, cost={"perReplicaHour": 1.0}) for app in tight]
    kube_api.create(policy(NS, "tight", prometheus.url, loads, budget={"maxCostPerHour": 5}))
    operator = peakpilot_factory(env={"PEAKPILOT_SOLVER_TIME_LIMIT": "0.01"})

    probe = PolicyProbe(kube_api, NS, "big")
    probe.wait_condition("MetricsAvailable", "True", "AllLoadsRead", timeout=60)
    probe.wait_condition("Ready", "True", "Reconciled")
    plan = probe.last_plan() or {}
    solver = plan["solver"]
    # HiGHS checks its clock between phases: on a fast machine it can prove the optimum just past
    # the limit. Either way the plan is the solver's best (or the greedy one), within the budget.
    assert solver["status"] in ("time-limit", "optimal"), solver
    # The solver's best answer is used unless the greedy plan beats it (or there is none): the
    # status says which, and the budget holds either way.
    fallback = probe.condition("FallbackActive") or {}
    if solver["usedGreedy"]:
        assert (fallback["status"], fallback["reason"]) == ("True", "GreedyPlan"), fallback
    else:
        assert fallback.get("status") == "False", fallback
    assert plan["totals"]["costPerHour"] <= 30 + 1e-6, plan["totals"]["costPerHour"]
    assert (probe.condition("BudgetBinding") or {}).get("status") == "True"

    unmeetable = PolicyProbe(kube_api, NS, "tight")
    unmeetable.wait_condition("BudgetBinding", "True", "Binding")
    notes = (unmeetable.last_plan() or {}).get("notes", [])
    assert any("the floors alone need 12.00/h; kept as a soft limit" in n for n in notes), notes
    # The soft limit keeps the program feasible: the solver answers it, no greedy fallback.
    tight_solver = (unmeetable.last_plan() or {})["solver"]
    assert tight_solver["status"] in ("optimal", "time-limit"), tight_solver
    assert tight_solver["usedGreedy"] is False, tight_solver
    for app in tight:
        assert (unmeetable.planned(app) or {}).get("desired") == 3, app
    # (big's workloads are moved within the budget on loads it reads: not a missing-data case)
    assert_unharmed(operator, calm, kube_api, dict.fromkeys(tight, 3))
    for app in tight:
        assert replica_history(kube_api, NS, app) == [3]


def test_a_solver_without_an_answer_falls_back_to_the_greedy_plan(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    calm = calm_policy(kube_api, load_exporter, prometheus)  # one workload: no solver
    # CBC with a 1 microsecond limit stops before it has any solution (40 of 40 runs of this
    # model; HiGHS would keep the greedy start it is given as its answer).
    apps = [f"svc{i}" for i in range(20)]
    for i, app in enumerate(apps):
        load_exporter.set_rate(app, 200 + 13 * i)
        kube_api.create(deployment(NS, app, 20))
    slo = {"latencyMs": 50, "serviceTimeMs": 20}
    loads = [
        workload(app, capacity=10 + i % 7, slo=slo, priority=1 + i % 5)
        for i, app in enumerate(apps)
    ]
    for w in loads:
        w["cost"] = {"perReplicaHour": 0.1}
    spec = policy(NS, "big", prometheus.url, loads, budget={"maxCostPerHour": 30}, interval="5s")
    kube_api.create(spec)
    no_answer = {"PEAKPILOT_SOLVER": "cbc", "PEAKPILOT_SOLVER_TIME_LIMIT": "0.000001"}
    operator = peakpilot_factory(env=no_answer)

    probe = PolicyProbe(kube_api, NS, "big")
    fallback = probe.wait_condition("FallbackActive", "True", "GreedyPlan", timeout=60)
    assert fallback["message"].startswith("greedy plan: the solver"), fallback
    solver = (probe.last_plan() or {})["solver"]
    assert (solver["name"], solver["usedGreedy"]) == ("cbc", True), solver
    assert solver["fallbackReason"] in fallback["message"]

    def applied() -> bool:
        """Every workload runs what the last (greedy) plan says, within the budget."""
        plan = probe.last_plan() or {}
        desired = {w["name"]: w["desired"] for w in plan.get("workloads", [])}
        on = {app: replicas(kube_api, NS, app) for app in apps}
        return (
            plan["solver"]["usedGreedy"] and desired == on and plan["totals"]["costPerHour"] <= 30
        )

    wait_until(applied, timeout=40, what="the greedy plan applied within the budget")
    probe.wait_condition("Ready", "True", "Reconciled")
    assert (probe.condition("BudgetBinding") or {}).get("status") == "True"
    probe.wait_reconciles(3)
    assert len(warnings(probe, "GreedyPlan")) == 1, probe.events()  # not one per reconcile
    assert operator.sample("peakpilot_greedy_fallback", namespace=NS, policy="big") == 1
    assert_unharmed(operator, calm, kube_api, {})

    # Healed: the default solver and limit answer, the condition clears, the budget holds.
    assert operator.stop() == 0
    healthy = peakpilot_factory()
    probe.wait_condition("FallbackActive", "False", "None", timeout=60)
    plan = probe.last_plan() or {}
    assert (plan["solver"]["name"], plan["solver"]["usedGreedy"]) == ("highs", False)
    assert plan["totals"]["costPerHour"] <= 30 + 1e-6
    assert healthy.sample("peakpilot_greedy_fallback", namespace=NS, policy="big") == 0
    assert "Traceback" not in operator.log() + healthy.log()
