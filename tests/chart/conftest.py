"""Fixtures for the chart tests: the real Helm engine (helm-sdkpy) linting and installing it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART, NAMESPACE, RELEASE, SCENARIOS, deep_merge, min_kube_version


def _helm() -> Any:
    return pytest.importorskip("helm_sdkpy", reason="the chart tests need the helm-sdkpy wheel")


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART


@pytest.fixture(scope="session")
def chart_meta() -> dict[str, Any]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


@pytest.fixture(scope="session")
def helm_lint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], dict]:
    """Lint the chart with given values through helm_sdkpy.Lint.

    helm-sdkpy's Lint takes no values, so non-default values are linted from a copy of the chart
    whose values.yaml is replaced by the defaults deep-merged with the overrides.
    """
    helm = _helm()
    config = helm.Configuration(namespace=NAMESPACE)

    def lint(overrides: dict[str, Any]) -> dict:
        path = CHART
        if overrides:
            path = tmp_path_factory.mktemp("chart") / CHART.name
            shutil.copytree(CHART, path)
            values = yaml.safe_load((CHART / "values.yaml").read_text())
            (path / "values.yaml").write_text(yaml.safe_dump(deep_merge(values, overrides)))
        result: dict = asyncio.run(helm.Lint(config).run(str(path)))
        return result

    return lint


@pytest.fixture(scope="session")
def installs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every scenario installed by the real Helm engine into an emulated API server.

    One subprocess for all scenarios: the Helm library must start with HELM_DRIVER=memory.
    """
    _helm()
    pytest.importorskip("kmock")
    helm_home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_DRIVER": "memory",
        "HELM_CACHE_HOME": str(helm_home / "cache"),
        "HELM_CONFIG_HOME": str(helm_home / "config"),
        "HELM_DATA_HOME": str(helm_home / "data"),
    }
    # The emulated cluster runs the oldest Kubernetes the chart supports.
    kube_version = min_kube_version(yaml.safe_load((CHART / "Chart.yaml").read_text()))
    request = {
        "chart": str(CHART),
        "namespace": NAMESPACE,
        "release": RELEASE,
        "kube_version": kube_version,
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("helm_install_emulated.py"))],
        input=json.dumps({**request, "scenarios": SCENARIOS}),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return results


@pytest.fixture(scope="session")
def manifests(installs: dict[str, dict[str, Any]]) -> Callable[[str], list[dict[str, Any]]]:
    """The objects of a successfully installed scenario, parsed."""

    def get(scenario: str) -> list[dict[str, Any]]:
        result = installs[scenario]
        assert result["ok"], f"helm install failed for {scenario!r}: {result.get('error')}"
        return [d for d in yaml.safe_load_all(result["manifest"]) if d]

    return get
