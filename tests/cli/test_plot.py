"""The replay plot: which day it zooms on, the cumulative replica-hours and the title it draws.

The pieces are pure functions of a real replay (the core's `replay` on synthetic traces); the
PNG itself is drawn by tests/cli/test_simulate_cli.py through the real command.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from peakpilot.plot import cumulative_replica_hours, plot_replay, title_lines, zoom_steps
from peakplan.policy import Policy, WorkloadPolicy
from peakplan.replay import ReplaySettings, Trace, oracle_replicas, replay

DAY = 86400.0
T0 = 10 * DAY  # midnight UTC
WEB = WorkloadPolicy("web", min_replicas=2, max_replicas=500, capacity=10.0, startup=60.0)


def daily_trace(days: int, peak_day: int) -> Trace:
    """Per minute, 60 rps by day and a 300 rps hour at 20:00 on `peak_day` only."""
    counts: list[float | None] = []
    for minute in range(days * 1440):
        day, hour = divmod(minute, 1440)
        counts.append(60 * (300.0 if day == peak_day and hour // 60 == 20 else 60.0))
    return Trace.from_counts(counts, 60.0, T0)


def test_a_long_window_zooms_on_the_utc_day_with_the_highest_demand() -> None:
    result = replay(Policy((WEB,)), {"web": daily_trace(4, 2)}, ReplaySettings(step=60.0))
    zoom = zoom_steps(result)
    assert result.start + zoom[0] * result.step == T0 + 2 * DAY
    assert len(zoom) == 1440


def test_a_short_window_is_shown_whole() -> None:
    trace = daily_trace(1, 0)
    result = replay(Policy((WEB,)), {"web": trace}, ReplaySettings(step=60.0))
    assert zoom_steps(result) == range(result.steps)


def test_cumulative_replica_hours_end_at_the_billed_and_oracle_totals() -> None:
    result = replay(Policy((WEB,)), {"web": daily_trace(2, 1)}, ReplaySettings(step=60.0))
    hours = cumulative_replica_hours(result, {"web": 10.0}, {"web": 2})
    for controller in ("peakpilot", "hpa"):
        billed = result.controllers[controller].total.billed_replica_seconds / 3600
        assert hours[controller][-1] == pytest.approx(billed)
        assert all(b >= a for a, b in zip(hours[controller], hours[controller][1:], strict=False))
    demand = result.controllers["peakpilot"].workloads["web"].demand
    oracle = sum(oracle_replicas(d, 10.0, 2) for d in demand) * 60 / 3600
    assert hours["oracle"][-1] == pytest.approx(oracle)
    assert hours["oracle"][-1] == pytest.approx(
        result.controllers["peakpilot"].total.oracle_replica_seconds / 3600
    )


def test_the_title_has_the_utc_window_and_both_headlines() -> None:
    result = replay(Policy((WEB,)), {"web": daily_trace(2, 1)}, ReplaySettings(step=60.0))
    first, second, third = title_lines(result, "shop").split("\n")
    assert first.startswith("shop: 1970-01-11 00:00 to 1970-01-13 00:00 UTC")
    ours, hpa = result.controllers["peakpilot"].total, result.controllers["hpa"].total
    ours_h, hpa_h = ours.billed_replica_seconds / 3600, hpa.billed_replica_seconds / 3600
    assert second.startswith(f"PeakPilot: {ours_h:,.0f} replica-h ({ours.cost_ratio:.2f}x the ")
    fewer = 100 * (1 - ours_h / hpa_h)
    assert f"{abs(fewer):.0f} % {'fewer' if fewer >= 0 else 'more'} than the HPA" in second
    assert third.startswith(f"HPA at 0.7: {hpa_h:,.0f} replica-h ({hpa.cost_ratio:.2f}x the ")
    assert f"{hpa.scale_changes:,} changes" in third
    assert not math.isnan(ours.cost_ratio)


def test_a_title_names_what_the_replay_shows_above_the_policy() -> None:
    day = 10 * 86400  # daily_trace starts on 1970-01-11
    settings = ReplaySettings(step=60.0, start=day + 17 * 3600, end=day + 22 * 3600)
    result = replay(Policy((WEB,)), {"web": daily_trace(1, 0)}, settings)
    lines = title_lines(result, "shop", "Singles' Day").split("\n")
    untitled = title_lines(result, "shop").split("\n")
    # Within one UTC day the window names the day once.
    head = "shop: 1970-01-11 17:00 to 22:00 UTC, decisions every 1m, load seen 30s late"
    assert untitled[0] == head
    assert lines[0] == "Singles' Day: 1970-01-11 17:00 to 22:00 UTC"
    assert lines[1] == "policy shop, decisions every 1m, load seen 30s late"
    assert lines[2:] == untitled[1:]


def test_the_png_is_written(tmp_path: Path) -> None:
    result = replay(Policy((WEB,)), {"web": daily_trace(3, 1)}, ReplaySettings(step=60.0))
    out = tmp_path / "replay.png"
    plot_replay(result, {"web": 10.0}, {"web": 2}, out, "shop")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
