"""A replay as people and programs read it: the comparison table and the DESIGN-5 JSON object."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from peakplan.replay import Replay, Score

LABELS = {"peakpilot": "PeakPilot", "hpa": "HPA"}
MAX_WIDTH = 100  # the comparison fits a 100-column terminal


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def replay_dict(replay: Replay, policy_name: str) -> dict[str, Any]:
    """DESIGN section 5's object (its keys exactly), plus the policy and the start as RFC 3339."""
    data = replay.to_dict()
    data["policy"] = policy_name
    data["start_time"] = iso(replay.start)
    data["end_time"] = iso(replay.start + replay.steps * replay.step)
    return data


def _ratio(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "∞"


def _row(table: Table, workload: str, controller: str, s: Score, best: dict[str, bool]) -> None:
    def mark(text: str, key: str) -> str:
        return f"[green]{text}[/]" if best.get(key) else text

    table.add_row(
        workload,
        LABELS.get(controller, controller),
        f"{s.billed_replica_seconds / 3600:,.1f}",
        f"{s.oracle_replica_seconds / 3600:,.1f}",
        mark(_ratio(s.cost_ratio), "cost"),
        mark(f"{s.unserved_pct:.4f}", "unserved"),
        mark(f"{s.overload_minutes:,}", "overload"),
        f"{s.scale_changes:,}",
    )


def _better(a: Score, b: Score) -> dict[str, bool]:
    """Which of PeakPilot's figures are at least as good as the HPA's."""
    return {
        "cost": a.cost_ratio <= b.cost_ratio,
        "unserved": a.unserved_pct <= b.unserved_pct,
        "overload": a.overload_minutes <= b.overload_minutes,
    }


def print_comparison(
    replay: Replay, policy_name: str, console: Console, plot: str | None = None
) -> None:
    """Per workload and in total, PeakPilot against the HPA; then how PeakPilot sized demand."""
    end = replay.start + replay.steps * replay.step
    width = min(console.width, MAX_WIDTH)
    console.print(
        f"[bold]PeakPilot vs HPA (target {replay.baseline_target:g}) on {escape(policy_name)}[/]: "
        f"{iso(replay.start)} to {iso(end)}, {replay.steps:,} steps of {replay.step:g}s",
        highlight=False,
        width=width,
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for col in (
        "workload",
        "controller",
        "replica-h",
        "oracle-h",
        "cost ratio",
        "unserved %",
        "overload min",
        "changes",
    ):
        table.add_column(col, justify="left" if col in ("workload", "controller") else "right")
    ours, hpa = replay.controllers["peakpilot"], replay.controllers["hpa"]
    for name, series in ours.workloads.items():
        best = _better(series.score, hpa.workloads[name].score)
        _row(table, escape(name), "peakpilot", series.score, best)
        _row(table, "", "hpa", hpa.workloads[name].score, {})
    if len(ours.workloads) > 1:
        table.add_section()
        _row(table, "total", "peakpilot", ours.total, _better(ours.total, hpa.total))
        _row(table, "", "hpa", hpa.total, {})
    console.print(table, width=width)
    for name, series in ours.workloads.items():
        methods = _shares(series.extra.get("forecast_methods", {}), replay.steps)
        by_event: dict[str, int] = {}
        for basis, n in series.extra.get("sized_by", {}).items():
            key = "the calendar" if basis.startswith("event ") else f"the {basis}"
            by_event[key] = by_event.get(key, 0) + n
        sized = _shares(by_event, replay.steps)
        surge = int(series.extra.get("surge_steps", 0))
        console.print(
            f"{escape(name)}: forecast method {methods or 'none (load unavailable)'}; "
            f"sized by {sized or '-'}; surge mode {100 * surge / replay.steps:.1f} % of steps",
            highlight=False,
            width=width,
        )
    if replay.events:
        names = ", ".join(escape(n) for n, _, _ in replay.events)
        console.print(f"calendar events in the window: {names}", highlight=False, width=width)
    console.print(
        f"[dim]both controllers see the load {replay.metrics_lag:g}s late; pods are billed from "
        "their request and serve after their startup; the oracle runs ceil(load / capacity) ready "
        "pods (at least minReplicas) in every step[/]",
        highlight=False,
        width=width,
    )
    if plot:
        console.print(f"plot: {escape(plot)}", highlight=False, soft_wrap=True)


def _shares(counts: dict[str, int], steps: int) -> str:
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {100 * v / max(1, steps):.1f} %" for k, v in ranked if v)
