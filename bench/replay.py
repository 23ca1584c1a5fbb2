"""Replay benchmark: PeakPilot against the Kubernetes HPA on the shared traces (DESIGN section 5).

    python bench/replay.py                       # traces from ../shared/traces, plots to docs/img
    python bench/replay.py --traces DIR --img DIR

On each trace (the World Cup 1998 knock-out stage; the NAB load balancer, two weeks) with pods
starting in 60 s, capacity so that the trace's peak needs 200 replicas and at least 2 replicas,
it replays the example policy (examples/worldcup-knockout.yaml, examples/elb-spikes.yaml) and
the HPA at target 0.7 and 0.5 on the same observations (30 s late for all), and prints a
markdown table, the targets (met or missed), an ablation (what each part of the policy buys),
the replay speed (one week of one workload at 15 s steps; five workloads under a binding budget),
and writes the figures. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peakpilot.inputs import load_policy
from peakpilot.plot import plot_replay
from peakpilot.translate import to_policy
from peakplan.policy import HPA_SCALE_DOWN, ForecastSettings, Policy
from peakplan.problem import Budget
from peakplan.replay import (
    ControllerRun,
    Replay,
    ReplaySettings,
    Score,
    Trace,
    baseline,
    parse_trace,
    replay,
)

ROOT = Path(__file__).resolve().parents[1]
PEAK_REPLICAS = 200
STARTUP = 60.0
MIN_REPLICAS = 2
STEP = 15.0


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Case:
    label: str
    policy_file: str
    workload: str
    trace_file: str
    start: str | None
    end: str | None
    zoom: tuple[str, str]  # the window of the figure
    overview: bool  # also a figure of the whole window (unreadable for two weeks of noise)


CASES = (
    Case(
        "World Cup 1998, knock-out stage",
        "examples/worldcup-knockout.yaml",
        "web",
        "worldcup98_1min.csv",
        "1998-06-27T00:00:00",
        "1998-07-13T00:00:00",
        ("1998-07-07T16:00:00", "1998-07-07T23:00:00"),
        True,
    ),
    Case(
        "NAB AWS ELB, two weeks",
        "examples/elb-spikes.yaml",
        "api",
        "nab_elb_request_count_5min.csv",
        None,
        None,
        ("2014-04-22T12:00:00", "2014-04-22T22:00:00"),
        False,
    ),
)


def sized(policy: Policy, trace: Trace, start: float, end: float) -> Policy:
    """The example policy, checked against what the benchmark asks: the window's peak needs 200
    replicas at 100 %, at least 2 replicas, pods ready 60 s after they are asked for. The
    examples are written that way, so `peakpilot simulate` on them reproduces these figures."""
    (w,) = policy.workloads
    needs = math.ceil(trace.slice(start, end).peak_rate / w.capacity - 1e-9)
    if (needs, w.min_replicas, w.startup) != (PEAK_REPLICAS, MIN_REPLICAS, STARTUP):
        raise SystemExit(
            f"{w.name}: the peak needs {needs} replicas (want {PEAK_REPLICAS}), minReplicas "
            f"{w.min_replicas} (want {MIN_REPLICAS}), startup {w.startup:g} s (want {STARTUP:g})"
        )
    return policy


def row(label: str, controller: str, s: Score) -> str:
    return (
        f"| {label} | {controller} | {s.cost_ratio:.3f} | {s.unserved_pct:.4f} | "
        f"{s.overload_minutes:,} | {s.scale_changes:,} | {s.billed_replica_seconds / 3600:,.0f} | "
        f"{s.oracle_replica_seconds / 3600:,.0f} |"
    )


HEADER = (
    "| trace | controller | cost ratio | unserved % | overload min | scale changes | replica-h "
    "| oracle replica-h |\n|---|---|---:|---:|---:|---:|---:|---:|"
)


def moves(desired: Sequence[int], initial: int) -> str:
    """How a controller's replica count changed: up, down, and how many by one replica."""
    up = down = single = 0
    for before, after in itertools.pairwise([initial, *desired]):
        up += after > before
        down += after < before
        single += abs(after - before) == 1
    return f"{up:,} up and {down:,} down, {single / max(1, up + down):.0%} of one replica"


