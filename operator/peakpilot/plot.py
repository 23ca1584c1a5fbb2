"""`peakpilot simulate --plot`: demand against the capacity each controller had ready, as a PNG.

matplotlib is optional (`pip install 'peakpilot[plot]'`); `MissingPlotter` says how to get it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from peakplan.replay import Replay

MAX_POINTS = 6000  # per line; longer series are reduced per bucket (see _reduced)


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


def plot_replay(replay: Replay, capacity: Mapping[str, float], path: Path, title: str) -> None:
    """Per workload: demand (requests/s), ready capacity of PeakPilot and of the HPA, events."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingPlotter(str(exc)) from exc

    names = list(replay.controllers["peakpilot"].workloads)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(11, 3.2 * len(names)), sharex=True, squeeze=False
    )
    times = [replay.start + t for t in replay.times]
    for ax, name in zip(axes[:, 0], names, strict=True):
        ours = replay.controllers["peakpilot"].workloads[name]
        hpa = replay.controllers["hpa"].workloads[name]
        lines = (  # drawn in this order: the demand on top
            ("HPA ready capacity", [r * capacity[name] for r in hpa.ready], "tab:orange", 0.9),
            ("PeakPilot ready capacity", [r * capacity[name] for r in ours.ready], "tab:blue", 0.9),
            ("demand", list(ours.demand), "black", 0.8),
        )
        for label, ys, color, width in lines:
            xs, reduced = _reduced(times, ys, lowest=label != "demand")
            ax.plot(
                [datetime.fromtimestamp(x, UTC) for x in xs],
                reduced,
                label=label,
                color=color,
                linewidth=width,
                drawstyle="steps-post",
            )
        for i, (_, start, end) in enumerate(replay.events):
            ax.axvspan(
                datetime.fromtimestamp(replay.start + start, UTC),
                datetime.fromtimestamp(replay.start + end, UTC),
                color="gold",
                alpha=0.25,
                linewidth=0,
                label="calendar event" if i == 0 else None,
            )
        ax.set_ylabel(f"{name}: requests/s")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0, 0].set_title(title, fontsize=10)
    formatter = mdates.DateFormatter("%m-%d %H:%M", tz=UTC)  # type: ignore[no-untyped-call]
    axes[-1, 0].xaxis.set_major_formatter(formatter)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
