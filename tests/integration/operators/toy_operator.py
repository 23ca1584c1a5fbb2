"""A throwaway Kopf operator used only to prove the harness (not product code).

Every ``interval`` seconds, for each ScalingPolicy it GETs ``/scale`` of the Deployment named
in ``spec.target``, PATCHes it to ``spec.replicas`` if it differs, and writes what it did into
``status.toy`` (through the ``/status`` subresource, as Kopf does when the CRD declares one).
When it scales, it posts a Kubernetes Event. It talks to the API both through Kopf and through
the ``kubernetes`` client, so a passing smoke test proves that both find the emulator through
``KUBECONFIG``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import kopf
from kubernetes import client, config

INTERVAL = float(os.environ.get("TOY_INTERVAL", "0.5"))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The same kubeconfig that Kopf found via KUBECONFIG. Read the variable now: the client's
    # default is captured when `kubernetes` is first imported, too early for in-process runs.
    kubeconfig = os.environ.get("KUBECONFIG")
    memo.apps = client.AppsV1Api(config.new_client_from_config(config_file=kubeconfig))
    # Tests want fast reactions and quick, clean shutdowns.
    settings.watching.reconnect_backoff = 0.2
    settings.networking.request_timeout = 10


@kopf.timer("peakpilot.io", "v1alpha1", "scalingpolicies", interval=INTERVAL)
def reconcile(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    namespace: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    target, desired = spec["target"], int(spec["replicas"])
    apps: client.AppsV1Api = memo.apps
    scale = apps.read_namespaced_deployment_scale(target, namespace)
    before = int(scale.spec.replicas)
    if before != desired:
        apps.patch_namespaced_deployment_scale(target, namespace, {"spec": {"replicas": desired}})
        logger.info(f"scaled {target} from {before} to {desired}")
        # Timers log locally only; post the Kubernetes Event explicitly (Kopf uses generateName).
        kopf.info(body, reason="Scaled", message=f"{target}: {before} -> {desired}")
    patch.status["toy"] = {
        "target": target,
        "before": before,
        "desired": desired,
        "selector": scale.status.selector,
        "observedGeneration": meta.get("generation"),
        "time": time.time(),
    }
