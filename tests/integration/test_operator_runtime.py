"""The operator process at run time: which cluster it talks to (--kubeconfig), how long a
reconcile may take, liveness, SIGTERM and peering. Real operator processes against the API
emulator and a real (backfilled) Prometheus.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import (
    EmulatedCluster,
    PeakPilotFactory,
    PolicyProbe,
    PrometheusFactory,
    PrometheusServer,
    Series,
    wait_until,
)
from harness.net import http_get
from harness.peakpilot import (
    PeakPilotProcess,
    RecordingProxy,
    deployment,
    policy,
    replicas,
    scale_patches,
    workload,
)

pytestmark = pytest.mark.integration

NS = "shop"
GAUGE = "app_load_requests_per_second"
CRD = Path(__file__).resolve().parents[2] / "crds" / "scalingpolicies.peakpilot.io.yaml"


def backfilled(factory: PrometheusFactory, loads: dict[str, float]) -> PrometheusServer:
    """A Prometheus holding each app's constant load up to under a minute ago (an instant query now
    sees the last sample): ready at once, no scrape to wait for."""
    end = math.floor(time.time() / 60) * 60  # the last sample under a minute old: fresh
    series = [
        Series.from_function(
            GAUGE, {"app": app}, lambda _t, v=v: v, start=end - 600, end=end, step=60
        )
        for app, v in loads.items()
    ]
    return factory(history=series)


@pytest.fixture
def decoy_api(workdir: Path) -> Iterator[EmulatedCluster]:
    """A second emulated API server: what ~/.kube/config points at in the --kubeconfig test."""
    cluster = EmulatedCluster(workdir / "decoy").start()
    try:
        cluster.register_crd(yaml.safe_load(CRD.read_text()))
        yield cluster
    finally:
        cluster.stop()


def test_kubeconfig_flag_is_used_for_watches_and_scale_patches(
    kube_api: EmulatedCluster,
    decoy_api: EmulatedCluster,
    prometheus_factory: PrometheusFactory,
    workdir: Path,
) -> None:
    server = backfilled(prometheus_factory, {"checkout": 400})  # needs 13 replicas
    for cluster in (kube_api, decoy_api):  # the same objects in both: either could be acted on
        cluster.create(deployment(NS, "checkout", 2))
        cluster.create(policy(NS, "peak", server.url, [workload("checkout")]))
    # The flag's file is not in KUBECONFIG, and ~/.kube/config names the decoy.
    home = workdir / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(yaml.safe_dump(decoy_api.kubeconfig_dict()))
    flag_file = workdir / "elsewhere" / "operator.kubeconfig"
    flag_file.parent.mkdir()
    flag_file.write_text(kube_api.kubeconfig.read_text())

    process = PeakPilotProcess(workdir=workdir / "peakpilot", kubeconfig=flag_file)
    process.env.pop("KUBECONFIG", None)
    process.env["HOME"] = str(home)
    with process:
        process.wait_ready(timeout=60)
        wait_until(
            lambda: replicas(kube_api, NS, "checkout") == 13, timeout=30, what="checkout at 13"
        )
        assert kube_api.requests(lambda r: r.action == "WATCH" and r.plural == "scalingpolicies"), (
            "Kopf watches FILE's server"
        )
        assert len(scale_patches(kube_api, NS, "checkout")) == 1
    # The test itself set the decoy up (urllib); nothing else ever called it.
    callers = {r.user_agent for r in decoy_api.requests()}
    assert all((ua or "").startswith("Python-urllib") for ua in callers), callers
    assert replicas(decoy_api, NS, "checkout") == 2


def test_every_kubernetes_call_has_a_request_timeout(workdir: Path) -> None:
    from kubernetes import client

    from peakpilot.kube import Kube, KubeError, Target, load_configuration

    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kubeconfig = workdir / "silent.kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "silent", "cluster": {"server": url}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "silent", "context": {"cluster": "silent", "user": "u"}}],
                    "current-context": "silent",
                }
            )
        )
        # The operator's own configuration (no silent urllib3 retries), a short timeout.
        kube = Kube(client.ApiClient(load_configuration(str(kubeconfig))), timeout=(1.0, 0.5))
        target = Target("apps/v1", "Deployment", "checkout", NS)
        calls = [
            lambda: kube.read_target(target),
            lambda: kube.read_scale(target),
            lambda: kube.write_scale(target, 3, "1"),
            lambda: kube.autoscalers(NS),
            lambda: kube.patch_status(NS, "peak", {}),
        ]
        for call in calls:
            with pytest.raises(
                KubeError, match=r"did not answer in time \(connect 1 s, read 0.5 s\)"
            ):
                call()


def test_a_reconcile_past_its_deadline_is_held_and_spares_other_policies(
    kube_api: EmulatedCluster,
    prometheus_factory: PrometheusFactory,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    server = backfilled(prometheus_factory, {"checkout": 400, "cart": 400})  # 13 replicas each
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(deployment(NS, "cart", 2))
    kube_api.create(policy(NS, "fast", server.url, [workload("checkout")]))
    with RecordingProxy(server.url) as slow:
        slow.delay = 8  # answers, with the load that would scale cart up, after the deadline
        kube_api.create(
            policy(
                NS,
                "slow",
                slow.url,
                [workload("cart")],
                interval="4s",  # deadline max(4 - 0.4, time limit 1 + 2) = 3.6 s
                prometheus={"url": slow.url, "timeout": "20s"},
            )
        )
        operator = peakpilot_factory(["--time-limit", "1"])
        late, fast = PolicyProbe(kube_api, NS, "slow"), PolicyProbe(kube_api, NS, "fast")
        ready = late.wait_condition("Ready", "False", "DeadlineExceeded")
        assert "deadline (3.6 s for an interval of 4 s)" in ready["message"]
        assert "the workloads are held" in ready["message"]
        # The first answer came (a second query means that reconcile's thread had ended, with
        # its decision to scale cart up), and it was not applied.
        wait_until(lambda: len(slow.requests("/api/v1/query")) >= 2, timeout=40, what="2 queries")
        # Meanwhile the healthy policy went on: scaled, and reconciled again and again.
        wait_until(lambda: replicas(kube_api, NS, "checkout") == 13, timeout=30, what="13")
        fast.wait_reconciles(3)
        assert fast.condition("Ready")["status"] == "True"  # type: ignore[index]
        assert late.condition("Ready")["reason"] == "DeadlineExceeded"  # type: ignore[index]
        assert scale_patches(kube_api, NS, "cart") == []
        assert replicas(kube_api, NS, "cart") == 2
        warnings = [e for e in late.events() if e["reason"] == "DeadlineExceeded"]
        assert len(warnings) == 1 and warnings[0]["type"] == "Warning"  # once, not per interval
        assert (
            operator.sample("peakpilot_reconciles_total", policy="slow", outcome="deadline") or 0
        ) >= 1
        # Liveness stays up: one slow tenant among healthy ones is its own status, not a restart.
        assert http_get(f"http://127.0.0.1:{operator.liveness_port}/healthz")[0] == 200


def test_liveness_fails_when_reconciles_are_stuck_and_sigterm_still_stops(
    kube_api: EmulatedCluster,
    prometheus_factory: PrometheusFactory,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    server = backfilled(prometheus_factory, {"checkout": 400})
    kube_api.create(deployment(NS, "checkout", 2))
    with RecordingProxy(server.url) as hung:
        hung.delay = 120  # a Prometheus that takes the whole query timeout
        kube_api.create(
            policy(
                NS,
                "peak",
                hung.url,
                [workload("checkout")],
                prometheus={"url": hung.url, "timeout": "30s"},
            )
        )
        operator = peakpilot_factory(["--time-limit", "1"])
        healthz = f"http://127.0.0.1:{operator.liveness_port}/healthz"
        probe = PolicyProbe(kube_api, NS, "peak")
        probe.wait_condition("Ready", "False", "DeadlineExceeded")
        # Stuck past 3 periods (interval 1 s, deadline 3 s), no policy finishing: /healthz fails.
        status = wait_until(
            lambda: (code := http_get(healthz)[0]) != 200 and code, timeout=40, what="unhealthy"
        )
        assert status == 500
        # SIGTERM while the reconcile's thread is still blocked: a clean exit, no SIGKILL needed.
        assert operator.running
        assert operator.stop(timeout=10) == 0
        assert replicas(kube_api, NS, "checkout") == 2


def test_edits_pause_and_mode_apply_within_a_tick_whatever_the_interval(
    kube_api: EmulatedCluster,
    prometheus_factory: PrometheusFactory,
    peakpilot_factory: PeakPilotFactory,
) -> None:
    server = backfilled(prometheus_factory, {"checkout": 400})
    kube_api.create(deployment(NS, "checkout", 2))
    ref = ("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")
    kube_api.create(
        policy(NS, "peak", server.url, [workload("checkout")], mode="Preview", interval="1h")
    )
    peakpilot_factory()
    probe = PolicyProbe(kube_api, NS, "peak")
    probe.wait_condition("Paused", "True", "Preview")
    assert replicas(kube_api, NS, "checkout") == 2
    # Each change is acted on long before the hour is up (the waits are 30 s at most).
    kube_api.patch(*ref, {"spec": {"mode": "Enforce"}})
    wait_until(lambda: replicas(kube_api, NS, "checkout") == 13, timeout=30, what="13")
    kube_api.patch(*ref, {"metadata": {"annotations": {"peakpilot.io/paused": "true"}}})
    probe.wait_condition("Paused", "True", "PausedByAnnotation")
    kube_api.patch(*ref, {"metadata": {"annotations": {"peakpilot.io/paused": None}}})
    probe.wait_condition("Paused", "False", "Active")
    kube_api.patch(*ref, {"spec": {"mode": "Off"}})
    probe.wait_condition("Paused", "True", "ModeOff")
    # An interval above the maximum is reported, not slept on.
    kube_api.patch(*ref, {"spec": {"interval": "2h"}})
    invalid = probe.wait_condition("Ready", "False", "InvalidSpec")
    assert "interval must be between 1s and 1h" in invalid["message"]
