"""A Kopf operator runs against the emulated API: as a real process (the way product tests
should run the operator) and in-process with kopf.testing.KopfRunner."""

from __future__ import annotations

import os
import time
from typing import Any

import kopf
import pytest
from harness import OPERATORS_DIR, EmulatedCluster, OperatorFactory, SeenRequest, wait_until
from kopf.testing import KopfRunner

pytestmark = pytest.mark.integration

NS = "shop"
TOY = str(OPERATORS_DIR / "toy_operator.py")
SP = ("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")


def seed(kube_api: EmulatedCluster, *, replicas: int) -> None:
    labels = {"app": "checkout"}
    kube_api.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}},
        }
    )
    # The toy's own spec fields: the emulator does not validate against the CRD schema.
    kube_api.create(
        {
            "apiVersion": "peakpilot.io/v1alpha1",
            "kind": "ScalingPolicy",
            "metadata": {"name": "peak", "namespace": NS},
            "spec": {"target": "checkout", "replicas": replicas},
        }
    )


def replicas(kube_api: EmulatedCluster) -> int:
    return int(kube_api.stored("apps/v1", "deployments", NS, "checkout")["spec"]["replicas"])


def toy_status(kube_api: EmulatedCluster) -> dict[str, Any]:
    return dict(kube_api.stored(*SP).get("status", {}).get("toy", {}))


def is_scale_patch(r: SeenRequest) -> bool:
    return (r.method, r.plural, r.subresource) == ("PATCH", "deployments", "scale")


@pytest.mark.parametrize("scope", [["-n", NS], ["-A"]], ids=["namespaced", "cluster-wide"])
def test_kopf_operator_process_patches_scale_and_status(
    kube_api: EmulatedCluster, operator_factory: OperatorFactory, scope: list[str]
) -> None:
    seed(kube_api, replicas=6)

    operator = operator_factory(["--standalone", *scope, TOY], env={"TOY_INTERVAL": "0.3"})
    assert operator.ready_after is not None and operator.ready_after < 20
    kube_api.wait_for_request(lambda r: r.action == "WATCH" and r.plural == "scalingpolicies")

    # The reconcile went through /scale of the Deployment and /status of the policy ...
    wait_until(lambda: replicas(kube_api) == 6, timeout=15, what="the /scale patch")
    scale_patch = kube_api.wait_for_request(is_scale_patch)
    assert scale_patch.data == {"spec": {"replicas": 6}}
    status = wait_until(lambda: toy_status(kube_api), timeout=15, what="the status patch")
    assert status | {"time": 0} == {
        "target": "checkout",
        "before": 2,
        "desired": 6,
        "selector": "app=checkout",
        "observedGeneration": 1,
        "time": 0,
    }
    status_patches = kube_api.requests(
        lambda r: r.method == "PATCH" and r.plural == "scalingpolicies" and bool(r.subresource)
    )
    assert {r.subresource for r in status_patches} == {"status"}
    # ... and posted an Event, which Kopf names with generateName.
    event = kube_api.wait_for_request(lambda r: r.method == "POST" and r.plural == "events")
    assert event.data["metadata"]["generateName"] and event.data["reason"] == "Scaled"

    # A spec change is picked up on the next timer tick.
    kube_api.patch(*SP, {"spec": {"replicas": 3}})
    wait_until(lambda: replicas(kube_api) == 3, timeout=15, what="the second /scale patch")
    wait_until(
        lambda: toy_status(kube_api).get("observedGeneration") == 2,
        timeout=15,
        what="the status to follow the new generation",
    )

    # Kopf put its finalizer on the policy (timers need one); deleting the policy waits for
    # the operator to release it, then the object is gone.
    assert kube_api.stored(*SP)["metadata"]["finalizers"]
    deleting = kube_api.delete(*SP)
    assert deleting is not None and deleting["metadata"]["deletionTimestamp"]
    wait_until(lambda: not kube_api.exists(*SP), timeout=15, what="the finalizer release")

    assert operator.stop() == 0, operator.log_tail()  # SIGTERM: a clean exit
    assert "Traceback" not in operator.log()


def test_kopf_runner_in_process(kube_api: EmulatedCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process works too, but global state leaks in: see README.md before using it."""
    import kubernetes.config.kube_config as kube_config

    seed(kube_api, replicas=4)
    monkeypatch.setenv("KUBECONFIG", str(kube_api.kubeconfig))
    # The client (and Kopf's login through it) read KUBECONFIG once, when first imported.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube_api.kubeconfig))
    monkeypatch.setenv("TOY_INTERVAL", "0.3")
    started = time.monotonic()
    args = ["run", "--standalone", "-n", NS, TOY]
    # A fresh registry, else the toy's handlers would stay in Kopf's process-wide one. It lacks
    # the built-in login handlers of the default registry, so add one. `kopf run` also makes the
    # given registry the process default: put the old one back afterwards.
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)
    previous = kopf.get_default_registry()
    try:
        with KopfRunner(args, timeout=15, registry=registry) as runner:
            wait_until(lambda: replicas(kube_api) == 4, timeout=15, what="the /scale patch")
            wait_until(lambda: toy_status(kube_api), timeout=15, what="the status patch")
    finally:
        kopf.set_default_registry(previous)
    elapsed = time.monotonic() - started

    assert runner.exit_code == 0 and runner.exception is None
    assert "Timer 'reconcile' succeeded" in runner.output
    assert elapsed < 15
    assert os.environ["KUBECONFIG"] == str(kube_api.kubeconfig)
