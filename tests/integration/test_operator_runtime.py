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
from harness import EmulatedCluster, PrometheusFactory, PrometheusServer, Series, wait_until
from harness.peakpilot import (
    PeakPilotProcess,
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
