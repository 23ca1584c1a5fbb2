"""Corpus benchmark: PeakPilot with a new user's policy against the whole HPA frontier.

    python bench/frontier.py                          # every trace of the corpus index
    python bench/frontier.py --corpus DIR --traces clarknet_1995_1min,nab_nyc_taxi_30min
    python bench/frontier.py --json                   # one JSON object instead of the tables
    python bench/frontier.py --ablation               # also each mechanism switched off
    python bench/frontier.py --variant 'window 900 s={"behavior": {"scaleDown":
        {"stabilizationWindowSeconds": 900}}}'        # and any policy variant, side by side

Every trace in the corpus's index.json (the World Cup and ELB files included) is replayed whole
with ONE policy template, the one a new user writes: capacityPerReplica = the trace's peak / 200,
cost.perReplicaHour 1, startup 60s, minReplicas 2, maxReplicas 1000, nothing else; step 15 s,
metrics 30 s late for both controllers. No per-trace settings. A second column adds the trace's
scheduled events from index.json as a calendar (each with the same guessed loadMultiplier, a
new user's guess: the index gives times, not sizes). The HPA v2 model runs at every target
0.30, 0.35, ... 0.95 on the same observations; the frontier ratio R is defined in
docs/scoring.md. It also runs the shared-budget case (three traces, one clock, one budget)
against a static split of the same budget.

The same code as `peakpilot simulate`: the manifest is validated by the API models and
translated by `to_policy`, and `peakplan.replay` replays and scores. It prints figures and
asserts nothing. Two worker processes (the machine has two cores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from peakpilot.inputs import parse_policy
from peakpilot.translate import to_policy
from peakplan.policy import Policy
from peakplan.replay import (
    FRONTIER_TARGETS,
    ReplaySettings,
    Score,
    Series,
    Trace,
    baselines,
    frontier_ratio,
    interpolated_frontier_ratio,
    parse_trace,
    replay,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "traces" / "corpus"
STEP = 15.0
LAG = 30.0
PEAK_REPLICAS = 200  # capacityPerReplica = peak / 200
EVENT_MULTIPLIER = 2.0  # the calendar column's guess for every event: "about twice the load"
WORKLOAD = "app"
WORKERS = 2

# Point 3 of issue 8: what PeakPilot must reach on every trace, and the corpus median.
MAX_R = 0.85
MAX_MEDIAN_R = 0.75
MAX_CHANGES_VS_HPA07 = 1.5

# `--ablation`: the template with one mechanism switched off through the policy's own fields
# (what a user could write), to show what each buys. Name -> spec fields merged into the template.
ABLATION: dict[str, dict[str, Any]] = {
    "no tolerance (behavior.tolerance: 0)": {"behavior": {"tolerance": 0}},
    "no idle hold (behavior.changeCost: 0s)": {"behavior": {"changeCost": "0s"}},
    "no forecast or band (forecast.method: reactive)": {"forecast": {"method": "reactive"}},
}

# The shared-budget case: three traces of different shapes, a week each, on one clock.
SHARED = (  # (trace, priority)
    ("clarknet_1995_1min", 10.0),  # daily cycle
    ("nab_twitter_AMZN_5min", 3.0),  # surges
    ("azure_functions_2019_40d07b99_1min", 1.0),  # on/off plateaus and bursts
)
SHARED_PEAK_REPLICAS = 100
WEEK = 7 * 86400.0


@dataclass(frozen=True)
class Entry:
    """One trace of the corpus index."""

    name: str
    path: Path
    events: tuple[tuple[str, str, str], ...]  # (name, start, end) as written in the index


def read_index(corpus: Path) -> list[Entry]:
    index = json.loads((corpus / "index.json").read_text(encoding="utf-8"))
    return [
        Entry(
            item["name"],
            (corpus / item["file"]).resolve(),
            tuple((e["name"], e["start"], e["end"]) for e in item.get("events", [])),
        )
        for item in index
    ]


@cache
def load(path: Path) -> Trace:
    return parse_trace(path.read_text(encoding="utf-8"))


def _rfc3339(text: str) -> str:
    """The index writes minutes without seconds (1998-06-10T15:30Z); the API wants seconds."""
    date, _, clock = text.partition("T")
    clock = clock.removesuffix("Z")
    if clock.count(":") == 1:
        clock += ":00"
    return f"{date}T{clock}Z"


def _event_name(i: int, text: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"e{i}-{slug}"[:63].rstrip("-")


def manifest(
    capacity: float,
    events: Sequence[tuple[str, str, str]] = (),
    priority: float | None = None,
    budget: float | None = None,
    name: str = WORKLOAD,
    more: Sequence[Mapping[str, Any]] = (),
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The new user's ScalingPolicy, as YAML would give it: nothing beyond the template."""

    def workload(n: str, cap: float, prio: float | None) -> dict[str, Any]:
        w: dict[str, Any] = {
            "name": n,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n},
            "minReplicas": 2,
            "maxReplicas": 1000,
            "load": {"query": f'sum(rate(http_requests_total{{app="{n}"}}[1m]))'},
            "capacityPerReplica": cap,
            "cost": {"perReplicaHour": 1},
            "startup": "60s",
        }
        if prio is not None:
            w["priority"] = prio
        return w

    spec: dict[str, Any] = {"workloads": [workload(name, capacity, priority)]}
    spec["workloads"] += [workload(m["name"], m["capacity"], m.get("priority")) for m in more]
    if events:
        spec["events"] = [
            {
                "name": _event_name(i, n),
                "start": _rfc3339(a),
                "end": _rfc3339(b),
                "loadMultiplier": EVENT_MULTIPLIER,
            }
            for i, (n, a, b) in enumerate(events)
        ]
    if budget is not None:
        spec["budget"] = {"maxCostPerHour": budget}
    spec.update(fields or {})
    return {
        "apiVersion": "peakpilot.io/v1alpha1",
        "kind": "ScalingPolicy",
        "metadata": {"name": "frontier", "namespace": "bench"},
        "spec": spec,
    }


