"""The replay: causal, the same observations for both controllers, scored by DESIGN section 5.

Traces here are synthetic and short (minutes to a couple of hours of 1-minute counts), built in
memory: no files.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest

from peakplan.policy import (
    Behavior,
    CalendarEvent,
    ForecastSettings,
    Policy,
    ScalingRules,
    StepLimit,
    WorkloadPolicy,
)
from peakplan.replay import ReplaySettings, Trace, baseline, replay, score
from peakplan.replay.hpa import HpaConfig, replay_hpa

STEP = 15.0
T0 = 1_000_000_020.0  # a trace start on a whole minute
WEB = WorkloadPolicy("web", min_replicas=2, max_replicas=500, capacity=10.0, startup=60.0)
SUMMARY_KEYS = {
    "billed_replica_seconds",
    "oracle_replica_seconds",
    "cost_ratio",
    "unserved_pct",
    "overload_minutes",
    "scale_changes",
}


def noisy_trace(minutes: int, seed: int = 7, start: float = T0) -> Trace:
    """Counts per minute around 6,000 (100 rps) with bursts, some of them missing."""
    rng = random.Random(seed)
    counts: list[float | None] = []
    for k in range(minutes):
        burst = 3.0 if rng.random() < 0.05 else 1.0
        counts.append(None if k and rng.random() < 0.02 else 6000 * burst * rng.uniform(0.7, 1.3))
    return Trace.from_counts(counts, 60.0, start)


def test_a_decision_never_depends_on_the_trace_after_it() -> None:
    # Change every count from minute 50 on: no decision before minute 50 (+ the 30 s lag)
    # may change, for either controller, with the forecaster warmed from the first 30 minutes.
    base = noisy_trace(120)
    cut = 50
    changed = Trace(
        base.start,
        base.interval,
        base.counts[:cut] + tuple(c * 7 + 100 for c in base.counts[cut:]),
        base.missing,
    )
    settings = ReplaySettings(step=STEP, start=T0 + 30 * 60)  # 30 minutes of warm-up history
    policy = Policy((WEB,))
    a, b = replay(policy, {"web": base}, settings), replay(policy, {"web": changed}, settings)
    first_changed = int((T0 + cut * 60 + 30 - a.start) / STEP)  # seen from cut + lag on
    for controller in ("peakpilot", "hpa"):
        before_a = a.controllers[controller].workloads["web"].desired[:first_changed]
        before_b = b.controllers[controller].workloads["web"].desired[:first_changed]
        assert before_a == before_b, controller
        # ... and the change is seen right after, so the comparison is not vacuous.
        assert (
            a.controllers[controller].workloads["web"].desired
            != b.controllers[controller].workloads["web"].desired
        )


def test_both_controllers_see_the_same_lagged_observations_and_start_alike() -> None:
    # The replay applies the lag once, for both. Fed to the HPA model with its own 30 s lag
    # from the trace start, the same trace gives the same HPA decisions.
    trace = noisy_trace(40)
    result = replay(Policy((WEB,)), {"web": trace}, ReplaySettings(step=STEP, metrics_lag=30.0))
    initial = result.initial["web"]
    assert initial == max(2, math.ceil(trace.rate(T0) / (10.0 * 0.7) - 1e-9))
    config = HpaConfig(capacity=10.0, target_utilization=0.7, min_replicas=2, max_replicas=500)
    times = [T0 + k * STEP for k in range(result.steps)]
    expected = replay_hpa(config, initial, [(t, trace.observed(t)) for t in times])
    assert list(result.controllers["hpa"].workloads["web"].desired) == expected


def test_summaries_are_the_scorer_on_the_replayed_arrays() -> None:
    trace = noisy_trace(30)
    result = replay(Policy((WEB,)), {"web": trace}, ReplaySettings(step=STEP))
    for controller in ("peakpilot", "hpa"):
        series = result.controllers[controller].workloads["web"]
        again = score(
            STEP,
            series.demand,
            series.desired,
            startup=60.0,
            capacity=10.0,
            min_replicas=2,
            initial_replicas=result.initial["web"],
        )
        assert series.score.as_dict() == again.as_dict()
        assert series.ready == again.ready
        assert list(series.demand) == [trace.rate(T0 + k * STEP) for k in range(result.steps)]


def test_json_follows_design_section_5_exactly() -> None:
    other = replace(WEB, name="api", capacity=5.0)
    traces = {"web": noisy_trace(10), "api": noisy_trace(10, seed=8)}
    data = replay(Policy((WEB, other)), traces, ReplaySettings(step=STEP)).to_dict()
    assert data["step_seconds"] == 15
    assert set(data["controllers"]) == {"peakpilot", "hpa"}
    for controller in data["controllers"].values():
        assert set(controller) == {"workloads", "summary"}
        assert set(controller["summary"]) == SUMMARY_KEYS
        assert set(controller["workloads"]) == {"web", "api"}
        for workload in controller["workloads"].values():
            assert {"t", "demand_rps", "desired", "ready", "summary"} <= set(workload)
            assert set(workload["summary"]) == SUMMARY_KEYS
            assert workload["t"] == [15 * k for k in range(40)]
            assert len(workload["demand_rps"]) == len(workload["desired"]) == 40
            assert len(workload["ready"]) == 40
            assert all(isinstance(n, int) for n in workload["desired"] + workload["ready"])
        totals = controller["summary"]
        parts = [w["summary"] for w in controller["workloads"].values()]
        assert totals["billed_replica_seconds"] == sum(p["billed_replica_seconds"] for p in parts)
        assert totals["scale_changes"] == sum(p["scale_changes"] for p in parts)


def test_calendar_pods_are_ready_at_event_start_and_ramp_down_after_it() -> None:
    # A flat 100 rps (needs 13 at the 80 % target). The event asks for 60 replicas from
    # minute 30 to minute 45 with 5 minutes lead; scale-down is at most 5 pods per 15 s.
    start, end = T0 + 30 * 60, T0 + 45 * 60
    sale = CalendarEvent("sale", start=start, end=end, lead=300.0, min_replicas={"web": 60})
    down = ScalingRules(0.0, "Max", (StepLimit("Pods", 5, 15.0),))
    policy = Policy((WEB,), events=(sale,), behavior=Behavior(down=down, tolerance=0.0))
    trace = Trace.from_counts([6000.0] * 60, 60.0, T0)
    result = replay(policy, {"web": trace}, ReplaySettings(step=STEP))
    series = result.controllers["peakpilot"].workloads["web"]
    at = {T0 + k * STEP: k for k in range(result.steps)}
    assert series.ready[at[start]] >= 60  # ready when the event starts
    assert series.ready[at[start - 300]] >= 60  # ... and already by the lead time
    assert series.desired[at[start - 300 - 60 - STEP]] == 13  # not asked for before that
    assert all(n >= 60 for n in series.ready[at[start] : at[end]])
    after = list(series.desired[at[end] :])
    assert after[0] == 55 and after[-1] == 13  # down 5 per step from the end ...
    assert all(a - b <= 5 for a, b in itertools.pairwise(after))  # ... never faster
    assert result.events == (("sale", start - T0, end - T0),)
    # The HPA knows no calendar: it never goes near 60.
    assert max(result.controllers["hpa"].workloads["web"].desired) < 60


def test_the_forecaster_is_warmed_with_the_history_before_the_window() -> None:
    trace = noisy_trace(120)
    settings = ReplaySettings(step=STEP, start=T0 + 60 * 60, end=T0 + 70 * 60)
    warm = replay(Policy((WEB,)), {"web": trace}, settings)
    cold = replay(Policy((WEB,)), {"web": trace}, replace(settings, warm=False))
    assert warm.steps == cold.steps == 40
    # Warm, the first decisions already carry the hour's volatility in their band.
    first_warm = warm.controllers["peakpilot"].workloads["web"].desired[:4]
    first_cold = cold.controllers["peakpilot"].workloads["web"].desired[:4]
    assert sum(first_warm) > sum(first_cold)
    assert warm.controllers["hpa"] == cold.controllers["hpa"]  # the HPA has no history to use


def test_forecast_method_reactive_with_zero_lag_tracks_the_load() -> None:
    # Without the idle hold, which would keep the 15 the replay starts with for ten minutes. The
    # 15 are the first recommendation (first sight), so the default 600 s scale-down window keeps
    # them for 40 steps; the trace is 20 minutes (80 steps), so 40 follow the load.
    policy = Policy(
        (WEB,), behavior=Behavior(change_cost=0.0), forecast=ForecastSettings(method="reactive")
    )
    trace = Trace.from_counts([6000.0] * 20, 60.0, T0)
    result = replay(policy, {"web": trace}, ReplaySettings(step=STEP, metrics_lag=0.0))
    desired = result.controllers["peakpilot"].workloads["web"].desired
    window = int(600 / STEP)
    assert len(desired) == 2 * window
    assert result.initial["web"] == 15
    assert set(desired[:window]) == {15} and set(desired[window:]) == {13}


def test_progress_is_reported_up_to_the_last_step() -> None:
    calls: list[tuple[int, int]] = []
    replay(
        Policy((WEB,)),
        {"web": noisy_trace(10)},
        ReplaySettings(step=STEP),
        lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (40, 40)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (T0 - 60, None, "not inside the trace of web"),
        (None, T0 + 11 * 60, "not inside the trace of web"),
        (T0 + 300, T0 + 300, "not inside the trace of web"),
    ],
)
def test_a_window_outside_the_trace_is_an_error(
    start: float | None, end: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        replay(
            Policy((WEB,)),
            {"web": noisy_trace(10)},
            ReplaySettings(step=STEP, start=start, end=end),
        )


def test_every_workload_needs_a_trace() -> None:
    with pytest.raises(ValueError, match="no trace for workload"):
        replay(Policy((WEB,)), {}, ReplaySettings(step=STEP))


def test_the_baseline_alone_is_the_replays_hpa_and_other_targets_start_alike() -> None:
    trace = noisy_trace(20)
    settings = ReplaySettings(step=STEP)
    full = replay(Policy((WEB,)), {"web": trace}, settings)
    assert baseline(Policy((WEB,)), {"web": trace}, settings) == full.controllers["hpa"]
    wider = baseline(Policy((WEB,)), {"web": trace}, settings, target=0.5)
    assert wider.workloads["web"].desired[0] >= full.controllers["hpa"].workloads["web"].desired[0]
    assert wider.total.billed_replica_seconds > full.controllers["hpa"].total.billed_replica_seconds
