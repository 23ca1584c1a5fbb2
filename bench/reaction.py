"""The operator's reaction time to a load step, and its memory with many policies.

The same real parts as the integration tests (tests/integration/harness): a real Prometheus
scraping an in-process load exporter every second, the Kubernetes API emulated by kmock's
KubernetesEmulator over HTTP, and the product operator as a process
(`python -m peakpilot.cli operator --standalone -A --kubeconfig ...`).

- reaction: one policy at a 5 s interval; the load steps up (+200 rps each time) at a random phase
  of the reconcile loop; measured from the first Prometheus sample holding the new load (its
  scrape timestamp) to the moment the Deployment's spec.replicas changes through /scale (polled
  every 10 ms), and from the step at the source. Target: interval + 1 s.
- memory: 50 policies of 5 workloads each (default 15 s interval, default forecast with 7 days
  of history, a cost budget that binds for half of them); Prometheus holds 7 days of a daily
  cycle per workload (backfilled with promtool at a 5 min step, continued live by the scrape), so
  the first reconcile of every workload warms its forecaster from a range query, as after an
  operator restart. Reported: the operator's resident set (VmRSS) with no policy, the time until
  every policy has reconciled once, VmRSS once every policy has reconciled 3 times, its maximum
  sampled every second over a 60 s window and the kernel's high-water mark (VmHWM), CPU time and
  the achieved reconcile period. Target: <= 200 MB RSS.

    python bench/reaction.py                     # both
    python bench/reaction.py --only reaction --trials 20 --interval 5
    python bench/reaction.py --only memory --policies 50 --workloads 5 --history-days 7

Needs the Debian `prometheus` package (prometheus, promtool) and the `test` extra (kmock).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import (  # noqa: E402
    EmulatedCluster,
    LoadExporter,
    PrometheusServer,
    Series,
    backfill,
    wait_until,
)
from harness.peakpilot import (  # noqa: E402
    FAST_BEHAVIOR,
    PeakPilotProcess,
    PolicyProbe,
    deployment,
    policy,
    workload,
)

GAUGE = "app_load_requests_per_second"


def scalingpolicy_crd() -> dict[str, Any]:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, Mapping) and doc.get("kind") == "CustomResourceDefinition":
                return dict(doc)
    raise SystemExit("no CRD in crds/: run `peakpilot crd`")


@dataclass
class Rig:
    workdir: Path
    exporter: LoadExporter
    prometheus: PrometheusServer
    cluster: EmulatedCluster

    def operator(self, name: str) -> PeakPilotProcess:
        process = PeakPilotProcess(
            workdir=self.workdir / name,
            kubeconfig=self.cluster.kubeconfig,
            env=self.cluster.env(),
            name=name,
        )
        self.cluster.operators.append(process)  # PolicyProbe counts reconciles on its /metrics
        process.start()
        process.wait_ready(timeout=60)
        return process


@contextmanager
def rig(
    *, lean: bool = False, history: Callable[[str], list[Series]] | None = None
) -> Iterator[Rig]:
    """The parts; ``lean``: an emulator that keeps no request log and a short kmock window (it
    walks that window for every request), so thousands of requests stay cheap; ``history``:
    series to backfill with promtool before Prometheus starts (given the exporter's
    ``host:port``, the ``instance`` label that the live samples will carry)."""
    workdir = Path(tempfile.mkdtemp(prefix="peakpilot-bench-"))
    exporter = LoadExporter().start()
    prometheus = PrometheusServer(workdir / "prometheus", targets=[exporter.target])
    if history is not None:
        started = time.monotonic()
        backfill(prometheus.data_dir, history(exporter.target), workdir=prometheus.workdir)
        print(f"backfilled in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if lean:
        cluster = EmulatedCluster(workdir / "kube", keep_requests=False, request_window=20)
    else:
        cluster = EmulatedCluster(workdir / "kube")
    try:
        prometheus.start()
        cluster.start()
        cluster.register_crd(scalingpolicy_crd())
        yield Rig(workdir, exporter, prometheus, cluster)
    finally:
        cluster.stop()
        prometheus.stop()
        exporter.stop()
        if os.environ.get("PEAKPILOT_KEEP_TMP") == "1":
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _replicas(cluster: EmulatedCluster, namespace: str, name: str) -> int:
    return int(cluster.stored("apps/v1", "deployments", namespace, name)["spec"]["replicas"])


def _first_sample_at(prometheus: PrometheusServer, app: str, value: float, after: float) -> float:
    """Timestamp of the first scraped sample of ``app``'s load equal to ``value``."""
    result = prometheus.query(f'{GAUGE}{{app="{app}"}}[2m]')
    for stamp, raw in result[0]["values"]:
        if float(stamp) >= after - 1.5 and float(raw) == value:
            return float(stamp)
    raise RuntimeError(f"no sample of {app} at {value} in Prometheus")


# -- reaction --


