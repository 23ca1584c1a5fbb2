"""Every example a user is pointed at works: each policy plans and simulates, each manifest is
valid Kubernetes.

Policies get a snapshot and traces synthesised from their own workloads (a flat load with a step
that needs more replicas than minReplicas), so a new example is covered without new fixtures.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICIES = sorted(
    p
    for p in EXAMPLES.glob("*.yaml")
    if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind") == "ScalingPolicy"
)
MANIFESTS = sorted((EXAMPLES / "k8s").glob("*.yaml"))


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peakpilot.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def workloads(policy: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load(policy.read_text(encoding="utf-8"))["spec"]
    return list(spec["workloads"])


def step_load(w: dict[str, Any]) -> tuple[float, float]:
    """A quiet load at minReplicas, and a step to about three times that many replicas."""
    capacity = float(w["capacityPerReplica"])
    quiet = max(1, int(w.get("minReplicas", 1))) * capacity * 0.5
    busy = min(int(w["maxReplicas"]), 3 * max(2, int(w.get("minReplicas", 1)))) * capacity * 0.7
    return quiet, max(busy, quiet * 2)


def test_there_are_examples_to_check() -> None:
    names = {p.name for p in POLICIES}
    assert {"shop-promotion.yaml", "preview-policy.yaml", "worldcup-knockout.yaml"} <= names
    assert MANIFESTS


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.stem)
def test_example_plans(policy: Path, tmp_path: Path) -> None:
    snapshot = {
        "at": "2026-06-01T12:00:00Z",
        "workloads": {
            w["name"]: {"load": step_load(w)[1], "currentReplicas": max(1, w.get("minReplicas", 1))}
            for w in workloads(policy)
        },
    }
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot), encoding="utf-8")
    done = run("plan", policy, "--metrics", path, "-o", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [w["name"] for w in plan["workloads"]] == [w["name"] for w in workloads(policy)]
    for decided in plan["workloads"]:
        # The load stepped up: every workload scales up (within its rate limit and maximum).
        assert decided["desired"] > decided["current"], decided


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.stem)
def test_example_simulates(policy: Path, tmp_path: Path) -> None:
    args: list[str | Path] = ["simulate", policy, "-o", "json"]
    start = 1_750_000_000  # 2025-06-15, away from any example's calendar
    for w in workloads(policy):
        quiet, busy = step_load(w)
        rows = ["time,count"]
        for minute in range(60):
            rate = busy if 20 <= minute < 40 else quiet
            rows.append(f"{start + 60 * minute},{math.ceil(rate * 60)}")
        trace = tmp_path / f"{w['name']}.csv"
        trace.write_text("\n".join(rows) + "\n", encoding="utf-8")
        args += ["--trace", f"{w['name']}={trace}"]
    done = run(*args)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for controller in ("peakpilot", "hpa"):
        per = result["controllers"][controller]["workloads"]
        assert set(per) == {w["name"] for w in workloads(policy)}
        for series in per.values():
            # The step needs more than the quiet count: each controller scaled up at some point.
            assert max(series["desired"]) > min(series["desired"])
            assert series["summary"]["billed_replica_seconds"] > 0


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.stem)
def test_example_manifests_are_valid_kubernetes(manifest: Path) -> None:
    documents = [d for d in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if d]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, "1.28", strict=True)
