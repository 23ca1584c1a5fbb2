"""Rendered manifests: Kubernetes schemas, the operator contract, pod security, peering."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chartkit import NAMESPACE, RELEASE, SCENARIOS, by_kind, min_kube_version, one

pytestmark = pytest.mark.chart

Objects = Callable[[str], list[dict[str, Any]]]
RENDERED = ["default", "namespaced", "ha", "ha-namespaced", "no-peering-crds", "security-contexts"]
SCALINGPOLICY_CRD = "scalingpolicies.peakpilot.io.yaml"
# The operator's command-line and environment contract (see the image's ENTRYPOINT).
ENV = {
    "PEAKPILOT_LOG_FORMAT": "json",
    "PEAKPILOT_LOG_LEVEL": "INFO",
    "PEAKPILOT_METRICS_PORT": "9100",
    "PEAKPILOT_LIVENESS_PORT": "8080",
    "PEAKPILOT_SOLVER": "highs",
    "PEAKPILOT_SOLVER_TIME_LIMIT": "3",
}


def crd_files(chart_dir: Path) -> list[Path]:
    """CRD files of the chart and its subcharts (Helm installs each crds/ directory as is)."""
    return sorted(chart_dir.rglob("crds/*.yaml"))


def load_crds(chart_dir: Path) -> dict[str, dict[str, Any]]:
    crds = [d for p in crd_files(chart_dir) for d in yaml.safe_load_all(p.read_text()) if d]
    return {c["metadata"]["name"]: c for c in crds}


def kube_versions(chart_meta: dict[str, Any]) -> list[str]:
    # The oldest Kubernetes the chart claims (Chart.yaml kubeVersion) and the newest known.
    return [min_kube_version(chart_meta), kubernetes_validate.utils.latest_version()]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "operator"
    return container


def container_port(container: dict[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


@pytest.mark.parametrize("scenario", RENDERED)
def test_manifests_validate_against_kubernetes_schemas(
    manifests: Objects, chart_dir: Path, chart_meta: dict[str, Any], scenario: str
) -> None:
    crds = load_crds(chart_dir)
    by_group_kind = {(c["spec"]["group"], c["spec"]["names"]["kind"]): c for c in crds.values()}
    for obj in manifests(scenario):
        group = obj["apiVersion"].rpartition("/")[0]
        if (group, obj["kind"]) in by_group_kind:
            # Our own kinds (Kopf peering objects): validate against the CRD that serves them.
            crd = by_group_kind[(group, obj["kind"])]
            (version,) = [
                v for v in crd["spec"]["versions"] if obj["apiVersion"].endswith(v["name"])
            ]
            jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"]).validate(obj)
            assert set(obj) <= {"apiVersion", "kind", "metadata", "status"}
        elif obj["kind"] in ("ServiceMonitor", "PrometheusRule"):
            # The Prometheus Operator's CRDs are not bundled; checked field by field (and the
            # rule by promtool in test_chart_monitoring.py).
            continue
        else:
            for version in kube_versions(chart_meta):
                kubernetes_validate.validate(obj, version, strict=True)


def test_crd_files_are_valid_and_never_templated(
    chart_dir: Path, chart_meta: dict[str, Any]
) -> None:
    files = crd_files(chart_dir)
    assert {p.name for p in files} >= {
        "clusterkopfpeerings.kopf.dev.yaml",
        "kopfpeerings.kopf.dev.yaml",
    }
    for path in files:
        text = path.read_text()
        assert "{{" not in text, f"{path} is templated; Helm installs crds/ verbatim"
        for doc in yaml.safe_load_all(text):
            assert doc["kind"] == "CustomResourceDefinition"
            for version in kube_versions(chart_meta):
                kubernetes_validate.validate(doc, version, strict=True)


def test_scalingpolicy_crd_matches_the_contract(chart_dir: Path) -> None:
    path = chart_dir / "crds" / SCALINGPOLICY_CRD
    if not path.exists():
        pytest.skip(f"{path} is not generated yet (peakpilot crd)")
    crd = yaml.safe_load(path.read_text())
    assert crd["metadata"]["name"] == "scalingpolicies.peakpilot.io"
    assert crd["spec"]["group"] == "peakpilot.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == "ScalingPolicy"
    assert "sp" in crd["spec"]["names"].get("shortNames", [])
    for version in crd["spec"]["versions"]:
        if version["served"]:
            assert "status" in version.get("subresources", {}), version["name"]


def test_helm_installs_every_crd_from_crds_dirs(
    installs: dict[str, dict[str, Any]], manifests: Objects, chart_dir: Path
) -> None:
    crds = load_crds(chart_dir)
    assert sorted(installs["default"]["crds_created"]) == sorted(crds)
    # Turning the subchart off leaves Kopf's peering CRDs alone.
    assert sorted(installs["no-peering-crds"]["crds_created"]) == sorted(
        name for name in crds if not name.endswith(".kopf.dev")
    )
    # CRDs come only from crds/ (installed first, never deleted), never from templates.
    for scenario in RENDERED:
        assert by_kind(manifests(scenario), "CustomResourceDefinition") == []


@pytest.mark.parametrize("scenario", RENDERED)
def test_helm_created_every_rendered_object(
    installs: dict[str, dict[str, Any]], manifests: Objects, scenario: str
) -> None:
    rendered = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in manifests(scenario))
    assert sorted(installs[scenario]["created"]) == rendered


@pytest.mark.parametrize("scenario", ["default", "ha", "namespaced"])
def test_pod_runs_locked_down(manifests: Objects, scenario: str) -> None:
    pod = one(manifests(scenario), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key)
    container = operator_container(manifests(scenario))
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    # Read-only root: the only writable path is an emptyDir at /tmp, and TMPDIR points there.
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert mount["mountPath"] == "/tmp" and "emptyDir" in volume
    assert {"name": "TMPDIR", "value": "/tmp"} in container["env"]


def test_operator_contract_in_cluster_mode(manifests: Objects, chart_meta: dict[str, Any]) -> None:
    objects = manifests("default")
    container = operator_container(objects)
    # The local image the docs build and `kind load`: no registry is assumed.
    assert container["image"] == f"peakpilot:{chart_meta['appVersion']}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "command" not in container  # keep the image's ENTRYPOINT (peakpilot)
    assert container["args"] == ["operator", "--all-namespaces", "--standalone"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {k: env[k] for k in ENV} == ENV
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert container_port(container, probe["port"]) == 8080
    assert container_port(container, "metrics") == 9100
    service = one(objects, "Service")
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (9100, "metrics")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_the_prometheus_urls_given_at_install_are_the_operators_allow_list(
    manifests: Objects, installs: dict[str, dict[str, Any]]
) -> None:
    env = {e["name"]: e.get("value") for e in operator_container(manifests("ha"))["env"]}
    urls = "http://prometheus.monitoring:9090,https://thanos.example/tenant-a"
    assert env["PEAKPILOT_PROMETHEUS_URLS"] == urls
    assert "url: http://prometheus.monitoring:9090" in installs["ha"]["notes"]
    assert "prometheus.url is not set" not in installs["ha"]["notes"]
    # Not given: no allow-list (any URL), and the notes say what that means.
    default = {e["name"] for e in operator_container(manifests("default"))["env"]}
    assert "PEAKPILOT_PROMETHEUS_URLS" not in default
    assert "prometheus.url is not set, so a policy may point" in installs["default"]["notes"]


def test_operator_contract_in_namespaced_mode(manifests: Objects) -> None:
    args = operator_container(manifests("namespaced"))["args"]
    assert args == ["operator", "--namespace", "team-a", "--namespace", "team-b", "--standalone"]


def test_one_replica_runs_standalone_and_is_recreated(manifests: Objects) -> None:
    objects = manifests("default")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert by_kind(objects, "ClusterKopfPeering") == by_kind(objects, "KopfPeering") == []


def test_replicas_peer_through_the_chart_made_peering_object(manifests: Objects) -> None:
    objects = manifests("ha")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    peering = one(objects, "ClusterKopfPeering")
    args = operator_container(objects)["args"]
    assert args == ["operator", "--all-namespaces", "--peering", peering["metadata"]["name"]]


def test_namespaced_replicas_peer_in_each_watched_namespace(manifests: Objects) -> None:
    objects = manifests("ha-namespaced")
    peerings = by_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert by_kind(objects, "ClusterKopfPeering") == []
    (name,) = {p["metadata"]["name"] for p in peerings}
    assert operator_container(objects)["args"][-2:] == ["--peering", name]


def test_servicemonitor_and_pdb_are_opt_in(manifests: Objects) -> None:
    default = manifests("default")
    assert by_kind(default, "ServiceMonitor") == by_kind(default, "PodDisruptionBudget") == []
    objects = manifests("ha")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (service["spec"]["ports"][0]["name"], "/metrics")
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_notes_tell_the_user_what_to_do_next(installs: dict[str, dict[str, Any]]) -> None:
    notes = installs["default"]["notes"]
    assert "mode: Preview" in notes
    assert "kubectl apply -f policy.yaml" in notes
    assert "kubectl get scalingpolicies" in notes
    assert f"port-forward svc/{RELEASE}-metrics 9100:9100" in notes
    assert "/metrics" in notes
    # The uninstall order: policies first, while the operator can still remove its finalizer.
    assert "delete the policies first (kubectl delete scalingpolicies --all -A)" in notes
    namespaced = installs["namespaced"]["notes"]
    assert "team-a, team-b" in namespaced
    assert "namespace: team-a" in namespaced  # the example policy lands where it is watched


@pytest.mark.parametrize("scenario", ["default", "namespaced"])
def test_notes_example_policy_is_a_valid_scalingpolicy(
    installs: dict[str, dict[str, Any]], chart_dir: Path, scenario: str
) -> None:
    path = chart_dir / "crds" / SCALINGPOLICY_CRD
    if not path.exists():
        pytest.skip(f"{path} is not generated yet (peakpilot crd)")
    lines = installs[scenario]["notes"].splitlines()
    start = next(i for i, ln in enumerate(lines) if "Save this as policy.yaml" in ln) + 1
    end = next(i for i, ln in enumerate(lines) if "kubectl apply -f policy.yaml" in ln)
    policy = yaml.safe_load(textwrap.dedent("\n".join(lines[start:end])))
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    assert policy["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert policy["kind"] == crd["spec"]["names"]["kind"]
    assert policy["spec"]["mode"] == "Preview"
    # openAPIV3Schema is OpenAPI 3.0: boolean exclusiveMinimum etc., as in JSON Schema draft 4.
    jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"]).validate(policy)


def test_networkpolicy_is_opt_in_and_admits_only_the_metrics_and_health_ports(
    manifests: Objects,
) -> None:
    assert by_kind(manifests("default"), "NetworkPolicy") == []
    objects = manifests("ha-namespaced")
    policy = one(objects, "NetworkPolicy")["spec"]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    container = operator_container(objects)
    by_port = {}
    for rule in policy["ingress"]:
        (port,) = rule["ports"]
        assert port["protocol"] == "TCP"
        by_port[container_port(container, port["port"])] = rule.get("from")
    # metrics from the given peers only; health (the kubelet's probes) from anywhere.
    assert by_port == {9100: SCENARIOS["ha-namespaced"]["networkPolicy"]["metricsFrom"], 8080: None}
