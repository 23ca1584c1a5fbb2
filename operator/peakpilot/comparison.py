"""A replay as people and programs read it: the comparison table and the DESIGN-5 JSON object."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.text import Text

from peakpilot.wrapping import joined, wrap
from peakplan.replay import Replay, Score

LABELS = {"peakpilot": "PeakPilot", "hpa": "HPA"}


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


# The table's rows: one figure of a replay's score each, for PeakPilot and the HPA side by side.
METRICS = (
    "replica-hours",
    "oracle replica-hours",
    "cost ratio",
    "unserved %",
    "overload minutes",
    "scale changes",
)
_BETTER = {"cost ratio": "cost", "unserved %": "unserved", "overload minutes": "overload"}


def _figures(s: Score) -> list[str]:
    return [
        f"{s.billed_replica_seconds / 3600:,.1f}",
        f"{s.oracle_replica_seconds / 3600:,.1f}",
        _ratio(s.cost_ratio),
        f"{s.unserved_pct:.4f}",
        f"{s.overload_minutes:,}",
        f"{s.scale_changes:,}",
    ]


def _better(a: Score, b: Score) -> dict[str, bool]:
    """Which of PeakPilot's figures are at least as good as the HPA's."""
    return {
        "cost": a.cost_ratio <= b.cost_ratio,
        "unserved": a.unserved_pct <= b.unserved_pct,
        "overload": a.overload_minutes <= b.overload_minutes,
    }


def _table(blocks: list[tuple[str, Score, Score]]) -> list[Text]:
    """Metrics as rows, PeakPilot and the HPA as columns: one block per workload (its name, then
    its figures indented), so a line's width depends on neither the terminal nor the names.
    PeakPilot's figures at least as good as the HPA's are green."""
    columns = [LABELS["peakpilot"], LABELS["hpa"]]
    figures = [(name, ours, hpa, _figures(ours), _figures(hpa)) for name, ours, hpa in blocks]
    label = 2 + max(len(m) for m in METRICS)
    widths = [
        max(len(LABELS["peakpilot"]), *(len(x) for f in figures for x in f[3])),
        max(len(LABELS["hpa"]), *(len(x) for f in figures for x in f[4])),
    ]
    lines = [
        Text(
            " " * label + "".join("  " + c.rjust(w) for c, w in zip(columns, widths, strict=True)),
            style="bold",
        )
    ]
    for name, ours, hpa, mine, theirs in figures:
        lines += wrap(Text(name, style="bold"))
        best = _better(ours, hpa)
        for metric, a, b in zip(METRICS, mine, theirs, strict=True):
            row = Text(f"  {metric}".ljust(label) + "  " + a.rjust(widths[0]))
            if best.get(_BETTER.get(metric, "")):
                row.stylize("green", len(row) - len(a))
            row.append("  " + b.rjust(widths[1]))
            lines.append(row)
    return lines


def print_comparison(
    replay: Replay, policy_name: str, console: Console, plot: str | None = None
) -> None:
    """Per workload and in total, PeakPilot against the HPA; then how PeakPilot sized demand.

    Every line is wrapped here to WIDTH (80) columns and printed as is: the same bytes in any
    terminal and piped."""
    end = replay.start + replay.steps * replay.step
    lines = wrap(
        Text(f"PeakPilot vs HPA (target {replay.baseline_target:g}) on {policy_name}", "bold")
    )
    lines += wrap(f"{iso(replay.start)} to {iso(end)}, {replay.steps:,} steps of {replay.step:g}s")
    ours, hpa = replay.controllers["peakpilot"], replay.controllers["hpa"]
    blocks = [(name, s.score, hpa.workloads[name].score) for name, s in ours.workloads.items()]
    if len(blocks) > 1:
        blocks.append(("total", ours.total, hpa.total))
    lines += _table(blocks)
    for name, series in ours.workloads.items():
        methods = _shares(series.extra.get("forecast_methods", {}), replay.steps)
        by_event: dict[str, int] = {}
        for basis, n in series.extra.get("sized_by", {}).items():
            key = "the calendar" if basis.startswith("event ") else f"the {basis}"
            by_event[key] = by_event.get(key, 0) + n
        sized = _shares(by_event, replay.steps)
        surge = int(series.extra.get("surge_steps", 0))
        lines += wrap(
            f"{name}: forecast method {methods or 'none (load unavailable)'}; "
            f"sized by {sized or '-'}; surge mode {100 * surge / replay.steps:.1f} % of steps"
        )
    if replay.events:
        lines += wrap(f"calendar events in the window: {', '.join(n for n, _, _ in replay.events)}")
    lines += wrap(
        Text(
            f"both controllers see the load {replay.metrics_lag:g}s late; pods are billed from "
            "their request and serve after their startup; the oracle runs ceil(load / capacity) "
            "ready pods (at least minReplicas) in every step",
            style="dim",
        )
    )
    if plot:
        lines.append(Text(f"plot: {plot}"))
    console.print(joined(lines), soft_wrap=True)


def _shares(counts: dict[str, int], steps: int) -> str:
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {100 * v / max(1, steps):.1f} %" for k, v in ranked if v)