@dataclass(frozen=True)
class Trial:
    load: float
    from_prometheus: float  # first sample with the new load -> spec.replicas changed
    from_source: float  # exporter's value changed -> spec.replicas changed
    replicas: tuple[int, int]


def reaction(r: Rig, *, trials: int, interval: float, seed: int = 1) -> list[Trial]:
    rng = random.Random(seed)
    ns, app = "bench", "checkout"
    load = 40.0
    r.exporter.set_rate(app, load)
    r.cluster.create(deployment(ns, app, 2))
    behavior = {"scaleUp": FAST_BEHAVIOR["scaleUp"]}  # a step is never capped by a rate limit
    spec = policy(
        ns,
        "reaction",
        r.prometheus.url,
        [workload(app, max_replicas=5000)],
        interval=f"{interval:g}s",
        behavior=behavior,
        forecast={},  # the defaults: auto, 7 d of history
    )
    r.cluster.create(spec)
    operator = r.operator("operator-reaction")
    probe = PolicyProbe(r.cluster, ns, "reaction")
    try:
        probe.wait_condition("MetricsAvailable", "True", timeout=60)
        probe.wait_reconciles(2, timeout=4 * interval + 10)
        results = []
        for _ in range(trials):
            time.sleep(rng.uniform(0.0, interval))  # a random phase of the reconcile loop
            before = _replicas(r.cluster, ns, app)
            load += 200.0
            stepped = time.time()
            r.exporter.set_rate(app, load)

            def changed(before: int = before) -> int | None:
                now = _replicas(r.cluster, ns, app)
                return now if now != before else None

            after = wait_until(
                changed,
                timeout=4 * interval + 10,
                interval=0.01,
                what="the /scale patch",
            )
            patched = time.time()
            seen = _first_sample_at(r.prometheus, app, load, stepped)
            results.append(Trial(load, patched - seen, patched - stepped, (before, after)))
        return results
    finally:
        operator.stop()
        r.cluster.delete(*probe.ref)


# -- memory --


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass(frozen=True)
class App:
    namespace: str
    name: str
    load: float  # rps now
    price: float
    priority: float


def fleet(policies: int, workloads: int, seed: int = 1) -> list[list[App]]:
    rng = random.Random(seed)
    return [
        [
            App(
                f"team-{i:02d}",
                f"p{i:02d}-w{j}",
                rng.uniform(20.0, 400.0),
                rng.choice([0.05, 0.1, 0.2]),
                rng.choice([1, 5, 10, 40]),
            )
            for j in range(workloads)
        ]
        for i in range(policies)
    ]


def history(apps: list[App], days: float) -> Callable[[str], list[Series]]:
    """``days`` of daily-cycle load per app at a 5 min step (the forecaster's season bucket),
    ending 2 min ago, with the labels the live scrape adds so that one series continues."""
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
                step=300,
            )
            for i, a in enumerate(apps)
        ]

    return make


@dataclass(frozen=True)
class MemoryResult:
    policies: int
    workloads: int
    binding: int  # policies whose budget binds
    history_days: float
    idle_mb: float  # operator started, no policy
    first_round: float  # s from the policies' creation to every policy reconciled once
    settled_mb: float  # every policy reconciled 3 times
    max_mb: float  # highest VmRSS sampled over the window
    hwm_mb: float  # VmHWM at the end (the kernel's peak)
    cpu_share: float  # CPU seconds per second over the window (1.0 = one core)
    period: float  # achieved mean seconds between reconciles of a policy
    window: float


