"""The operator's own metrics, served on /metrics (prometheus-client)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve /metrics in a background thread."""
    start_http_server(port, addr=address, registry=REGISTRY)
