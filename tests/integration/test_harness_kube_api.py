"""The emulated Kubernetes API: what the operator relies on works like a real API server."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import urllib3
from harness import EmulatedCluster, Fault
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration

NS = "shop"


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            },
        },
    }


def policy(name: str = "peak") -> dict[str, Any]:
    return {
        "apiVersion": "peakpilot.io/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"mode": "Preview", "workloads": []},
    }


def test_scale_subresource_reads_and_writes_the_workload(
    kube_api: EmulatedCluster, kube_client: Any
) -> None:
    apps = client.AppsV1Api(kube_client)
    kube_api.create_namespace(NS)
    created = apps.create_namespaced_deployment(NS, deployment("checkout"))
    assert created.metadata.uid and created.metadata.generation == 1

    scale = apps.read_namespaced_deployment_scale("checkout", NS)
    assert (scale.kind, scale.spec.replicas, scale.status.selector) == ("Scale", 2, "app=checkout")

    patched = apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 7}})
    assert patched.spec.replicas == 7
    stored = kube_api.stored("apps/v1", "deployments", NS, "checkout")
    assert stored["spec"]["replicas"] == 7
    assert stored["metadata"]["generation"] == 2  # a spec change, as on a real API server
    assert int(stored["metadata"]["resourceVersion"]) > int(created.metadata.resource_version)

    # PUT (replace) with a stale resourceVersion is refused; with the current one it works.
    patched.spec.replicas = 9
    stale = client.V1Scale(
        metadata=client.V1ObjectMeta(name="checkout", resource_version="1"),
        spec=client.V1ScaleSpec(replicas=3),
    )
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment_scale("checkout", NS, stale)
    assert conflict.value.status == 409
    assert apps.replace_namespaced_deployment_scale("checkout", NS, patched).spec.replicas == 9

    # StatefulSets have /scale too; a resource without it answers 404.
    sts = deployment("db") | {"kind": "StatefulSet"}
    apps.create_namespaced_stateful_set(NS, sts)
    apps.patch_namespaced_stateful_set_scale("db", NS, {"spec": {"replicas": 4}})
    assert kube_api.stored("apps/v1", "statefulsets", NS, "db")["spec"]["replicas"] == 4
    status, _ = kube_api.request("GET", f"/api/v1/namespaces/{NS}/configmaps/x/scale")
    assert status == 404


def test_status_subresource_conflicts_and_patch_types(kube_api: EmulatedCluster) -> None:
    sp = ("peakpilot.io/v1alpha1", "scalingpolicies", NS, "peak")
    created = kube_api.create(policy())
    version = created["metadata"]["resourceVersion"]

    # /status changes only status; the main resource cannot change status.
    kube_api.patch(*sp, {"status": {"observedGeneration": 1}, "spec": {"mode": "Off"}}, "status")
    kube_api.patch(*sp, {"status": {"observedGeneration": 99}, "metadata": {"labels": {"a": "b"}}})
    stored = kube_api.stored(*sp)
    assert stored["spec"]["mode"] == "Preview"
    assert stored["status"] == {"observedGeneration": 1}
    assert stored["metadata"]["labels"] == {"a": "b"}
    assert stored["metadata"]["generation"] == 1  # neither patch changed the spec

    # Optimistic concurrency: a merge patch with a stale resourceVersion is a 409,
    # a JSON patch whose "test" op fails is a 422 (Kopf relies on both).
    path = kube_api.path(*sp)
    status, _ = kube_api.request(
        "PATCH", path, {"metadata": {"resourceVersion": version}, "spec": {"mode": "Off"}}
    )
    assert status == 409
    stale_test = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "replace", "path": "/spec/mode", "value": "Off"},
    ]
    assert kube_api.request("PATCH", path, stale_test)[0] == 422
    current = kube_api.stored(*sp)["metadata"]["resourceVersion"]
    fresh_test = [{**stale_test[0], "value": current}, stale_test[1]]
    status, body = kube_api.request("PATCH", path, fresh_test)
    assert (status, body["spec"]["mode"], body["metadata"]["generation"]) == (200, "Off", 2)

    # A patch that changes nothing stores no new version (and so emits no watch event).
    versions = len(kube_api.history(*sp))
    kube_api.patch(*sp, {"spec": {"mode": "Off"}})
    assert len(kube_api.history(*sp)) == versions


def test_watch_streams_changes_with_resource_versions(
    kube_api: EmulatedCluster, kube_client: Any
) -> None:
    apps = client.AppsV1Api(kube_client)
    kube_api.create(deployment("checkout"))
    seen: list[tuple[str, int, int]] = []

    def consume() -> None:
        stream = watch.Watch().stream(
            apps.list_namespaced_deployment, NS, timeout_seconds=5, _request_timeout=10
        )
        for event in stream:
            obj = event["object"]
            seen.append((event["type"], obj.spec.replicas, int(obj.metadata.resource_version)))
            if len(seen) == 3:
                break

    watcher = threading.Thread(target=consume, daemon=True)
    watcher.start()
    kube_api.wait_for_request(lambda r: r.action == "WATCH" and r.plural == "deployments")
    apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 3}})
    apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 4}})
    watcher.join(10)

    assert [(kind, replicas) for kind, replicas, _ in seen] == [
        ("ADDED", 2),
        ("MODIFIED", 3),
        ("MODIFIED", 4),
    ]
    versions = [rv for _, _, rv in seen]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_discovery_namespaces_events_and_hpas(kube_api: EmulatedCluster, kube_client: Any) -> None:
    def names(path: str) -> set[str]:
        return {r["name"] for r in kube_api.request("GET", path)[1]["resources"]}

    assert {"deployments/scale", "statefulsets/scale", "deployments/status"} <= names(
        "/apis/apps/v1"
    )
    assert "scalingpolicies/status" in names("/apis/peakpilot.io/v1alpha1")
    assert "horizontalpodautoscalers" in names("/apis/autoscaling/v2")
    assert {"events", "namespaces"} <= names("/api/v1")
    assert "deployments/scale" in {
        r.name for r in client.AppsV1Api(kube_client).get_api_resources().resources
    }  # the generated client asks with a trailing slash

    core = client.CoreV1Api(kube_client)
    kube_api.create_namespace(NS)
    assert NS in {n.metadata.name for n in core.list_namespace().items}

    # Events as Kopf posts them: no name, only generateName.
    event = {
        "metadata": {"generateName": "kopf-event-"},
        "involvedObject": {"kind": "ScalingPolicy", "name": "peak", "namespace": NS},
        "reason": "Scaled",
        "message": "checkout: 2 -> 6",
        "type": "Normal",
    }
    first = core.create_namespaced_event(NS, event)
    second = core.create_namespaced_event(NS, event)
    assert first.metadata.name.startswith("kopf-event-")
    assert first.metadata.name != second.metadata.name

    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "checkout"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
            "minReplicas": 1,
            "maxReplicas": 5,
        },
    }
    autoscaling = client.AutoscalingV2Api(kube_client)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(NS, hpa)
    listed = autoscaling.list_namespaced_horizontal_pod_autoscaler(NS).items
    assert [h.spec.scale_target_ref.name for h in listed] == ["checkout"]


def test_injected_faults_fail_before_changing_anything(
    kube_api: EmulatedCluster, kube_client: Any
) -> None:
    apps = client.AppsV1Api(kube_client)
    kube_api.create(deployment("checkout", replicas=2))
    fault = kube_api.fail(Fault(status=503, method="PATCH", subresource="scale", times=1))

    with pytest.raises(ApiException) as failed:
        apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 8}})
    assert failed.value.status == 503
    assert kube_api.stored("apps/v1", "deployments", NS, "checkout")["spec"]["replicas"] == 2
    assert fault.hits == 1

    apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 8}})  # healed
    assert kube_api.stored("apps/v1", "deployments", NS, "checkout")["spec"]["replicas"] == 8
    scale_patches = kube_api.requests(lambda r: r.method == "PATCH" and r.subresource == "scale")
    assert [r.data for r in scale_patches] == [{"spec": {"replicas": 8}}] * 2


def test_hung_requests_deleted_targets_and_dropped_watches(
    kube_api: EmulatedCluster, kube_client: Any
) -> None:
    apps = client.AppsV1Api(kube_client)
    kube_api.create(deployment("checkout", replicas=2))

    # Hung: the request is accepted and never answered, until the fault is healed.
    hang = kube_api.fail(Fault(status=None, hang=True, method="GET", name="checkout", times=None))
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="Read timed out"):
        apps.read_namespaced_deployment("checkout", NS, _request_timeout=0.5)
    assert hang.hits >= 1  # the client retried, each try hung
    answered: list[int] = []

    def read() -> None:
        answered.append(apps.read_namespaced_deployment("checkout", NS).spec.replicas)

    pending = threading.Thread(target=read)
    pending.start()
    kube_api.wait_for_request(lambda r: r.method == "GET" and r.name == "checkout", timeout=5)
    kube_api.heal(hang)  # a healed hang is served as usual (status=None)
    pending.join(10)
    assert answered == [2]

    # Deleted between the client's read and its write: the write finds nothing.
    gone = kube_api.fail(Fault(status=None, delete=True, method="PATCH", subresource="scale"))
    with pytest.raises(ApiException) as failed:
        apps.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 8}})
    assert failed.value.status == 404 and gone.hits == 1
    assert not kube_api.exists("apps/v1", "deployments", NS, "checkout")

    # Dropped watches: an open stream is cut mid-way and the client sees it end.
    with urllib.request.urlopen(f"{kube_api.url}/apis/apps/v1/deployments?watch=true") as stream:
        kube_api.create(deployment("cart"))
        assert b'"ADDED"' in stream.readline()
        assert kube_api.drop_watches() == 1
        with pytest.raises(http.client.IncompleteRead):  # cut mid-stream, not a clean end
            stream.read()


def test_stopping_the_api_does_not_wait_for_open_watches(workdir: Path) -> None:
    cluster = EmulatedCluster(workdir).start()
    try:
        cluster.create_namespace(NS)
        with urllib.request.urlopen(f"{cluster.url}/api/v1/namespaces?watch=true") as stream:
            assert b'"ADDED"' in stream.readline()
            started = time.monotonic()
            cluster.stop()  # while the stream is still open
            took = time.monotonic() - started
    finally:
        cluster.stop()  # idempotent
    assert took < 5  # aiohttp alone would wait up to 60 s for the stream to end
