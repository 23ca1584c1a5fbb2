"""Replay speed: a week of one workload at 15 s steps, this checkout against another, side by side.

    python bench/replay_speed.py                  # this checkout only
    python bench/replay_speed.py --against DIR    # DIR: another tree's optimizer/ and operator/
                                                  # (git archive REV optimizer operator | tar -x)

The week is the first of nab_twitter_GOOG_5min with the corpus template policy (bench/frontier.py);
runs alternate between the two trees (each in its own process), CPU seconds, best of `--runs`.
The ratio is what to read on a shared machine; it also checks both trees decide the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "traces" / "corpus"

CHILD = r"""
import json, sys, time
from peakpilot.inputs import parse_policy
from peakpilot.translate import to_policy
from peakplan.replay import ReplaySettings, replay
from peakplan.replay import parse_trace
trace = parse_trace(open(sys.argv[1], encoding="utf-8").read())
doc = {"apiVersion": "peakpilot.io/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "w"},
       "spec": {"workloads": [{"name": "app", "minReplicas": 2, "maxReplicas": 1000,
       "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
       "load": {"query": "x"}, "capacityPerReplica": trace.peak_rate / 200,
       "cost": {"perReplicaHour": 1}, "startup": "60s"}]}}
policy = to_policy(parse_policy(doc).spec)
settings = ReplaySettings(step=15.0, start=trace.start, end=trace.start + 7 * 86400)
began, wall = time.process_time(), time.perf_counter()
result = replay(policy, {"app": trace}, settings)
cpu, wall = time.process_time() - began, time.perf_counter() - wall
ours = result.controllers["peakpilot"].workloads["app"].desired
hpa = result.controllers["hpa"].workloads["app"].desired
print(json.dumps({"cpu": cpu, "wall": wall, "steps": result.steps, "decisions": hash((ours, hpa))}))
"""


def run(tree: Path | None, trace: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tree is not None:
        env["PYTHONPATH"] = f"{tree / 'optimizer'}{os.pathsep}{tree / 'operator'}"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(trace)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--against", type=Path, help="another checkout's source tree")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    trace = args.corpus / "nab_twitter_GOOG_5min.csv"
    trees: dict[str, Path | None] = {"this checkout": None}
    if args.against is not None:
        trees[f"{args.against}"] = args.against
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.runs):
        for label, tree in trees.items():
            r = run(tree, trace)
            if label not in best or r["cpu"] < best[label]["cpu"]:
                best[label] = r
    for label, r in best.items():
        print(
            f"{label}: {r['steps']:,.0f} steps, {r['cpu']:.2f} s CPU ({r['wall']:.2f} s wall), "
            f"{r['steps'] / r['cpu']:,.0f} steps/s"
        )
    if args.against is not None:
        a, b = best["this checkout"], best[f"{args.against}"]
        same = "the same decisions" if a["decisions"] == b["decisions"] else "DIFFERENT decisions"
        print(f"ratio: this checkout takes {a['cpu'] / b['cpu']:.2f}x the CPU of the other; {same}")


if __name__ == "__main__":
    main()
