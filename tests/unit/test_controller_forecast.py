"""Sizing demand in `decide`: the forecaster and its gate, the short-term band, forecast.method.

Histories are fed with `warm` (as an operator would from a Prometheus range query) every 15 s;
the workload starts in 60 s and the policy reconciles every 15 s, so the lead time is 75 s.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakplan.controller import (
    Decision,
    Memory,
    Observation,
    WorkloadInput,
    WorkloadObservation,
    decide,
    lead_time,
    warm,
)
from peakplan.policy import CalendarEvent, ForecastSettings, Policy, WorkloadPolicy

STEP = 15.0
HOURS = 4 * 3600.0
WEB = WorkloadPolicy("web", min_replicas=1, max_replicas=1000, capacity=10.0, startup=60.0)


def _after(
    policy: Policy, load: Callable[[float], float], until: float = HOURS, current: int = 10
) -> Decision:
    """Warm with `load` every 15 s up to `until`, then decide at `until`."""
    memory = Memory()
    warm(policy, memory, "web", [(k * STEP, load(k * STEP)) for k in range(int(until / STEP))])
    seen = {"web": WorkloadObservation(current, load(until))}
    return decide(policy, Observation(until, seen), memory)


def _noise(seed: int = 1) -> Callable[[float], float]:
    rng = random.Random(seed)
    return lambda t: 100.0 + rng.gauss(0.0, 10.0)


def _input(decision: Decision) -> WorkloadInput:
    return decision.input("web")


def test_lead_time_is_startup_plus_one_interval_capped_by_the_horizon() -> None:
    assert lead_time(Policy((WEB,), interval=15.0), WEB) == 75.0
    capped = Policy((WEB,), forecast=ForecastSettings(horizon=30.0))
    assert lead_time(capped, WEB) == 30.0


def test_a_forecaster_that_scores_badly_is_not_used() -> None:
    # On white noise no model beats the last value or the recent level: the gate stays shut.
    given_ = _input(_after(Policy((WEB,)), _noise()))
    assert given_.forecast is not None
    assert given_.forecast.method == "reactive"
    assert "no model cuts the error" in given_.forecast.reason
    assert given_.forecast.horizon == 75.0
    assert set(given_.forecast.scores) >= {"trend", "reactive"}


def test_a_forecaster_that_scores_well_is_used() -> None:
    # A steady ramp: the trend model beats the last value by far, so it sizes the demand.
    def ramp(t: float) -> float:
        return 100.0 + 0.05 * t

    # 120 replicas carry the ~825 rps: no scale-up, so the band is not projected (see below).
    given_ = _input(_after(Policy((WEB,)), ramp, current=120))
    assert given_.forecast is not None
    assert given_.forecast.method == "trend"
    assert given_.forecast.basis == "forecast"
    assert given_.demand > ramp(HOURS)  # sized for where the ramp will be, not where it is


def test_forecast_method_trend_uses_trend_whatever_its_score() -> None:
    policy = Policy((WEB,), forecast=ForecastSettings(method="trend"))
    given_ = _input(_after(policy, _noise()))
    assert given_.forecast is not None
    assert given_.forecast.method == "trend"
    assert "forecast.method trend" in given_.forecast.reason


def test_forecast_method_seasonal_without_a_day_of_history_falls_back_to_reactive() -> None:
    policy = Policy((WEB,), forecast=ForecastSettings(method="seasonal"))
    given_ = _input(_after(policy, _noise()))
    assert given_.forecast is not None
    assert given_.forecast.method == "reactive"
    assert "forecast.method seasonal, but" in given_.forecast.reason
    assert "needs a full cycle of history" in given_.forecast.reason


def test_forecast_method_reactive_sizes_for_the_load_itself() -> None:
    policy = Policy((WEB,), forecast=ForecastSettings(method="reactive"))
    decision = _after(policy, _noise())
    given_ = _input(decision)
    assert given_.load is not None
    assert given_.demand == given_.load
    assert given_.forecast is not None and given_.forecast.basis == "load"


def test_without_history_the_demand_is_the_load() -> None:
    seen = {"web": WorkloadObservation(4, 123.0)}
    given_ = _input(decide(Policy((WEB,)), Observation(0.0, seen), Memory()))
    assert given_.demand == 123.0
    assert given_.forecast is not None and given_.forecast.method == "reactive"


def test_no_forecast_is_reported_when_the_load_is_missing() -> None:
    seen = {"web": WorkloadObservation(4, None, "timeout")}
    given_ = _input(decide(Policy((WEB,)), Observation(0.0, seen), Memory()))
    assert given_.forecast is None


@settings(max_examples=30, deadline=None)
@given(
    loads=st.lists(st.floats(0, 1000), min_size=1, max_size=60),
    last=st.floats(0, 1000),
    quantile=st.sampled_from([0.6, 0.9, 0.99]),
)
def test_the_demand_is_never_below_the_load_the_forecast_or_the_band(
    loads: list[float], last: float, quantile: float
) -> None:
    policy = Policy((WEB,), forecast=ForecastSettings(quantile=quantile))
    memory = Memory()
    warm(policy, memory, "web", [(k * STEP, v) for k, v in enumerate(loads)])
    at = len(loads) * STEP
    given_ = _input(decide(policy, Observation(at, {"web": WorkloadObservation(3, last)}), memory))
    assert given_.forecast is not None
    assert given_.demand >= last
    assert given_.demand == pytest.approx(max(given_.forecast.value, given_.forecast.band))


def test_the_band_carries_recent_volatility_above_a_quiet_last_value() -> None:
    # Noise around 100 and then one low sample: the demand stays near the noise's upper band.
    def load(t: float) -> float:
        return 20.0 if t >= HOURS else noise(t)

    noise = _noise(seed=3)
    given_ = _input(_after(Policy((WEB,)), load))
    assert given_.forecast is not None
    assert given_.load == 20.0
    assert given_.forecast.basis == "band"
    assert given_.demand > 100.0


def test_each_event_multiplies_its_own_baseline() -> None:
    # "early" (x3) starts at 600 s when the load is 10; "late" (x1.5) at 1200 s when it is 100.
    # From 1200 s both apply: 3 x 10 = 30 < 1.5 x 100 = 150, so "late" sets the demand.
    early = CalendarEvent("early", start=600.0, end=3600.0, lead=0.0, multiplier=3.0)
    late = CalendarEvent("late", start=1200.0, end=3600.0, lead=0.0, multiplier=1.5)
    policy = Policy(
        (WorkloadPolicy("web", 1, 1000, 10.0, startup=0.0),),
        events=(early, late),
        forecast=ForecastSettings(method="reactive"),
        interval=STEP,
    )
    memory = Memory()
    demands: dict[float, WorkloadInput] = {}
    for k in range(100):
        t = k * STEP
        load = 10.0 if t < 900 else 100.0
        seen = {"web": WorkloadObservation(10, load)}
        demands[t] = decide(policy, Observation(t, seen), memory).input("web")
    assert demands[600.0].demand == pytest.approx(30.0)  # 3 x the 10 seen before 600 s
    assert demands[900.0].demand == pytest.approx(100.0)  # the load is above 30 now
    assert demands[1200.0].demand == pytest.approx(150.0)  # 1.5 x the 100 seen before 1200 s
    assert demands[1200.0].forecast is not None
    assert demands[1200.0].forecast.basis == "event late"


def test_a_reconcile_dated_before_the_last_one_is_planned_without_failing() -> None:
    memory = Memory()
    policy = Policy((WEB,))
    decide(policy, Observation(100.0, {"web": WorkloadObservation(4, 80.0)}), memory)
    earlier = decide(policy, Observation(50.0, {"web": WorkloadObservation(4, 200.0)}), memory)
    assert earlier.input("web").demand >= 200.0  # still sized for the load it was given
    assert memory.of("web").short.time == 100.0  # the models were not fed out of order
