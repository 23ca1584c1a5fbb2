"""Shared constants and helpers of the chart tests (a plain module: conftest is not importable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "peakpilot"
RELEASE = "peakpilot"
NAMESPACE = "peakpilot"  # the namespace every guide installs into

# Values for each rendered scenario; tests look them up by name.
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {
        "watch": {"mode": "namespaced", "namespaces": ["team-a", "team-b"]},
        "rbac": {"secrets": [{"namespace": "team-a", "name": "prometheus-token"}]},
    },
    "ha": {
        "replicaCount": 3,
        "podDisruptionBudget": {"enabled": True},
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "kube-prometheus-stack"},
                "extraRules": [
                    {"alert": "PeakPilotDown", "expr": 'absent(up{job="peakpilot-metrics"})'}
                ],
            },
        },
        "prometheus": {
            "url": "http://prometheus.monitoring:9090",
            "allowedUrls": ["https://thanos.example/tenant-a"],
        },
        "rbac": {
            "extraScaleTargets": [{"apiGroup": "argoproj.io", "resource": "rollouts"}],
            "secrets": [
                {"namespace": "shop", "name": "prometheus-token"},
                {"namespace": "shop", "name": "thanos-token"},
                {"namespace": "ops", "name": "prometheus-token"},
            ],
        },
    },
    "ha-namespaced": {
        "replicaCount": 2,
        "networkPolicy": {
            "enabled": True,
            "metricsFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                },
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
            ],
        },
        "watch": {"mode": "namespaced", "namespaces": ["team-a", "team-b"]},
    },
    "no-peering-crds": {"peering": {"installCRDs": False}},
    # Every securityContext field the schema types, set (Kubernetes must accept each).
    "security-contexts": {
        "podSecurityContext": {
            "fsGroupChangePolicy": "OnRootMismatch",
            "supplementalGroups": [10002],
            "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/peakpilot.json"},
            "seLinuxOptions": {"level": "s0:c123,c456", "role": "r", "type": "t", "user": "u"},
            "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}],
        },
        "securityContext": {
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "seLinuxOptions": {"type": "container_t"},
        },
    },
    # Rejected by values.schema.json (or the chart's own checks).
    "bad-replica-type": {"replicaCount": "two"},
    "bad-unknown-key": {"replicas": 2},
    "bad-namespaced-without-namespaces": {"watch": {"mode": "namespaced"}},
    "bad-log-format": {"operator": {"logFormat": "xml"}},
    "bad-prometheus-url": {"prometheus": {"url": "prometheus.monitoring:9090"}},
    "bad-extra-rule": {"metrics": {"prometheusRule": {"extraRules": [{"alert": "NoExpr"}]}}},
    "bad-security-context-field": {"securityContext": {"runAsRoot": False}},
    "bad-localhost-seccomp": {"podSecurityContext": {"seccompProfile": {"type": "Localhost"}}},
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def min_kube_version(chart_meta: dict[str, Any]) -> str:
    """The oldest Kubernetes the chart supports, from Chart.yaml's ">=X.Y.Z-0" kubeVersion."""
    constraint: str = chart_meta["kubeVersion"]
    assert constraint.startswith(">=") and " " not in constraint, constraint
    return constraint.removeprefix(">=").split("-")[0]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]