def sized_by(extra: Mapping[str, Any]) -> str:
    """What set PeakPilot's demand, as shares of the steps with a forecast."""
    counts: Mapping[str, int] = extra.get("sized_by", {})
    steps = max(1, sum(counts.values()))
    return ", ".join(f"{k} {v / steps:.1%}" for k, v in sorted(counts.items(), key=lambda i: -i[1]))


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def run_case(case: Case, traces_dir: Path, img: Path) -> tuple[Replay, ControllerRun, str]:
    manifest = load_policy(ROOT / case.policy_file)
    trace = parse_trace((traces_dir / case.trace_file).read_text())
    start = at(case.start) if case.start else trace.start
    end = at(case.end) if case.end else trace.end
    policy = sized(to_policy(manifest.spec), trace, start, end)
    traces = {case.workload: trace}
    settings = ReplaySettings(step=STEP, start=start, end=end, metrics_lag=30.0)
    began = time.perf_counter()
    result = replay(policy, traces, settings)
    seconds = time.perf_counter() - began
    wide = baseline(policy, traces, settings, target=0.5)
    capacity = policy.workloads[0].capacity
    ours = result.controllers["peakpilot"].workloads[case.workload]
    hpa = result.controllers["hpa"].workloads[case.workload]
    initial = result.initial[case.workload]
    note = (
        f"{case.label}: {result.steps:,} steps of {STEP:g} s replayed in {seconds:.1f} s; "
        f"capacity {capacity:.8g} rps per replica: the peak, "
        f"{trace.slice(start, end).peak_rate:,.2f} rps, needs {PEAK_REPLICAS} replicas; "
        f"PeakPilot's changes: {moves(ours.desired, initial)}, the HPA's: "
        f"{moves(hpa.desired, initial)}; PeakPilot sized by {sized_by(ours.extra)}"
    )
    zoom_settings = replace(settings, start=at(case.zoom[0]), end=at(case.zoom[1]))
    zoomed = replay(policy, traces, zoom_settings)
    name = Path(case.policy_file).stem
    floors = {case.workload: policy.workload(case.workload).min_replicas}
    plot_replay(
        zoomed,
        {case.workload: capacity},
        floors,
        img / f"replay-{name}.png",
        name,
        f"{case.label}: {case.zoom[0]} to {case.zoom[1]} UTC (15 s steps, metrics 30 s late)",
    )
    if case.overview:
        plot_replay(
            result,
            {case.workload: capacity},
            floors,
            img / f"replay-{name}-all.png",
            name,
            f"{case.label} (15 s steps, metrics 30 s late)",
        )
    return result, wide, note


def ablations(traces_dir: Path) -> list[str]:
    """What each part of the World Cup policy buys: the full policy, then one part removed."""
    case = CASES[0]
    full = to_policy(load_policy(ROOT / case.policy_file).spec)
    trace = parse_trace((traces_dir / case.trace_file).read_text())
    start, end = at(case.start or ""), at(case.end or "")
    behavior = full.behavior
    variants = {
        "the example policy": full,
        "without the calendar": replace(full, events=()),
        "HPA scale-down window (300 s)": replace(
            full, behavior=replace(behavior, down=HPA_SCALE_DOWN)
        ),
        "a 120 s scale-down window": replace(
            full, behavior=replace(behavior, down=replace(behavior.down, window=120.0))
        ),
        "changeCost 0s (no idle hold)": replace(full, behavior=replace(behavior, change_cost=0.0)),
        "changeCost 20m": replace(full, behavior=replace(behavior, change_cost=1200.0)),
        "forecast quantile 0.9 (not 0.95)": replace(
            full, forecast=replace(full.forecast, quantile=0.9)
        ),
        "forecast.method reactive (no band)": replace(
            full, forecast=ForecastSettings(method="reactive")
        ),
    }
    lines = [
        "| World Cup knock-out, PeakPilot with | cost ratio | unserved % | overload min "
        "| scale changes |",
        "|---|---:|---:|---:|---:|",
    ]
    settings = ReplaySettings(step=STEP, start=start, end=end)
    for label, policy in variants.items():
        s = replay(sized(policy, trace, start, end), {case.workload: trace}, settings)
        total = s.controllers["peakpilot"].total
        lines.append(
            f"| {label} | {total.cost_ratio:.3f} | {total.unserved_pct:.4f} | "
            f"{total.overload_minutes:,} | {total.scale_changes:,} |"
        )
    return lines


def week_speed(traces_dir: Path) -> str:
    case = CASES[0]
    trace = parse_trace((traces_dir / case.trace_file).read_text())
    start = at("1998-06-27T00:00:00")
    end = start + 7 * 86400
    policy = to_policy(load_policy(ROOT / case.policy_file).spec)  # sized for the whole stage
    settings = ReplaySettings(step=STEP, start=start, end=end)
    began = time.perf_counter()
    result = replay(policy, {case.workload: trace}, settings)
    seconds = time.perf_counter() - began
    return (
        f"one week of one workload (World Cup, 1998-06-27 to 07-04), {result.steps:,} steps of "
        f"15 s: {seconds:.1f} s ({result.steps / seconds:,.0f} steps/s; target <= 20 s: "
        f"{verdict(seconds <= 20)})"
    )