def memory(
    r: Rig,
    apps: list[list[App]],
    *,
    interval: float,
    window: float,
    history_days: float,
) -> MemoryResult:
    for group in apps:
        for a in group:
            r.exporter.set_rate(a.name, a.load)
    operator = r.operator("operator-memory")
    pid = operator.pid
    assert pid is not None
    time.sleep(3.0)  # idle: imports done, watches open
    idle = _proc_status(pid)["VmRSS"] / 1024
    binding = 0
    names = []
    for i, group in enumerate(apps):
        ns = group[0].namespace
        need = 0.0
        for a in group:
            r.cluster.create(deployment(ns, a.name, max(1, math.ceil(a.load / 32))))
            need += math.ceil(a.load / 32) * a.price
        spec_workloads = [
            workload(
                a.name,
                max_replicas=200,
                priority=a.priority,
                cost={"perReplicaHour": a.price},
                resources={"cpu": "500m", "memory": "1Gi"},
            )
            for a in group
        ]
        budget = round(need * (0.8 if i % 2 == 0 else 1.5), 2)  # binds for even policies
        binding += i % 2 == 0
        spec = policy(
            ns,
            "p",
            r.prometheus.url,
            spec_workloads,
            interval=f"{interval:g}s",
            budget={"maxCostPerHour": budget},
            behavior={},  # the defaults (HPA's)
            forecast={},  # the defaults: auto, 7 d of history
        )
        r.cluster.create(spec)
        names.append(ns)
    created = time.monotonic()

    def reconciles() -> Counter[str]:
        """Reconciles per policy namespace, from the operator's own /metrics."""
        counts: Counter[str] = Counter()
        for (name, labels), value in operator.samples().items():
            if name == "peakpilot_reconciles_total":
                counts[dict(labels)["namespace"]] += int(value)
        return counts

    def all_reconciled(times: int) -> bool:
        counts = reconciles()
        return all(counts[ns] >= times for ns in names)

    try:
        deadline = 6 * interval + 300
        wait_until(lambda: all_reconciled(1), timeout=deadline, interval=0.5, what="1 round")
        first_round = time.monotonic() - created
        wait_until(lambda: all_reconciled(3), timeout=deadline, interval=1.0, what="3 rounds")
        settled = _proc_status(pid)["VmRSS"] / 1024
        start_count = sum(reconciles().values())
        start_cpu, started = _cpu_seconds(pid), time.monotonic()
        peak = settled
        while time.monotonic() - started < window:
            time.sleep(1.0)
            peak = max(peak, _proc_status(pid)["VmRSS"] / 1024)
        elapsed = time.monotonic() - started
        cpu = (_cpu_seconds(pid) - start_cpu) / elapsed
        done = sum(reconciles().values()) - start_count
        hwm = _proc_status(pid)["VmHWM"] / 1024
        period = elapsed * len(apps) / done if done else math.inf
        return MemoryResult(
            len(apps),
            len(apps[0]),
            binding,
            history_days,
            idle,
            first_round,
            settled,
            peak,
            hwm,
            cpu,
            period,
            elapsed,
        )
    finally:
        operator.stop()
        warmed = operator.log().count("forecast warmed from")
        print(f"forecasts warmed from history: {warmed}", file=sys.stderr)
        if "Traceback" in operator.log():
            print(operator.log_tail(40), file=sys.stderr)


# -- output --


def _environment() -> str:
    from importlib.metadata import version

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"kopf {version('kopf')}, prometheus {_prometheus_version()}, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )


def _prometheus_version() -> str:
    import subprocess

    out = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout
    return out.split()[2] if len(out.split()) > 2 else "?"


def print_reaction(trials: list[Trial], interval: float) -> None:
    print(f"Reaction at a {interval:g} s interval ({len(trials)} load steps):\n")
    print("| step | load rps | replicas | Prometheus sample -> /scale s | source -> /scale s |")
    print("|---|---|---|---|---|")
    for i, t in enumerate(trials, 1):
        before, after = t.replicas
        print(
            f"| {i} | {t.load:g} | {before} -> {after} | {t.from_prometheus:.2f} "
            f"| {t.from_source:.2f} |"
        )
    prom = sorted(t.from_prometheus for t in trials)
    source = sorted(t.from_source for t in trials)
    print()
    print("| from | mean s | median s | p90 s | max s | target s |")
    print("|---|---|---|---|---|---|")
    for label, values in (("Prometheus sample", prom), ("load step at the source", source)):
        p90 = values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]
        print(
            f"| {label} | {statistics.mean(values):.2f} | {statistics.median(values):.2f} "
            f"| {p90:.2f} | {values[-1]:.2f} | {interval + 1:g} |"
        )
    print()


def print_memory(m: MemoryResult, interval: float) -> None:
    print(
        f"Memory with {m.policies} policies x {m.workloads} workloads "
        f"({m.binding} with a binding budget), {interval:g} s interval, "
        f"{m.history_days:g} days of history in Prometheus:\n"
    )
    print(
        "| RSS idle MB | first round s | RSS after 3 rounds MB | max RSS over "
        f"{m.window:.0f} s MB | VmHWM MB | CPU (cores) | reconcile period s | target |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {m.idle_mb:.0f} | {m.first_round:.1f} | {m.settled_mb:.0f} | {m.max_mb:.0f} "
        f"| {m.hwm_mb:.0f} | {m.cpu_share:.2f} | {m.period:.1f} | <= 200 MB |"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["reaction", "memory"])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--interval", type=float, default=5.0, help="reaction: policy interval")
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--workloads", type=int, default=5)
    parser.add_argument("--memory-interval", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=60.0, help="memory: seconds measured")
    parser.add_argument(
        "--history-days", type=float, default=7.0, help="memory: history backfilled (0: none)"
    )
    args = parser.parse_args()
    if args.only in (None, "reaction"):
        with rig() as r:
            trials = reaction(r, trials=args.trials, interval=args.interval)
        print_reaction(trials, args.interval)
    if args.only in (None, "memory"):
        apps = fleet(args.policies, args.workloads)
        flat = [a for group in apps for a in group]
        past = history(flat, args.history_days) if args.history_days > 0 else None
        with rig(lean=True, history=past) as r:
            result = memory(
                r,
                apps,
                interval=args.memory_interval,
                window=args.window,
                history_days=args.history_days,
            )
        print_memory(result, args.memory_interval)
    print(_environment())


if __name__ == "__main__":
    main()