def template_policy(
    trace: Trace,
    events: Sequence[tuple[str, str, str]] = (),
    fields: Mapping[str, Any] | None = None,
) -> Policy:
    doc = manifest(trace.peak_rate / PEAK_REPLICAS, events, fields=fields)
    return to_policy(parse_policy(doc, "the template policy").spec)


def settings(trace: Trace) -> ReplaySettings:
    return ReplaySettings(step=STEP, start=trace.start, end=trace.end, metrics_lag=LAG)


def summary(s: Score, seconds: float) -> dict[str, Any]:
    return {
        "billed_replica_seconds": s.billed_replica_seconds,
        "oracle_replica_seconds": s.oracle_replica_seconds,
        "cost_ratio": s.cost_ratio,
        "unserved_pct": s.unserved_pct,
        "unserved_requests": s.unserved_requests,
        "overload_minutes": s.overload_minutes,
        "scale_changes": s.scale_changes,
        "seconds": seconds,
    }


# Work items, run in the pool: ("peakpilot", trace, calendar), ("hpa", trace, targets) or
# ("ablation", trace, (variant name, its spec fields as JSON)).
Task = tuple[str, str, Any]


def run_task(task: Task, entries: Mapping[str, Entry]) -> tuple[Task, Any]:
    kind, name, arg = task
    began = time.perf_counter()
    if kind == "shared":
        return task, shared_budget(entries)
    entry = entries[name]
    trace = load(entry.path)
    if kind in ("peakpilot", "ablation"):
        if kind == "peakpilot":
            policy = template_policy(trace, entry.events if arg else ())
        else:
            policy = template_policy(trace, fields=json.loads(arg[1]))
        result = replay(policy, {WORKLOAD: trace}, settings(trace))
        s = result.controllers["peakpilot"].workloads[WORKLOAD].score
        out = summary(s, time.perf_counter() - began)
        out["steps"] = result.steps
        return task, out
    runs = baselines(template_policy(trace), {WORKLOAD: trace}, settings(trace), arg)
    seconds = (time.perf_counter() - began) / len(arg)
    return task, {t: summary(run.workloads[WORKLOAD].score, seconds) for t, run in runs.items()}


def _week(trace: Trace, start: float) -> Trace:
    """The first week of a trace, moved onto a common clock starting at `start`."""
    week = trace.slice(trace.start, trace.start + WEEK)
    return Trace(start, week.interval, week.counts, week.missing)


