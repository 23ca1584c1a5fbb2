"""The operator and `simulate` make the same decisions: one core owns every rule.

The first minutes of the 1998 World Cup semi-final trace, replayed twice: through `replay` (what
`peakpilot simulate` runs) and through the operator's `reconcile()` against an in-memory cluster
and Prometheus that serve the same trace (the lagged load, the history for the warm-up, the pods
that become ready `startup` after they were asked for). The replicas start above what the load
needs, so a controller that acts on one reading would scale down at once; both hold for the
scale-down window, then follow the same path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from peakpilot import api
from peakpilot.kube import Scale, Target
from peakpilot.prometheus import MetricError, PrometheusSettings
from peakpilot.reconcile import PolicyState, reconcile
from peakpilot.translate import to_policy
from peakplan.planner import SolveOptions
from peakplan.replay import PodModel, ReplaySettings, Trace, parse_trace, replay

TRACE = Path(__file__).parents[2] / "examples" / "traces" / "worldcup98-semifinal-1998-07-07.csv"
STEP, LAG, HISTORY = 15.0, 30.0, 29 * 60.0  # the warm-up reads 29 of the 30 minutes before
STEPS = 60  # fifteen minutes: the default 600 s scale-down window and what follows

SPEC: dict[str, Any] = {
    "mode": "Enforce",
    "interval": "15s",
    "prometheus": {"url": "http://prometheus.test:9090"},
    "workloads": [
        {
            "name": "web",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 400,
            "load": {"query": 'sum(rate(http_requests_total{app="web"}[1m]))'},
            "capacityPerReplica": 19.118834,
            "slo": {"targetUtilization": 0.85},
            "startup": "60s",
        }
    ],
    "forecast": {"history": "29m"},  # default behaviour: a 600 s scale-down window
}


class TracePrometheus:
    """Prometheus as it would show the trace: each sample LAG seconds late, none before it."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def instant(self, query: str, at: float | None = None) -> float:
        assert at is not None
        value = self.trace.observed(at - LAG)
        if value is None:
            raise MetricError(f"no sample at {at}: {query}")
        return value

    def history(
        self, query: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        times = (start + k * step for k in range(math.floor((end - start) / step + 1e-9) + 1))
        seen = ((t, self.trace.observed(t - LAG)) for t in times)
        return [(t, v) for t, v in seen if v is not None]

    def close(self) -> None:
        pass


class PodCluster:
    """One Deployment whose pods become ready as the scorer's pod model says."""

    def __init__(self, replicas: int, startup: float) -> None:
        self.replicas = replicas
        self.pods = PodModel(STEP, startup, replicas)
        self.k = 0  # the step being reconciled

    def read_target(self, target: Target) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {}},
            "status": {"readyReplicas": self.pods.ready(self.k)},
        }

    def read_scale(self, target: Target, obj: dict[str, Any] | None = None) -> Scale:
        ready = ((obj or {}).get("status") or {}).get("readyReplicas")
        return Scale(self.replicas, ready, "1")

    def set_replicas(self, target: Target, replicas: int, expected: int, attempts: int = 3) -> int:
        assert expected == self.replicas
        before, self.replicas = self.replicas, replicas
        return before

    def autoscalers(self, namespace: str) -> list[tuple[str, str, dict[str, Any]]]:
        return []

    def owners(self, target: Target, autoscalers: object = None) -> list[str]:
        return []


def test_the_operator_and_simulate_make_the_same_decisions() -> None:
    trace = parse_trace(TRACE.read_text())
    policy = to_policy(api.ScalingPolicySpec.model_validate(SPEC))
    start = trace.start + 30 * 60.0
    options = SolveOptions(explain=False)
    settings = ReplaySettings(
        step=STEP, start=start, end=start + STEPS * STEP, metrics_lag=LAG, options=options
    )
    simulated = replay(policy, {"web": trace}, settings)
    web = simulated.controllers["peakpilot"].workloads["web"]

    cluster = PodCluster(simulated.initial["web"], policy.workload("web").startup)
    state = PolicyState()
    body = {"metadata": {"name": "web", "namespace": "shop", "generation": 1}, "spec": SPEC}

    def metrics(settings: PrometheusSettings) -> TracePrometheus:
        assert settings.url == SPEC["prometheus"]["url"]
        return TracePrometheus(trace)

    operated = []
    for k in range(STEPS):
        cluster.k = k
        outcome = reconcile(cluster, body, state, options, now=start + k * STEP, metrics=metrics)  # type: ignore[arg-type]
        assert outcome.outcome == "ok", outcome.status
        cluster.pods.scale(k, cluster.replicas)
        operated.append(cluster.replicas)

    assert operated == list(web.desired)
    # The case the first recommendation is for: the load needs fewer replicas from the start,
    # and the scale-down waits for the window (600 s = 40 steps) instead of acting on one reading.
    first = simulated.initial["web"]
    assert web.desired[0] == first > min(web.desired)
    assert set(web.desired[:40]) == {first}