FIVE = (  # name, share of the World Cup load, priority (a weight: who keeps its SLO first)
    ("frontend", 1.0, 5.0),
    ("catalog", 0.8, 1.0),
    ("cart", 0.4, 8.0),
    ("checkout", 0.2, 40.0),
    ("payments", 0.1, 60.0),
)
FIVE_BUDGET = 20.0  # money/h at 0.05 a replica-hour: 400 replicas; the semi-final needs ~600


def five_workloads(traces_dir: Path) -> list[str]:
    """Five workloads sharing a cost budget that binds during the semi-final, for one day."""
    case = CASES[0]
    trace = parse_trace((traces_dir / case.trace_file).read_text())
    start = at("1998-07-07T00:00:00")
    end = start + 86400
    base = to_policy(load_policy(ROOT / case.policy_file).spec)
    (web,) = base.workloads
    policy = replace(
        base,
        workloads=tuple(replace(web, name=n, priority=p) for n, _, p in FIVE),
        budget=Budget(max_cost_per_hour=FIVE_BUDGET),
        events=(),
    )
    traces = {n: trace.scaled(share) for n, share, _ in FIVE}
    settings = ReplaySettings(step=STEP, start=start, end=end)
    began = time.perf_counter()
    result = replay(policy, traces, settings)
    seconds = time.perf_counter() - began
    ours, hpa = result.controllers["peakpilot"], result.controllers["hpa"]
    price = web.price
    at_limit = sum(
        1
        for k in range(result.steps)
        if sum(s.desired[k] for s in ours.workloads.values()) * price >= FIVE_BUDGET - price
    )
    hpa_peak = max(
        sum(s.desired[k] for s in hpa.workloads.values()) * price for k in range(result.steps)
    )
    lines = [
        f"five workloads (the World Cup load x 1, 0.8, 0.4, 0.2, 0.1) under a cost budget of "
        f"{FIVE_BUDGET:g}/h ({FIVE_BUDGET / price:.0f} replicas) on 1998-07-07, "
        f"{result.steps:,} steps: {seconds:.1f} s ({seconds / result.steps * 1000:.2f} ms a "
        f"step); the plan is at the budget in {at_limit:,} steps; the HPA, which knows no "
        f"budget, peaks at {hpa_peak:.2f}/h",
        "",
        "| workload | priority | PeakPilot cost ratio | PeakPilot unserved % | HPA cost ratio "
        "| HPA unserved % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n, _, p in FIVE:
        a, b = ours.workloads[n].score, hpa.workloads[n].score
        lines.append(
            f"| {n} | {p:g} | {a.cost_ratio:.3f} | {a.unserved_pct:.3f} | {b.cost_ratio:.3f} | "
            f"{b.unserved_pct:.3f} |"
        )
    lines.append(
        f"| total | | {ours.total.cost_ratio:.3f} | {ours.total.unserved_pct:.3f} | "
        f"{hpa.total.cost_ratio:.3f} | {hpa.total.unserved_pct:.3f} |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=Path, default=ROOT.parent / "shared" / "traces")
    parser.add_argument("--img", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}\n")
    print(HEADER)
    notes: list[str] = []
    targets: list[str] = []
    results: Mapping[str, tuple[Replay, ControllerRun, str]] = {
        c.label: run_case(c, args.traces, args.img) for c in CASES
    }
    for label, (result, wide, note) in results.items():
        ours = result.controllers["peakpilot"].total
        hpa = result.controllers["hpa"].total
        print(row(label, "PeakPilot", ours))
        print(row(label, "HPA target 0.7", hpa))
        print(row(label, "HPA target 0.5", wide.total))
        notes.append(note)
        targets.append(
            f"- {label}: PeakPilot cost ratio {ours.cost_ratio:.3f} <= HPA(0.7) "
            f"{hpa.cost_ratio:.3f}: {verdict(ours.cost_ratio <= hpa.cost_ratio)}; unserved "
            f"{ours.unserved_pct:.4f} % <= HPA(0.5) {wide.total.unserved_pct:.4f} %: "
            f"{verdict(ours.unserved_pct <= wide.total.unserved_pct)}"
        )
    knockout = results[CASES[0].label][0].controllers["peakpilot"].total
    targets.append(
        f"- World Cup knock-out: PeakPilot cost ratio {knockout.cost_ratio:.3f} <= 1.3 x "
        f"oracle: {verdict(knockout.cost_ratio <= 1.3)}"
    )
    print("\nTargets:\n" + "\n".join(targets))
    print("\n" + "\n".join(f"- {n}" for n in notes))
    print("\nWhat each part of the World Cup policy buys:\n")
    print("\n".join(ablations(args.traces)))
    print("\nSpeed:\n")
    print(f"- {week_speed(args.traces)}")
    print("- " + "\n".join(five_workloads(args.traces)))
    figures = sorted(args.img.glob("replay-*.png"))
    print(f"\nfigures: {', '.join(str(p.relative_to(ROOT, walk_up=True)) for p in figures)}")


if __name__ == "__main__":
    main()