def shared_budget(entries: Mapping[str, Entry]) -> dict[str, Any]:
    """Point 4 of issue 8: three workloads, one budget of half their summed peak need."""
    clock = 0.0
    traces = {
        f"w{i}-{n.split('_')[0]}": _week(load(entries[n].path), clock)
        for i, (n, _) in enumerate(SHARED)
    }
    names = list(traces)
    prio = {name: p for name, (_, p) in zip(names, SHARED, strict=True)}
    cap = {n: tr.peak_rate / SHARED_PEAK_REPLICAS for n, tr in traces.items()}
    budget = 0.5 * SHARED_PEAK_REPLICAS * len(names)  # price 1/h: replicas = money per hour
    first, *rest = names
    more = [{"name": n, "capacity": cap[n], "priority": prio[n]} for n in rest]
    doc = manifest(cap[first], priority=prio[first], budget=budget, name=first, more=more)
    policy = to_policy(parse_policy(doc, "the shared-budget policy").spec)
    cfg = ReplaySettings(step=STEP, start=clock, end=clock + WEEK, metrics_lag=LAG)
    began = time.perf_counter()
    result = replay(policy, traces, cfg)
    seconds = time.perf_counter() - began
    ours = result.controllers["peakpilot"].workloads
    price = {w.name: w.price for w in policy.workloads}
    spend = [sum(ours[n].desired[k] * price[n] for n in names) for k in range(result.steps)]
    # The static split: each its own HPA at 0.7, capped at an equal share of the budget.
    share = math.floor(budget / len(names))
    capped = replace(
        policy,
        workloads=tuple(replace(w, max_replicas=share) for w in policy.workloads),
        budget=replace(policy.budget, max_cost_per_hour=None),
    )
    static = baselines(capped, traces, cfg, [0.7])[0.7].workloads
    free = baselines(replace(policy, budget=capped.budget), traces, cfg, [0.5])[0.5].workloads

    def weighted(run: Mapping[str, Series]) -> float:
        return sum(prio[n] * run[n].score.unserved_pct for n in names) / sum(prio.values())

    top = max(names, key=lambda n: prio[n])
    per = {
        n: {
            "priority": prio[n],
            "peakpilot": summary(ours[n].score, seconds),
            "static_split_hpa07": summary(static[n].score, 0.0),
            "uncapped_hpa05": summary(free[n].score, 0.0),
        }
        for n in names
    }
    ratio = weighted(ours) / weighted(static) if weighted(static) > 0 else math.inf
    if weighted(static) <= 0 and weighted(ours) <= 0:
        ratio = 1.0
    return {
        "traces": {n: src for n, (src, _) in zip(names, SHARED, strict=True)},
        "budget_per_hour": budget,
        "share_replicas": share,
        "steps": result.steps,
        "seconds": seconds,
        "max_cost_over_budget": max(spend) / budget,
        "weighted_unserved_pct": weighted(ours),
        "static_weighted_unserved_pct": weighted(static),
        "weighted_unserved_vs_static": ratio,
        "top": top,
        "top_unserved_pct": ours[top].score.unserved_pct,
        "top_uncapped_hpa05_unserved_pct": free[top].score.unserved_pct,
        "workloads": per,
    }


def tasks_for(
    entries: Sequence[Entry], variants: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Task]:
    """The work, longest first (by steps) so two workers finish together. `variants`: name ->
    spec fields merged into the template (the ablation's and `--variant`'s)."""
    work: list[tuple[float, Task]] = []
    for e in entries:
        tr = load(e.path)
        steps = tr.duration / STEP
        work.append((steps * 3.0, ("peakpilot", e.name, False)))
        for v, fields in (variants or {}).items():
            work.append((steps * 3.0, ("ablation", e.name, (v, json.dumps(fields)))))
        if e.events:
            work.append((steps * 3.0, ("peakpilot", e.name, True)))
        half = len(FRONTIER_TARGETS) // 2
        for part in (FRONTIER_TARGETS[:half], FRONTIER_TARGETS[half:]):
            work.append((steps * len(part) * 0.3, ("hpa", e.name, part)))
    return [t for _, t in sorted(work, key=lambda w: -w[0])]


