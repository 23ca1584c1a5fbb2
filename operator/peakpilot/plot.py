"""`peakpilot simulate --plot`: the replay's story as one PNG.

Per workload, the busiest day zoomed: demand against the capacity each controller had ready, with
the calendar's windows. Below, over the whole window, the replica-hours both controllers and the
oracle have run so far, so the cost gap is read off the right edge. The title carries the window
(UTC) and the headline figures (replica-hours against the oracle and the HPA, unserved, changes).
Which day to zoom and what to draw are pure functions of the replay; matplotlib is optional
(`pip install 'peakpilot[plot]'`), `MissingPlotter` says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peakpilot.units import format_duration
from peakplan.replay import Replay, oracle_replicas

MAX_POINTS = 6000  # per line; longer series are reduced per bucket (see _reduced)
DAY = 86400.0
WHOLE_UP_TO = 1.5 * DAY  # a window this short is shown whole, not zoomed


class MissingPlotter(Exception):
    """matplotlib is not installed."""


def _reduced(
    xs: Sequence[float], ys: Sequence[float], lowest: bool
) -> tuple[list[float], list[float]]:
    """At most MAX_POINTS points, one per bucket at its first time: the bucket's maximum for the
    demand and its minimum for a capacity, so that a reduced plot never hides a shortfall."""
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    size = -(-len(xs) // MAX_POINTS)
    pick = min if lowest else max
    return (
        [xs[i] for i in range(0, len(xs), size)],
        [pick(ys[i : i + size]) for i in range(0, len(ys), size)],
    )


def zoom_steps(replay: Replay) -> range:
    """The steps to zoom on: the UTC day that holds the highest total demand (the whole window
    when it is short), so a match day or a promotion shows at the resolution of its minutes."""
    if replay.steps * replay.step <= WHOLE_UP_TO:
        return range(replay.steps)
    runs = replay.controllers["peakpilot"].workloads.values()
    totals = [sum(step) for step in zip(*(s.demand for s in runs), strict=True)]
    peak = max(range(replay.steps), key=totals.__getitem__)
    day_start = (replay.start + peak * replay.step) // DAY * DAY
    first = max(0, int(-(-(day_start - replay.start) // replay.step)))
    last = min(replay.steps, int(-(-(day_start + DAY - replay.start) // replay.step)))
    return range(first, last)


def cumulative_replica_hours(
    replay: Replay, capacity: Mapping[str, float], min_replicas: Mapping[str, int]
) -> dict[str, list[float]]:
    """Replica-hours run since the window's start, per step, summed over the workloads: billed
    by each controller, and what the oracle (DESIGN's ceil(demand / capacity) ready pods) needs."""
    hours = replay.step / 3600.0
    out: dict[str, list[float]] = {}
    for controller, run in replay.controllers.items():
        per_step = [
            sum(step) for step in zip(*(s.desired for s in run.workloads.values()), strict=True)
        ]
        out[controller] = [n * hours for n in itertools.accumulate(per_step)]
    oracle = [
        sum(
            oracle_replicas(s.demand[k], capacity[name], min_replicas.get(name, 0))
            for name, s in replay.controllers["peakpilot"].workloads.items()
        )
        for k in range(replay.steps)
    ]
    out["oracle"] = [n * hours for n in itertools.accumulate(oracle)]
    return out


def title_lines(replay: Replay, policy: str, title: str | None = None) -> str:
    """The policy's name (or `title`, what the replay shows, and the policy's name on a line of
    its own) with the window in UTC, the step and the lag, then each controller's headline
    figures (replica-hours, against the oracle and the other controller; unserved; changes). A
    window within one UTC day names the day once."""
    end = replay.start + replay.steps * replay.step
    first, last = datetime.fromtimestamp(replay.start, UTC), datetime.fromtimestamp(end, UTC)
    until = "%H:%M" if last.date() == first.date() else "%Y-%m-%d %H:%M"
    window = f"{first:%Y-%m-%d %H:%M} to {last.strftime(until)} UTC"
    cadence = f"decisions every {format_duration(replay.step)}, load seen "
    cadence += f"{format_duration(replay.metrics_lag)} late"
    head = (
        f"{title}: {window}\npolicy {policy}, {cadence}"
        if title
        else f"{policy}: {window}, {cadence}"
    )
    ours, hpa = replay.controllers["peakpilot"].total, replay.controllers["hpa"].total
    ours_h, hpa_h = ours.billed_replica_seconds / 3600, hpa.billed_replica_seconds / 3600
    versus = ""
    if hpa_h > 0:
        change = 100 * (1 - ours_h / hpa_h)
        versus = f", {abs(change):.0f} % {'fewer' if change >= 0 else 'more'} than the HPA"
    return (
        f"{head}\n"
        f"PeakPilot: {ours_h:,.0f} replica-h ({ours.cost_ratio:.2f}x the oracle{versus}), "
        f"{ours.unserved_pct:.2f} % unserved, {ours.scale_changes:,} changes\n"
        f"HPA at {replay.baseline_target:g}: {hpa_h:,.0f} replica-h ({hpa.cost_ratio:.2f}x the "
        f"oracle), {hpa.unserved_pct:.2f} % unserved, {hpa.scale_changes:,} changes"
    )


COLORS = {"peakpilot": "tab:blue", "hpa": "tab:orange", "oracle": "0.45", "demand": "black"}
LABELS = {"peakpilot": "PeakPilot", "hpa": "HPA", "oracle": "oracle"}


def plot_replay(
    replay: Replay,
    capacity: Mapping[str, float],
    min_replicas: Mapping[str, int],
    path: Path,
    policy: str,
    title: str | None = None,
) -> None:
    """Write the PNG: one zoomed panel per workload above the cumulative replica-hours; `title`
    names what the replay shows (default: the policy's name)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingPlotter(str(exc)) from exc

    def stamp(seconds: float) -> datetime:
        return datetime.fromtimestamp(replay.start + seconds, UTC)

    names = list(replay.controllers["peakpilot"].workloads)
    zoom = zoom_steps(replay)
    zoomed = len(zoom) < replay.steps
    heights = [2.6] * len(names) + [2.2]
    fig, axes = plt.subplots(
        len(names) + 1,
        1,
        figsize=(9.5, sum(heights) + 0.9),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    times = [replay.times[k] for k in zoom]
    for ax, name in zip(axes[:-1, 0], names, strict=True):
        series = {c: run.workloads[name] for c, run in replay.controllers.items()}
        lines = [  # drawn in this order: the demand on top
            (
                f"{LABELS[c]} ready capacity",
                [series[c].ready[k] * capacity[name] for k in zoom],
                COLORS[c],
            )
            for c in ("hpa", "peakpilot")
        ]
        lines.append(("demand", [series["peakpilot"].demand[k] for k in zoom], COLORS["demand"]))
        for label, ys, color in lines:
            xs, reduced = _reduced(times, ys, lowest=label != "demand")
            ax.plot([stamp(x) for x in xs], reduced, label=label, color=color,
                    linewidth=1.0, drawstyle="steps-post")  # fmt: skip
        _shade_events(ax, replay, stamp, times[0], times[-1] + replay.step)
        where = "the busiest day" if zoomed else "the whole window"
        ax.set_ylabel("requests/s")
        ax.set_title(f"{name}: {where}, {stamp(times[0]):%Y-%m-%d} UTC", fontsize=9, loc="left")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)

    ax = axes[-1, 0]
    every = [stamp(t) for t in replay.times]
    for controller, ys in cumulative_replica_hours(replay, capacity, min_replicas).items():
        xs, reduced = _reduced(range(len(ys)), ys, lowest=False)
        ax.plot([every[int(x)] for x in xs], reduced, color=COLORS[controller],
                label=f"{LABELS[controller]}: {ys[-1]:,.0f} replica-h" if ys else controller,
                linewidth=1.4, linestyle="--" if controller == "oracle" else "-")  # fmt: skip
    if zoomed:
        ax.axvspan(stamp(times[0]), stamp(times[-1] + replay.step), color="0.88", linewidth=0,
                   zorder=0, label="zoomed day")  # fmt: skip
    ax.set_ylabel("replica-hours so far")
    ax.set_title("the whole window: replica-hours billed, and the oracle's", fontsize=9, loc="left")
    # Dates over days; a window shown whole (at most 1.5 days) by the hour, as the panel above.
    ticks = "%m-%d" if zoomed else "%H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(ticks, tz=UTC))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)

    fig.suptitle(title_lines(replay, policy, title), fontsize=9.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _shade_events(
    ax: Any, replay: Replay, stamp: Callable[[float], datetime], first: float, last: float
) -> None:
    """The calendar's windows that overlap [first, last), labelled once with their names."""
    shown = [(n, s, e) for n, s, e in replay.events if s < last and e > first]
    label = "calendar: " + ", ".join(dict.fromkeys(n for n, _, _ in shown))
    for i, (_, start, end) in enumerate(shown):
        ax.axvspan(stamp(max(start, first)), stamp(min(end, last)), color="gold", alpha=0.3,
                   linewidth=0, zorder=0, label=label if i == 0 else None)  # fmt: skip
