"""`kopf run -m peakpilot.operator`: the operator module under Kopf's own runner, as
tests/integration/README.md and the development workflow use it, with no `peakpilot operator` in
front. The handlers' dependencies come from Kopf's memo, made by the startup handler from the
PEAKPILOT_* variables (no module globals set by `run()`), so the first reconcile plans, applies
and records as under `peakpilot operator`; then, the load steady, the status is not patched again.
"""

from __future__ import annotations

import re

import pytest
from harness import (
    EmulatedCluster,
    LoadExporter,
    OperatorFactory,
    PolicyProbe,
    PrometheusServer,
    free_port,
    wait_until,
)
from harness.net import http_get
from harness.peakpilot import deployment, policy, replica_history, replicas, workload

pytestmark = pytest.mark.integration

NS = "shop"


def test_kopf_run_of_the_module_reconciles_with_settings_from_the_environment(
    kube_api: EmulatedCluster,
    prometheus: PrometheusServer,
    load_exporter: LoadExporter,
    operator_factory: OperatorFactory,
) -> None:
    load_exporter.set_rate("checkout", 400)  # 400 rps at 40 rps/replica and 80 %: 13 replicas
    kube_api.create(deployment(NS, "checkout", 2))
    kube_api.create(policy(NS, "peak", prometheus.url, [workload("checkout")]))
    metrics_port = free_port()
    operator = operator_factory(
        ["--standalone", "-n", NS, "-m", "peakpilot.operator"],
        env={
            "PEAKPILOT_METRICS_PORT": str(metrics_port),
            "PEAKPILOT_PROMETHEUS_URLS": prometheus.url,
        },
    )
    probe = PolicyProbe(kube_api, NS, "peak")

    wait_until(lambda: replicas(kube_api, NS, "checkout") == 13, timeout=40, what="checkout at 13")
    probe.wait_condition("Ready", "True", "Reconciled")
    assert replica_history(kube_api, NS, "checkout") == [2, 13]
    assert (probe.planned("checkout") or {}).get("desired") == 13

    # The settings are the variables': /metrics on the given port counts the reconciles.
    def reconciles() -> float:
        status, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        found = re.findall(
            r'^peakpilot_reconciles_total\{[^}]*policy="peak"[^}]*\} (\S+)$',
            body.decode() if status == 200 else "",
            re.M,
        )
        return sum(float(v) for v in found)

    assert wait_until(lambda: reconciles() >= 1, timeout=15, what="a counted reconcile")

    # Steady once the plan has seen the 13 replicas: three more reconciles (1 s interval), and
    # no /status PATCH, as nothing changed but lastPlan.at and the solver's seconds.
    wait_until(
        lambda: (probe.planned("checkout") or {}).get("current") == 13,
        timeout=15,
        what="the plan from 13 replicas in status",
    )
    patches = len(probe.status_patches())
    after = reconciles()
    wait_until(lambda: reconciles() >= after + 3, timeout=20, what="three more reconciles")
    assert len(probe.status_patches()) == patches
    assert operator.stop() == 0, operator.log_tail()
    assert "Traceback" not in operator.log()