def _pool_run(args: tuple[Task, Mapping[str, Entry]]) -> tuple[Task, Any]:
    return run_task(*args)


def evaluate(
    name: str, ours: Mapping[str, Any], hpa: Mapping[float, Mapping[str, Any]]
) -> dict[str, Any]:
    """One trace's row: R, and each point-3 target met or not."""
    points = {t: (h["billed_replica_seconds"], h["unserved_requests"]) for t, h in hpa.items()}
    cost, unserved = ours["billed_replica_seconds"], ours["unserved_requests"]
    r = frontier_ratio(cost, unserved, points)
    h05, h07 = hpa[0.5], hpa[0.7]
    return {
        "R": r,
        "Rc": interpolated_frontier_ratio(cost, unserved, points),
        "served": unserved <= h05["unserved_requests"] * (1 + 1e-9),
        "r_ok": r <= MAX_R,
        "changes": ours["scale_changes"] <= MAX_CHANGES_VS_HPA07 * h07["scale_changes"],
    }


def collect(entries: Sequence[Entry], results: Mapping[Task, Any]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    shared = None
    for task, value in results.items():
        if task[0] == "shared":
            shared = value
    for e in entries:
        hpa: dict[float, Any] = {}
        for task, value in results.items():
            if task[0] == "hpa" and task[1] == e.name:
                hpa.update(value)
        row: dict[str, Any] = {"hpa": {f"{t:.2f}": hpa[t] for t in sorted(hpa)}}
        for calendar in (False, True):
            ours = results.get(("peakpilot", e.name, calendar))
            if ours is None:
                continue
            key = "calendar" if calendar else "peakpilot"
            row[key] = {**ours, **evaluate(e.name, ours, hpa)}
        for task, ours in results.items():
            if task[0] == "ablation" and task[1] == e.name:
                variant = task[2][0]
                row.setdefault("ablation", {})[variant] = {**ours, **evaluate(e.name, ours, hpa)}
        rows[e.name] = row
    rs = [rows[e.name]["peakpilot"]["R"] for e in entries]
    median = statistics.median(rs) if rs else math.nan
    rcs = [rows[e.name]["peakpilot"]["Rc"] for e in entries]
    cal = [rows[e.name].get("calendar", rows[e.name]["peakpilot"])["R"] for e in entries]
    return {
        "step_seconds": STEP,
        "metrics_lag_seconds": LAG,
        "targets": list(FRONTIER_TARGETS),
        "event_multiplier": EVENT_MULTIPLIER,
        "traces": rows,
        "median_R": median,
        "median_R_ok": median <= MAX_MEDIAN_R,
        "median_R_with_calendar": statistics.median(cal) if cal else math.nan,
        "median_Rc": statistics.median(rcs) if rcs else math.nan,
        "geometric_mean_Rc": geometric_mean(rcs),
        "shared_budget": shared,
    }


def geometric_mean(values: Sequence[float]) -> float:
    """Of the interpolated ratios: one number for the whole corpus that a step of the HPA grid
    does not move (inf if any trace is beyond the curve's end)."""
    if not values:
        return math.nan
    if any(math.isinf(v) for v in values):
        return math.inf
    if any(v <= 0 for v in values):  # a trace that cost nothing
        return 0.0
    return statistics.geometric_mean(values)


def _r(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def print_tables(report: Mapping[str, Any], seconds: float) -> None:
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"{WORKERS} worker processes; {seconds:.0f} s wall\n"
    )
    print(
        "| trace | PeakPilot cost | unserved % | changes | HPA 0.5 cost | unserved % "
        "| HPA 0.7 cost | unserved % | changes | R | Rc | served <= HPA 0.5 | R <= 0.85 "
        "| changes <= 1.5x |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|:-:|")
    for name, row in report["traces"].items():
        p, h5, h7 = row["peakpilot"], row["hpa"]["0.50"], row["hpa"]["0.70"]
        print(
            f"| {name} | {p['cost_ratio']:.3f} | {p['unserved_pct']:.3f} | "
            f"{p['scale_changes']:,} | {h5['cost_ratio']:.3f} | {h5['unserved_pct']:.3f} | "
            f"{h7['cost_ratio']:.3f} | {h7['unserved_pct']:.3f} | {h7['scale_changes']:,} | "
            f"{_r(p['R'])} | {_r(p['Rc'])} | {_mark(p['served'])} | {_mark(p['r_ok'])} | "
            f"{_mark(p['changes'])} |"
        )
    print(
        f"\nmedian R {_r(report['median_R'])} (target <= {MAX_MEDIAN_R}: "
        f"{_mark(report['median_R_ok'])}); with the calendar where a trace has one: "
        f"{_r(report['median_R_with_calendar'])}; Rc (R with the HPA's cost interpolated "
        f"between the targets that bracket PeakPilot's unserved load): median "
        f"{report['median_Rc']:.3f}, geometric mean {report['geometric_mean_Rc']:.3f}"
    )
    cal = {n: r for n, r in report["traces"].items() if "calendar" in r}
    if cal:
        print(
            f"\nWith the calendar (index.json's events, loadMultiplier {EVENT_MULTIPLIER:g} "
            "each):\n"
        )
        print(
            "| trace | events | cost | unserved % | changes | R | served <= HPA 0.5 "
            "| R <= 0.85 | changes <= 1.5x |"
        )
        print("|---|---:|---:|---:|---:|---:|:-:|:-:|:-:|")
        for name, row in cal.items():
            c = row["calendar"]
            print(
                f"| {name} | {row.get('events', '')} | {c['cost_ratio']:.3f} | "
                f"{c['unserved_pct']:.3f} | {c['scale_changes']:,} | {_r(c['R'])} | "
                f"{_mark(c['served'])} | {_mark(c['r_ok'])} | {_mark(c['changes'])} |"
            )
    print("\nThe HPA frontier (cost ratio / unserved % per target):\n")
    targets = report["targets"]
    print("| trace | " + " | ".join(f"{t:.2f}" for t in targets) + " |")
    print("|---|" + "---:|" * len(targets))
    for name, row in report["traces"].items():
        points = [row["hpa"][f"{t:.2f}"] for t in targets]
        cells = [f"{h['cost_ratio']:.2f} / {h['unserved_pct']:.2f}" for h in points]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if any("ablation" in row for row in report["traces"].values()):
        print_ablation(report)
    shared = report.get("shared_budget")
    if shared:
        print_shared(shared)


def print_ablation(report: Mapping[str, Any]) -> None:
    """One row per variant: the median R and how many traces meet each point-3 target."""
    rows = report["traces"]
    print(
        "\nAblation and variants (the template with one mechanism off, or as `--variant` says; "
        "same traces, same HPA frontier):\n"
    )
    print(
        "| variant | median R | geometric mean Rc | served <= HPA 0.5 | R <= 0.85 "
        "| changes <= 1.5x | all three | changes, all traces |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    variants = ["defaults", *next(r["ablation"] for r in rows.values() if "ablation" in r)]
    for variant in variants:
        runs = [
            row["peakpilot"] if variant == "defaults" else row["ablation"][variant]
            for row in rows.values()
        ]
        n = len(runs)
        met = {k: sum(bool(r[k]) for r in runs) for k in ("served", "r_ok", "changes")}
        every = sum(all(r[k] for k in ("served", "r_ok", "changes")) for r in runs)
        print(
            f"| {variant} | {_r(statistics.median(r['R'] for r in runs))} "
            f"| {geometric_mean([r['Rc'] for r in runs]):.3f} | {met['served']}/{n} "
            f"| {met['r_ok']}/{n} | {met['changes']}/{n} | {every}/{n} "
            f"| {sum(r['scale_changes'] for r in runs):,} |"
        )


def print_shared(s: Mapping[str, Any]) -> None:
    print(
        f"\nShared budget: {', '.join(f'{n} ({src})' for n, src in s['traces'].items())}, one "
        f"week each on one clock, each peak needing {SHARED_PEAK_REPLICAS} replicas, price 1/h, "
        f"budget {s['budget_per_hour']:g}/h (half the summed peak need); static split: each its "
        f"own HPA at 0.7 capped at {s['share_replicas']} replicas. {s['steps']:,} steps, "
        f"{s['seconds']:.0f} s.\n"
    )
    print(
        "| workload | priority | PeakPilot cost | unserved % | static split cost | unserved % "
        "| uncapped HPA 0.5 cost | unserved % |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, w in s["workloads"].items():
        a, b, c = w["peakpilot"], w["static_split_hpa07"], w["uncapped_hpa05"]
        print(
            f"| {n} | {w['priority']:g} | {a['cost_ratio']:.3f} | {a['unserved_pct']:.3f} | "
            f"{b['cost_ratio']:.3f} | {b['unserved_pct']:.3f} | {c['cost_ratio']:.3f} | "
            f"{c['unserved_pct']:.3f} |"
        )
    print(
        f"\n- max cost / budget at any step: {s['max_cost_over_budget']:.3f} (target <= 1: "
        f"{_mark(s['max_cost_over_budget'] <= 1 + 1e-9)})\n"
        f"- priority-weighted unserved: {s['weighted_unserved_pct']:.3f} % vs the static split's "
        f"{s['static_weighted_unserved_pct']:.3f} %: x{s['weighted_unserved_vs_static']:.2f} "
        f"(target <= 0.7: {_mark(s['weighted_unserved_vs_static'] <= 0.7)})\n"
        f"- {s['top']} (top priority) unserved {s['top_unserved_pct']:.3f} % vs its uncapped HPA "
        f"at 0.5: {s['top_uncapped_hpa05_unserved_pct']:.3f} % (target <=: "
        f"{_mark(s['top_unserved_pct'] <= s['top_uncapped_hpa05_unserved_pct'] + 1e-9)})"
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """`--variant NAME=JSON`: a name and spec fields the template takes (checked here, so a
    typo fails before minutes of replays, with the policy's own error)."""
    name, sep, body = text.partition("=")
    if not sep or not name.strip():
        sys.exit(
            f"--variant {text!r}: write NAME=JSON, e.g. "
            'q95=\'{"forecast": {"quantile": 0.95}}\''
        )
    try:
        fields = json.loads(body)
    except json.JSONDecodeError as exc:
        sys.exit(f"--variant {name}: its fields are not JSON ({exc})")
    if not isinstance(fields, dict):
        sys.exit(f"--variant {name}: its fields must be a JSON object of ScalingPolicy spec fields")
    try:
        to_policy(parse_policy(manifest(1.0, fields=fields), f"--variant {name}").spec)
    except Exception as exc:  # the policy's own message names the field
        message = str(exc)
        sys.exit(message if message.startswith("--variant") else f"--variant {name}: {message}")
    return name.strip(), fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="index.json's folder")
    parser.add_argument("--traces", default="", help="only these traces (names, comma-separated)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared-budget case")
    parser.add_argument(
        "--ablation", action="store_true", help="also replay with each mechanism switched off"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="also replay the template with these spec fields merged in (a JSON object, e.g. "
        '\'{"forecast": {"quantile": 0.95}}\'), shown beside the ablation; repeatable',
    )
    args = parser.parse_args()
    variants = dict(ABLATION) if args.ablation else {}
    for text in args.variant:
        name, fields = parse_variant(text)
        variants[name] = fields
    if not (args.corpus / "index.json").is_file():
        sys.exit(f"--corpus {args.corpus}: no index.json there: give the corpus folder")
    entries = read_index(args.corpus)
    known = {e.name: e for e in entries}
    if args.traces:
        wanted = [n.strip() for n in args.traces.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            sys.exit(
                f"--traces: not in the index: {', '.join(unknown)} (known: {', '.join(known)})"
            )
        entries = [known[n] for n in wanted]
    began = time.perf_counter()
    tasks = tasks_for(entries, variants)
    if not args.no_shared:
        tasks.insert(0, ("shared", "", None))  # one long task: start it first
    with ProcessPoolExecutor(WORKERS) as pool:
        results = dict(pool.map(_pool_run, [(t, known) for t in tasks]))
    report = collect(entries, results)
    for e in entries:
        report["traces"][e.name]["events"] = len(e.events)
    seconds = time.perf_counter() - began
    report["wall_seconds"] = seconds
    if args.json:
        print(json.dumps(_json_safe(report)))
    else:
        print_tables(report, seconds)


if __name__ == "__main__":
    main()
