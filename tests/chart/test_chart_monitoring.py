"""The chart's PrometheusRule: the alerts docs/operations.md shows, checked by promtool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import REPO, SCENARIOS, by_kind, one

from peakpilot import telemetry

pytestmark = pytest.mark.chart

Objects = Callable[[str], list[dict[str, Any]]]
DOCS = REPO / "docs" / "operations.md"


def documented_alerts() -> list[dict[str, Any]]:
    """The YAML block after "Suggested alerts" in docs/operations.md."""
    text = DOCS.read_text()
    block = text[text.index("Suggested alerts") :]
    block = block[block.index("```yaml\n") + len("```yaml\n") :]
    alerts: list[dict[str, Any]] = yaml.safe_load(block[: block.index("```")])
    return alerts


def rendered_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (group,) = one(objects, "PrometheusRule")["spec"]["groups"]
    assert group["name"] == "peakpilot"
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def exported_series() -> set[str]:
    names = set()
    for family in telemetry.REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def test_the_rendered_alerts_are_the_ones_docs_operations_shows(manifests: Objects) -> None:
    extra = SCENARIOS["ha"]["metrics"]["prometheusRule"]["extraRules"]
    assert rendered_rules(manifests("ha")) == documented_alerts() + extra


def test_the_rule_is_opt_in_and_carries_the_given_labels(manifests: Objects) -> None:
    assert by_kind(manifests("default"), "PrometheusRule") == []
    rule = one(manifests("ha"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_alerts_use_series_the_operator_exports() -> None:
    used = {n for a in documented_alerts() for n in re.findall(r"peakpilot_\w+", a["expr"])}
    assert used and used <= exported_series(), used - exported_series()


def test_the_servicemonitor_keeps_the_series_namespace_label(manifests: Objects) -> None:
    # Without honorLabels the scrape's namespace (the operator's) would replace the policy's, and
    # the alerts' "by (namespace, policy)" would lump every policy together.
    (endpoint,) = one(manifests("ha"), "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True


def test_helm_rejects_an_extra_rule_without_an_expression(
    installs: dict[str, dict[str, Any]],
) -> None:
    result = installs["bad-extra-rule"]
    assert not result["ok"]
    assert "at '/metrics/prometheusRule/extraRules/0'" in result["error"]
    assert "expr" in result["error"]


# Series that trip each alert, and when it must be firing (promtool's rule unit tests).
PROMTOOL_TESTS = {
    "interval": "1m",
    "input_series": [
        {
            "series": 'peakpilot_metric_age_seconds{namespace="shop",policy="p",workload="web"}',
            "values": "0+60x20",  # read a minute ago, two, ...: past 300 s after 5 minutes
        },
        {"series": 'peakpilot_greedy_fallback{namespace="shop",policy="p"}', "values": "1x30"},
        {
            "series": 'peakpilot_reconciles_total{namespace="shop",policy="p",outcome="error"}',
            "values": "0+1x30",
        },
        {
            "series": 'peakpilot_reconciles_total{namespace="shop",policy="q",outcome="ok"}',
            "values": "0+1x30",
        },
    ],
    "alert_rule_test": [
        {"eval_time": "10m", "alertname": "PeakPilotMetricsStale", "exp_alerts": []},
        {
            "eval_time": "12m",
            "alertname": "PeakPilotMetricsStale",
            "exp_alerts": [
                {
                    "exp_labels": {
                        "severity": "warning",
                        "namespace": "shop",
                        "policy": "p",
                        "workload": "web",
                    },
                    "exp_annotations": {
                        "summary": "shop/p: the load of web was last read 12m 0s ago; "
                        "the workload is held, never scaled down"
                    },
                }
            ],
        },
        {"eval_time": "14m", "alertname": "PeakPilotGreedyFallback", "exp_alerts": []},
        {
            "eval_time": "16m",
            "alertname": "PeakPilotGreedyFallback",
            "exp_alerts": [
                {
                    "exp_labels": {"severity": "warning", "namespace": "shop", "policy": "p"},
                    "exp_annotations": {
                        "summary": "shop/p: the solver has not given a plan for 15m; "
                        "the greedy fallback plan is in use"
                    },
                }
            ],
        },
        {
            "eval_time": "20m",
            "alertname": "PeakPilotReconcileErrors",
            "exp_alerts": [  # policy q reconciles fine: no alert for it
                {
                    "exp_labels": {"severity": "warning", "namespace": "shop", "policy": "p"},
                    "exp_annotations": {
                        "summary": "shop/p: reconciles fail or the spec is invalid "
                        "(kubectl describe sp -n shop p)"
                    },
                }
            ],
        },
    ],
}


def test_promtool_checks_the_rendered_rules_and_they_fire_as_documented(
    manifests: Objects, tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is not on PATH (apt-get install prometheus)"
        if os.environ.get("PEAKPILOT_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(one(manifests("ha"), "PrometheusRule")["spec"]))
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": [PROMTOOL_TESTS]}))
    for command in (["check", "rules", str(rules)], ["test", "rules", str(tests)]):
        proc = subprocess.run(
            [promtool, *command], capture_output=True, text=True, cwd=tmp_path, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
