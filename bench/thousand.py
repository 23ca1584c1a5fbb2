"""One ScalingPolicy of 1000 workloads: reconcile time, Prometheus queries, restart, memory, and
`peakpilot plan` on the same policy.

The real parts, as in bench/reaction.py: a real Prometheus scraping an in-process load exporter
(1000 gauges, one per app) every second, with `--history-days` of a daily cycle per app
backfilled by promtool (so the first reconcile warms 1000 forecasters, as after a restart); the
Kubernetes API emulated over HTTP (1000 Deployments); the product operator as a process. The
policy reads every load from spec.prometheus.workloadsQuery (`sum by (app) (...)`), through a
recording proxy that counts the queries. A cost budget binds (80 % of what the loads need), so
the integer program runs every interval.

Reported (targets from issue 10): the wall time of each reconcile (the operator's
peakpilot_reconcile_seconds: observe, decide, apply, record and the status written; <= 2 s), the
Prometheus queries per interval (<= 5), the first reconcile after a start and after a restart
(from the process start to its first reconcile's end; <= 10 s), the operator's VmRSS and VmHWM
(<= 300 MB), and `peakpilot plan` on the policy with a metrics snapshot, as a whole process
(<= 1.5 s).

    python bench/thousand.py                        # 1000 workloads, 15 s interval, 7 days
    python bench/thousand.py --workloads 200 --rounds 4 --history-days 1

Needs the Debian `prometheus` package (prometheus, promtool) and the `test` extra (kmock).
"""

from __future__ import annotations

import argparse
import math
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))

from harness import Series, wait_until  # noqa: E402
from harness.peakpilot import PeakPilotProcess, RecordingProxy, deployment, policy, workload  # noqa: E402

from reaction import GAUGE, App, Rig, _environment, _proc_status, rig  # noqa: E402

NS = "shop"


def apps(n: int, seed: int = 1) -> list[App]:
    rng = random.Random(seed)
    return [
        App(
            NS,
            f"w{i:04d}",
            rng.uniform(20.0, 400.0),
            rng.choice([0.05, 0.1, 0.2]),
            rng.choice([1, 5, 10, 40]),
        )
        for i in range(n)
    ]


def needed(a: App) -> int:
    """Replicas an app's load needs (40 rps a replica at 80 %)."""
    return math.ceil(a.load / 32)


def current(a: App) -> int:
    """Replicas an app runs when the benchmark starts: fewer than its load needs."""
    return max(1, math.ceil(0.7 * needed(a)))


def backfilled(group: list[App], days: float, step: float) -> Callable[[str], list[Series]]:
    """``days`` of a daily cycle per app at ``step`` seconds, ending 2 min ago, with the labels
    the live scrape adds (bench/reaction.py's history, at a coarser step: the bulk warm-up of
    1000 workloads reads 7 days at a step of about 50 minutes anyway, so a 15 min backfill
    loses nothing, and promtool writes it within the harness's two minutes)."""
    end = math.floor(time.time() / 60) * 60 - 120
    start = end - days * 86400

    def cycle(base: float, phase: float) -> Callable[[float], float]:
        return lambda t: base * (1.0 + 0.5 * math.sin(2 * math.pi * t / 86400 + phase))

    def make(instance: str) -> list[Series]:
        labels = {"job": "load", "instance": instance}
        return [
            Series.from_function(
                GAUGE,
                {"app": a.name, **labels},
                cycle(a.load, i * 0.1),
                start=start,
                end=end,
                step=step,
            )
            for i, a in enumerate(group)
        ]

    return make


def manifest(group: list[App], url: str, interval: float) -> dict[str, Any]:
    # Between the cost of the current replicas and of what the loads need: the budget binds,
    # and the floors (the current replicas: no scale-down inside the default window) fit in it.
    now = sum(current(a) * a.price for a in group)
    need = sum(needed(a) * a.price for a in group)
    spec_workloads = []
    for a in group:
        w = workload(
            a.name,
            max_replicas=200,
            priority=a.priority,
            cost={"perReplicaHour": a.price},
            resources={"cpu": "500m", "memory": "1Gi"},
        )
        del w["load"]  # every load comes from the workloads query
        spec_workloads.append(w)
    return policy(
        NS,
        "big",
        url,
        spec_workloads,
        interval=f"{interval:g}s",
        prometheus={
            "url": url,
            "timeout": "5s",
            "workloadsQuery": {"query": f"sum by (app) ({GAUGE})", "label": "app"},
        },
        budget={"maxCostPerHour": round(now + 0.5 * (need - now), 2)},  # binds
        behavior={},  # the defaults (HPA's)
        forecast={},  # the defaults: auto, 7 d of history
    )


