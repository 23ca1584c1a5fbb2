"""The uninstall order of charts/peakpilot/README.md ("Uninstall"), with the real Helm engine and
the real operator process against the emulated API server.

`helm install` (helm-sdkpy, the Go engine) creates the release's objects in the emulator; the
emulator runs no pods, so the test starts the operator the release's Deployment describes (its
container args and environment, with free ports) as a process against the same API. Then:

* in the documented order, `kubectl delete scalingpolicies --all -A` completes while the operator
  runs (Kopf stops each policy's loop and removes the finalizer), and `helm uninstall` removes the
  release's objects (not the CRD, which Helm never deletes);
* in the wrong order (uninstall first: the operator pod goes with its Deployment), a policy's
  deletion waits on the finalizer, and the README's recovery (a merge patch that removes it)
  lets it complete.

Each README command runs verbatim with kubectl when kubectl is on the PATH; without it, the same
requests go through the emulator's HTTP API, so the test needs no kubectl.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import EmulatedCluster, OperatorProcess, PolicyProbe, free_port, wait_until
from harness.helm import HelmSession
from harness.peakpilot import GROUP_VERSION, PLURAL, deployment, policy, workload

pytestmark = [pytest.mark.integration, pytest.mark.chart]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "peakpilot"
RELEASE = NAMESPACE = "peakpilot"  # as the chart README installs it
FINALIZER = "peakpilot.io/finalizer"
SHOP = "shop"
# Nothing listens there: each reconcile holds the workloads (load unavailable), which is all
# these scenarios need from a policy.
NO_PROMETHEUS = "http://127.0.0.1:9"
KUBECTL = shutil.which("kubectl")


def readme_block(after: str) -> str:
    """The first ```sh block of the chart README after the line containing `after`."""
    text = (CHART / "README.md").read_text()
    start = text.index(after)
    match = re.search(r"^```sh\n(.*?)^```$", text[start:], re.M | re.S)
    assert match, f"no sh block after {after!r}"
    return match.group(1)


DELETE_FIRST = readme_block("So remove things in this order")
RECOVERY = readme_block("If the operator is already gone")


def kubectl(script: str, cluster: EmulatedCluster, timeout: float = 60) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, **cluster.env()},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}{done.stderr}"
    return done.stdout


def policies(cluster: EmulatedCluster) -> list[dict[str, Any]]:
    status, body = cluster.request("GET", f"/apis/{GROUP_VERSION}/{PLURAL}")
    assert status == 200, body
    return list(body["items"])


def delete_policies(cluster: EmulatedCluster) -> None:
    """The README's `kubectl delete scalingpolicies --all -A` (kubectl waits until they go)."""
    (command,) = [ln for ln in DELETE_FIRST.splitlines() if "kubectl delete scalingpolicies" in ln]
    command = command.split("#")[0].strip()
    assert command == "kubectl delete scalingpolicies --all -A"
    if KUBECTL:
        kubectl(f"{command} --timeout=30s", cluster)
        return
    for item in policies(cluster):
        meta = item["metadata"]
        cluster.delete(GROUP_VERSION, PLURAL, meta["namespace"], meta["name"])
    wait_until(lambda: not policies(cluster), timeout=30, what="the policies to go")


def remove_finalizers(cluster: EmulatedCluster) -> None:
    """The README's recovery loop: a merge patch `finalizers: null` on every policy."""
    if KUBECTL:
        kubectl(RECOVERY, cluster)
        return
    (patch_line,) = [ln for ln in RECOVERY.splitlines() if "kubectl patch" in ln]
    words = shlex.split(patch_line)
    assert words[words.index("--type") + 1] == "merge"
    patch = json.loads(words[words.index("-p") + 1])
    for item in policies(cluster):
        meta = item["metadata"]
        cluster.patch(GROUP_VERSION, PLURAL, meta["namespace"], meta["name"], patch)


def chart_operator(
    release: dict[str, Any], cluster: EmulatedCluster, workdir: Path
) -> OperatorProcess:
    """The operator as the release's Deployment runs it: its container's args and environment
    (`peakpilot` is the image's ENTRYPOINT), on free ports and with the emulator's kubeconfig."""
    objects = [d for d in yaml.safe_load_all(release["manifest"]) if d]
    (dep,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["operator", "--all-namespaces", "--standalone"]
    ports = {"PEAKPILOT_METRICS_PORT": free_port(), "PEAKPILOT_LIVENESS_PORT": free_port()}
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env.keys() >= ports.keys()
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"POD_NAME": f"{dep['metadata']['name']}-0", "TMPDIR": str(workdir)}
    command = [sys.executable, "-m", "peakpilot.cli", *container["args"]]
    command += ["--kubeconfig", str(cluster.kubeconfig)]
    process = OperatorProcess(
        (),
        workdir=workdir,
        env={**cluster.env(), **env},
        name="chart-operator",
        command=command,
        liveness_port=ports["PEAKPILOT_LIVENESS_PORT"],
    )
    process.start()
    process.wait_ready(timeout=60)
    return process


@pytest.fixture
def helm(kube_api: EmulatedCluster, workdir: Path) -> Iterator[HelmSession]:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    HelmSession.prepare(kube_api, chart["kubeVersion"].removeprefix(">=").split("-")[0])
    with HelmSession(kube_api.kubeconfig, NAMESPACE, workdir / "helm") as session:
        yield session


@pytest.fixture
def installed(
    kube_api: EmulatedCluster, helm: HelmSession, workdir: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[OperatorProcess, PolicyProbe]]:
    """The chart installed, its operator running, and one policy it has reconciled."""
    release = helm.install(RELEASE, CHART)
    assert release["info"]["status"] == "deployed"
    operator = chart_operator(release, kube_api, workdir / "operator")
    try:
        kube_api.create(deployment(SHOP, "web", 3))
        kube_api.create(policy(SHOP, "peak", NO_PROMETHEUS, [workload("web")]))
        probe = PolicyProbe(kube_api, SHOP, "peak")
        probe.wait_reconciles(1, after=0)
        assert FINALIZER in probe.obj()["metadata"]["finalizers"]
        yield operator, probe
    finally:
        operator.stop()
        failed = any(
            getattr(request.node, f"_report_{when}", None) is not None
            and getattr(request.node, f"_report_{when}").failed
            for when in ("setup", "call")
        )
        if failed:
            print(f"\n----- operator log -----\n{operator.log_tail(80)}")
            print(f"\n----- helm log -----\n{helm.log_tail()}")


def release_objects(cluster: EmulatedCluster) -> dict[str, bool]:
    """Whether each object of the default install exists."""
    refs = {
        "Deployment": ("apps/v1", "deployments", NAMESPACE, RELEASE),
        "ServiceAccount": ("v1", "serviceaccounts", NAMESPACE, RELEASE),
        "Service": ("v1", "services", NAMESPACE, f"{RELEASE}-metrics"),
        "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles", None, RELEASE),
        "ClusterRoleBinding": (
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            None,
            RELEASE,
        ),
    }
    return {kind: cluster.exists(*ref) for kind, ref in refs.items()}


def crd_exists(cluster: EmulatedCluster) -> bool:
    return cluster.exists(
        "apiextensions.k8s.io/v1", "customresourcedefinitions", None, "scalingpolicies.peakpilot.io"
    )


def test_policies_first_then_helm_uninstall(
    kube_api: EmulatedCluster,
    helm: HelmSession,
    installed: tuple[OperatorProcess, PolicyProbe],
) -> None:
    operator, probe = installed
    # The unreadable load is null in status.lastPlan, never "needs 0" (the plan document).
    web = probe.planned("web") or {}
    assert web.get("load") is None and web.get("source") == "missing"
    assert [web.get(k) for k in ("demand", "needed", "utilization")] == [None] * 3
    assert all(release_objects(kube_api).values())

    # 1. the policies, while the operator runs: Kopf stops each loop and lets each one go.
    started = time.monotonic()
    delete_policies(kube_api)
    took = time.monotonic() - started
    assert not kube_api.exists(*probe.ref)
    assert took < 15, f"the deletion took {took:.1f} s"
    reconciles = probe.reconciles()
    time.sleep(2)  # two intervals of the policy: its loop is gone, nothing writes to it
    assert probe.reconciles() == reconciles
    assert operator.running  # and the operator runs on

    # 2. the release: Helm deletes every object it created; the CRD stays (Helm never deletes
    #    crds/), and the README's third command is optional.
    helm.uninstall(RELEASE)
    assert helm.releases() == []
    assert release_objects(kube_api) == dict.fromkeys(release_objects(kube_api), False)
    assert crd_exists(kube_api)


def test_operator_gone_first_the_readme_patch_releases_the_policies(
    kube_api: EmulatedCluster,
    helm: HelmSession,
    installed: tuple[OperatorProcess, PolicyProbe],
) -> None:
    operator, probe = installed
    # The wrong order: uninstall first. The operator's pod goes with its Deployment.
    helm.uninstall(RELEASE)
    assert not any(release_objects(kube_api).values())
    assert operator.stop() == 0

    # Deleting the policy now waits on the finalizer: nothing is left to remove it.
    deleting = kube_api.delete(*probe.ref)
    assert deleting is not None and deleting["metadata"]["deletionTimestamp"]
    time.sleep(3)
    held = probe.obj()["metadata"]
    assert held["deletionTimestamp"] and FINALIZER in held["finalizers"]

    # The README's recovery removes the finalizer, and the deletion completes.
    remove_finalizers(kube_api)
    wait_until(lambda: not kube_api.exists(*probe.ref), timeout=10, what="the policy to go")
    assert policies(kube_api) == []
