"""Render the chart with the real Helm engine by installing it into kmock's KubernetesEmulator.

helm-sdkpy exposes no `helm template`, so each scenario is a real `helm install`
(helm_sdkpy.Install) into a fresh in-memory API server; the release it returns carries the
rendered manifest and NOTES. Helm's own values-schema validation, CRD handling (crds/ first)
and manifest building (every kind must be known to the API's discovery) run as in a cluster.

Run as a script, not imported: Helm's Go runtime reads HELM_DRIVER from the environment the
process started with, and the release must be stored in memory (the emulator cannot decode the
protobuf Secrets Helm stores releases in by default). The caller sets HELM_DRIVER=memory.

stdin:  {"chart": PATH, "namespace": NS, "release": NAME, "kube_version": "1.28.0",
         "scenarios": {NAME: VALUES}}
stdout: {NAME: {"ok": true, "manifest": STR, "notes": STR, "crds_created": [STR], "created": [STR]}
         | {"ok": false, "error": STR}}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import helm_sdkpy
import kmock
import yaml

CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
ALREADY_EXISTS = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "reason": "AlreadyExists",
    "code": 409,
    "message": "customresourcedefinition already exists",
}
# Kinds a cluster with the Prometheus Operator serves; the chart's CRDs are added from crds/.
EXTRA_KINDS = [
    ("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", True),
    ("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", True),
]


def chart_crds(chart: Path) -> list[dict[str, Any]]:
    """CRDs Helm would install from the chart's and its subcharts' crds/ directories."""
    docs = []
    for path in sorted(chart.rglob("crds/*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


async def install(
    chart: Path, namespace: str, release: str, kube_version: str, values: dict[str, Any]
) -> dict:
    async with kmock.KubernetesEmulator() as api, kmock.Server(api) as server:
        api.resources.load_bundled()
        # The Kubernetes version Helm checks Chart.yaml's kubeVersion against.
        major, minor, _ = kube_version.split(".")
        api["get /version"] << {"major": major, "minor": minor, "gitVersion": f"v{kube_version}"}
        # kmock 0.8 serves the core group as "/v1"; client-go's REST mapper then finds no
        # core kinds at all. Serve the same discovery document with the right groupVersion.
        rsp = await server.client.get("/api/v1")
        core = await rsp.json()
        core["groupVersion"] = "v1"
        api["get /api/v1"] << core
        for crd in chart_crds(chart):
            spec = crd["spec"]
            for version in spec["versions"]:
                api.resources[
                    kmock.resource(spec["group"], version["name"], spec["names"]["plural"])
                ] = kmock.ResourceInfo(
                    kind=spec["names"]["kind"],
                    namespaced=spec["scope"] == "Namespaced",
                    verbs=["get", "list", "watch", "create", "patch", "update", "delete"],
                )
        for group, version, plural, kind, namespaced in EXTRA_KINDS:
            api.resources[kmock.resource(group, version, plural)] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=["get", "list", "watch", "create", "patch"]
            )
        # The emulator never marks a CRD Established, and Helm waits (60 s) for that after it
        # creates CRDs. Answer as a cluster that has them: Helm records the attempt and skips.
        api["post", CRDS] << 409 << ALREADY_EXISTS

        kubeconfig = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emu", "cluster": {"server": str(server.url).rstrip("/")}}],
                "users": [{"name": "emu", "user": {"token": "emulated"}}],
                "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu"}}],
                "current-context": "emu",
            }
        )
        config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        try:
            rel = await helm_sdkpy.Install(config).run(
                release, str(chart), values=values, wait=False, timeout=30
            )
        except helm_sdkpy.HelmError as exc:
            return {"ok": False, "error": str(exc)}
        posts = [rq for rq in api["post"] if isinstance(rq.data, dict)]
        return {
            "ok": True,
            "manifest": rel["manifest"],
            "notes": rel["info"].get("notes", ""),
            "crds_created": [rq.data["metadata"]["name"] for rq in posts if rq.resource == CRDS],
            "created": [
                f"{rq.data['kind']}/{rq.data['metadata']['name']}"
                for rq in posts
                if rq.resource != CRDS
            ],
        }


async def main() -> None:
    if os.environ.get("HELM_DRIVER") != "memory":
        raise SystemExit("run with HELM_DRIVER=memory in the environment")
    request = json.load(sys.stdin)
    chart = Path(request["chart"])
    results = {}
    for name, values in request["scenarios"].items():
        results[name] = await install(
            chart, request["namespace"], request["release"], request["kube_version"], values
        )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