def reconcile_seconds(samples: dict[Any, float]) -> tuple[int, float]:
    """(count, sum) of peakpilot_reconcile_seconds."""
    count = sum(v for (n, _), v in samples.items() if n == "peakpilot_reconcile_seconds_count")
    total = sum(v for (n, _), v in samples.items() if n == "peakpilot_reconcile_seconds_sum")
    return int(count), total


def run_operator(r: Rig, proxy: RecordingProxy, name: str, rounds: int) -> dict[str, Any]:
    """Start the operator, wait for its first reconcile, then `rounds` more: the figures."""
    queries_before = len(proxy.requests("/api/v1/"))
    process = PeakPilotProcess(
        workdir=r.workdir / name, kubeconfig=r.cluster.kubeconfig, env=r.cluster.env(), name=name
    )
    spawned = time.monotonic()
    process.start()
    process.wait_ready(timeout=60)
    try:
        wait_until(
            lambda: reconcile_seconds(process.samples())[0] >= 1,
            timeout=120,
            # Not faster: with 1000 workloads /metrics holds 3000 series, and each read costs
            # the operator ~50 ms of CPU (its own reconciles would pay for the probe).
            interval=0.5,
            what="the first reconcile",
        )
        first_done = time.monotonic() - spawned
        _, first = reconcile_seconds(process.samples())
        first_queries = len(proxy.requests("/api/v1/")) - queries_before
        walls: list[float] = []
        queries: list[int] = []
        peak = 0.0
        for _ in range(rounds):
            seen = len(proxy.requests("/api/v1/"))
            before_count, before_sum = reconcile_seconds(process.samples())

            def next_one(at: int = before_count) -> bool:
                nonlocal peak
                pid = process.pid
                assert pid is not None
                peak = max(peak, _proc_status(pid)["VmRSS"] / 1024)
                return reconcile_seconds(process.samples())[0] > at

            wait_until(next_one, timeout=120, interval=2.0, what="a reconcile")
            after_count, after_sum = reconcile_seconds(process.samples())
            walls.append((after_sum - before_sum) / (after_count - before_count))
            queries.append(len(proxy.requests("/api/v1/")) - seen)
        pid = process.pid
        assert pid is not None
        status = _proc_status(pid)
        return {
            "first_done": first_done,
            "first": first,
            "first_queries": first_queries,
            "walls": walls,
            "queries": queries,
            "rss": max(peak, status["VmRSS"] / 1024),
            "hwm": status["VmHWM"] / 1024,
            "warmed": process.log().count("forecast warmed from"),
        }
    finally:
        process.stop()
        if "Traceback" in process.log():
            print(process.log_tail(40), file=sys.stderr)


