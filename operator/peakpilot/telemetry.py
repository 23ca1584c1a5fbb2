"""The operator's own metrics, served on /metrics (prometheus-client)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

# No *_created series: they double the output and nothing alerts on them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
_POLICY = ["namespace", "policy"]
_WORKLOAD = ["namespace", "policy", "workload"]

SOLVE_SECONDS = Histogram(
    "peakpilot_solve_seconds",
    "Model build and solve time of one plan.",
    _POLICY,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "peakpilot_reconcile_seconds",
    "Wall time of one reconcile: observe, decide, apply, record, and the status written.",
    _POLICY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30),
    registry=REGISTRY,
)
SOLVE_GAP = Gauge(
    "peakpilot_solve_gap_ratio",
    "Relative optimality gap of the last plan.",
    _POLICY,
    registry=REGISTRY,
)
FALLBACK = Gauge(
    "peakpilot_greedy_fallback",
    "1 when the last plan used the greedy fallback.",
    _POLICY,
    registry=REGISTRY,
)
COST = Gauge(
    "peakpilot_cost_per_hour", "Running cost per hour of the last plan.", _POLICY, registry=REGISTRY
)
DESIRED = Gauge(
    "peakpilot_desired_replicas", "Replicas the last plan wants.", _WORKLOAD, registry=REGISTRY
)
CURRENT = Gauge(
    "peakpilot_current_replicas",
    "Replicas observed before the last plan.",
    _WORKLOAD,
    registry=REGISTRY,
)
METRIC_AGE = Gauge(
    "peakpilot_metric_age_seconds",
    "Seconds since the workload's load was last read successfully.",
    _WORKLOAD,
    registry=REGISTRY,
)
RECONCILES = Counter(
    "peakpilot_reconciles_total", "Reconciles by outcome.", [*_POLICY, "outcome"], registry=REGISTRY
)
SCALES = Counter(
    "peakpilot_scale_changes_total",
    "/scale patches made.",
    [*_WORKLOAD, "direction"],
    registry=REGISTRY,
)


# Every label set exported per (namespace, policy), so a deleted policy's series can be removed.
_exported: dict[tuple[str, str], set[tuple[Any, tuple[str, ...]]]] = {}
_lock = threading.Lock()


def series[M: (Counter, Gauge, Histogram)](metric: M, namespace: str, policy: str, *rest: str) -> M:
    """``metric.labels(namespace, policy, *rest)``, remembered for :func:`forget`."""
    values = (namespace, policy, *rest)
    with _lock:
        _exported.setdefault((namespace, policy), set()).add((metric, values))
    return metric.labels(*values)


def forget(namespace: str, policy: str) -> None:
    """Remove every series of a policy (it was deleted): no stale gauges on /metrics."""
    with _lock:
        exported = _exported.pop((namespace, policy), set())
    for metric, values in exported:
        with contextlib.suppress(KeyError):
            metric.remove(*values)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve /metrics in a background thread."""
    start_http_server(port, addr=address, registry=REGISTRY)