def plan_process(
    group: list[App], repeats: int = 5, layers: tuple[str, ...] = ("pulp",)
) -> dict[str, list[tuple[float, float, float]]]:
    """`peakpilot plan POLICY --metrics SNAPSHOT` as a whole process: (wall, CPU, decide() CPU)
    seconds per run, per model layer ("pulp": as shipped; "arrays": the integer programs as
    arrays handed to highspy, bench/ilp_arrays.py), the layers alternating run by run. On a
    shared machine the CPU time (user + system) is what the process itself needs; the wall time
    adds the waits for a core."""
    folder = Path(tempfile.mkdtemp(prefix="peakpilot-plan-"))
    doc = manifest(group, "http://prometheus.monitoring:9090", 15)
    for w, a in zip(doc["spec"]["workloads"], group, strict=True):
        w["load"] = {"query": f'sum({GAUGE}{{app="{a.name}"}})'}  # plan reads the snapshot
    (folder / "policy.yaml").write_text(yaml.safe_dump(doc))
    snapshot = {
        "at": "2026-11-10T12:00:00Z",
        "workloads": {
            a.name: {"load": round(a.load, 2), "currentReplicas": current(a)} for a in group
        },
    }
    (folder / "metrics.yaml").write_text(yaml.safe_dump(snapshot))
    runner = [sys.executable, str(REPO / "bench" / "ilp_arrays.py")]
    commands = {"pulp": [*runner, "--pulp"], "arrays": runner}
    args = ["plan", str(folder / "policy.yaml"), "--metrics", str(folder / "metrics.yaml")]
    times: dict[str, list[tuple[float, float, float]]] = {layer: [] for layer in layers}
    outputs: dict[str, str] = {}
    for _ in range(repeats):
        for layer in layers:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            done = subprocess.run([*commands[layer], *args], capture_output=True, text=True)
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            if done.returncode != 0:
                raise SystemExit(
                    f"peakpilot plan failed ({done.returncode}): {done.stderr[-2000:]}"
                )
            decide = float(done.stderr.split("decide cpu=")[1].split()[0])
            times[layer].append((wall, cpu, decide))
            # The solver's own time is printed and varies; everything else must be the same.
            outputs[layer] = re.sub(r"\d+\.\d+ ?m?s\b", "T", done.stdout)
    binding = any(word in outputs[layers[0]] for word in ("binds", "Binding", "budget"))
    print(f"plan output mentions the budget: {binding}", file=sys.stderr)
    if len(set(outputs.values())) > 1:
        raise SystemExit("the layers printed different plans")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=6, help="reconciles measured per start")
    parser.add_argument("--history-days", type=float, default=7.0)
    parser.add_argument("--history-step", type=float, default=900.0, help="backfill step, s")
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--only-plan", action="store_true", help="only `peakpilot plan`")
    parser.add_argument(
        "--arrays",
        action="store_true",
        help="time `peakpilot plan` on the array path too (bench/ilp_arrays.py), alternating",
    )
    parser.add_argument("--plan-runs", type=int, default=5)
    args = parser.parse_args()

    group = apps(args.workloads)
    layers = ("pulp", "arrays") if args.arrays else ("pulp",)
    plan_times = {} if args.skip_plan else plan_process(group, args.plan_runs, layers)
    starts = [] if args.only_plan else run_rig(group, args)
    report(args, starts, plan_times)


def run_rig(group: list[App], args: argparse.Namespace) -> list[dict[str, Any]]:
    with rig(lean=True, history=backfilled(group, args.history_days, args.history_step)) as r:
        for a in group:
            r.exporter.set_rate(a.name, a.load)
            r.cluster.create(deployment(NS, a.name, current(a)))
        with RecordingProxy(r.prometheus.url) as proxy:
            r.cluster.create(manifest(group, proxy.url, args.interval))
            time.sleep(2.0)  # a scrape or two: every live gauge has a sample
            return [
                run_operator(r, proxy, "operator-1", args.rounds),
                run_operator(r, proxy, "operator-2", args.rounds),  # a restart
            ]


def report(
    args: argparse.Namespace,
    starts: list[dict[str, Any]],
    plan_times: dict[str, list[tuple[float, float, float]]],
) -> None:
    print(
        f"\nOne policy of {args.workloads} workloads, {args.interval:g} s interval, "
        f"{args.history_days:g} d of history, a binding cost budget\n"
    )
    print(
        "| start | first reconcile done (s from spawn) | its wall (s) | its queries | "
        "warmed | steady wall median / max (s) | queries per interval | RSS max / HWM (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i, s in enumerate(starts, 1):
        print(
            f"| {'first' if i == 1 else 'restart'} | {s['first_done']:.1f} | {s['first']:.2f} | "
            f"{s['first_queries']} | {s['warmed']} | {statistics.median(s['walls']):.2f} / "
            f"{max(s['walls']):.2f} | {max(s['queries'])} | {s['rss']:.0f} / {s['hwm']:.0f} |"
        )
    medians: dict[str, tuple[float, float, float]] = {}
    for layer, runs in plan_times.items():
        medians[layer] = (
            statistics.median(w for w, _, _ in runs),
            statistics.median(c for _, c, _ in runs),
            statistics.median(d for _, _, d in runs),
        )
        print(
            f"\n`peakpilot plan` ({layer} model, whole process, {args.workloads} workloads, "
            f"binding budget), wall / CPU / decide() CPU s per run: "
            f"{', '.join(f'{w:.2f} / {c:.2f} / {d:.3f}' for w, c, d in runs)}; "
            f"median {' / '.join(f'{m:.3f}' for m in medians[layer])}"
        )
    if "arrays" in medians and "pulp" in medians:
        ratios = [p / a for p, a in zip(medians["pulp"], medians["arrays"], strict=True)]
        print(
            "PuLP / arrays, medians: wall {:.2f}, CPU {:.2f}, decide() CPU {:.2f}".format(*ratios)
        )
    print(f"\n{_environment()}")


if __name__ == "__main__":
    main()
