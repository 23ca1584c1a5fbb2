"""The short-term model (level, volatility band) and the surge path, alone and in `decide`."""

from __future__ import annotations

import math

import pytest

from peakplan import surge
from peakplan.controller import Memory, Observation, WorkloadMemory, WorkloadObservation, decide
from peakplan.policy import (
    Behavior,
    ForecastSettings,
    Policy,
    ScalingRules,
    StepLimit,
    SurgeSettings,
    WorkloadPolicy,
)
from peakplan.problem import Budget

SETTINGS = SurgeSettings(threshold=1.0, sigmas=4.0, min_jump=0.1, calm=180.0)
STEP = 15.0


def test_no_band_and_no_jump_before_any_observation() -> None:
    state = surge.ShortTerm()
    assert surge.band(state, 1.28) == 0.0
    assert not surge.jump(state, SETTINGS, 1000.0)


def test_band_is_level_plus_z_sigmas() -> None:
    state = surge.ShortTerm()
    surge.observe(state, SETTINGS, 0.0, 100.0)  # the first value sets the level, no deviation
    assert surge.band(state, 1.28) == 100.0
    surge.observe(state, SETTINGS, 15.0, 140.0)
    # deviation = w_dev x |140 - 100|; level = 100 + w_level x 40 (EWMA weights over 15 s)
    w_dev = -math.expm1(-15 / SETTINGS.deviation_tau)
    w_level = -math.expm1(-15 / SETTINGS.level_tau)
    level, deviation = 100 + w_level * 40, w_dev * 40
    assert (state.level, state.deviation, state.weight) == pytest.approx((level, deviation, w_dev))
    # Read with the weight gathered (bias correction): one sample 40 off says 40, not w_dev x 40.
    sigma = math.sqrt(math.pi / 2) * deviation / w_dev
    assert sigma == pytest.approx(math.sqrt(math.pi / 2) * 40)
    assert surge.band(state, 2.0) == pytest.approx(level + 2.0 * sigma)


def _headroom_after_a_burst(settings: SurgeSettings, calm_minutes: float) -> tuple[float, float]:
    """The band's headroom over its level (z = 1.28): the most a 5-minute burst (100 -> 200
    after an hour at 100) gave it, and what is left `calm_minutes` after the load is back."""
    state = surge.ShortTerm()
    t, most = 0.0, 0.0
    for load, seconds in ((100.0, 3600.0), (200.0, 300.0), (100.0, calm_minutes * 60)):
        end = t + seconds
        while t < end:
            surge.observe(state, settings, t, load)
            most = max(most, surge.band(state, 1.28) - state.level)
            t += STEP
    return most, surge.band(state, 1.28) - state.level


def test_a_bursts_volatility_is_read_steadily() -> None:
    # The default volatility memory (30 minutes) reads a burst as less volatility at its peak
    # than a 15-minute memory did (fewer scale changes chasing the band), keeps it while the
    # next burst is still likely (bursts cluster), and lets it go within hours.
    most, after_40 = _headroom_after_a_burst(SurgeSettings(), 40)
    short_most, short_after_40 = _headroom_after_a_burst(SurgeSettings(deviation_tau=900.0), 40)
    assert 10.0 < most < 0.8 * short_most
    assert after_40 > 0.25 * most > 1.5 * short_after_40
    _, hours_later = _headroom_after_a_burst(SurgeSettings(), 180)
    assert hours_later < 0.01 * most


def test_the_deviation_is_bias_corrected_only_while_it_is_young() -> None:
    # An EWMA started at zero reads low for its first time constant; divided by the weight it
    # has gathered (1 - exp(-seen / tau)), it is the mean of what it has seen so far.
    state = surge.ShortTerm()
    surge.observe(state, SETTINGS, 0.0, 32.0)
    surge.observe(state, SETTINGS, 15.0, 52.0)  # a cold start's first jump
    assert state.sigma == pytest.approx(math.sqrt(math.pi / 2) * 20.0)
    t, value = 15.0, 52.0
    while t < 15.0 + 10 * SETTINGS.deviation_tau:  # calm for ten time constants
        t += STEP
        surge.observe(state, SETTINGS, t, value)
    assert state.weight == pytest.approx(1.0 - math.exp(-t / SETTINGS.deviation_tau))
    assert state.weight > 0.9999  # the correction has faded: sigma is the plain EWMA's
    assert state.sigma == pytest.approx(math.sqrt(math.pi / 2) * state.deviation, rel=1e-4)
    assert state.sigma < 0.01


def test_a_jump_must_beat_k_sigmas_and_the_minimum_share_of_the_level() -> None:
    # A warmed model (weight 1: no bias correction left).
    state = surge.ShortTerm(level=100.0, deviation=2.0, weight=1.0, last=100.0, time=0.0)
    sigma = math.sqrt(math.pi / 2) * 2.0  # 2.51: 4 sigmas are 10.03, the 10 % minimum 10
    assert not surge.jump(state, SETTINGS, 100.0 + 4 * sigma - 0.01)
    assert surge.jump(state, SETTINGS, 100.0 + 4 * sigma + 0.01)
    calm = surge.ShortTerm(level=100.0, deviation=0.0, weight=1.0, last=100.0, time=0.0)
    assert not surge.jump(calm, SETTINGS, 109.9)  # no volatility: the 10 % minimum decides
    assert surge.jump(calm, SETTINGS, 110.1)


def test_surge_enters_beyond_ready_capacity_and_leaves_after_the_calm_window() -> None:
    state = surge.ShortTerm()
    surge.step(state, SETTINGS, 0.0, 100.0, ready_capacity=200.0)
    assert not state.in_surge
    surge.step(state, SETTINGS, 15.0, 100.0, ready_capacity=90.0)  # 100 > 90 x 1.0
    assert state.in_surge and state.surge_since == 15.0
    assert "ready capacity 90.0 rps" in state.surge_reason
    surge.step(state, SETTINGS, 30.0, 100.0, ready_capacity=90.0)  # still beyond: not calm
    assert state.calm_since is None
    for t in (45.0, 60.0, 210.0):  # calm from 45 s; 210 - 45 = 165 < 180
        surge.step(state, SETTINGS, t, 100.0, ready_capacity=150.0)
        assert state.in_surge
    surge.step(state, SETTINGS, 225.0, 100.0, ready_capacity=150.0)  # 225 - 45 = 180: calm
    assert not state.in_surge and state.surge_reason == ""


def test_a_new_sign_during_the_calm_window_restarts_it() -> None:
    state = surge.ShortTerm()
    surge.step(state, SETTINGS, 0.0, 100.0, ready_capacity=50.0)
    surge.step(state, SETTINGS, 15.0, 40.0, ready_capacity=50.0)  # calm since 15
    surge.step(state, SETTINGS, 120.0, 60.0, ready_capacity=50.0)  # beyond again
    surge.step(state, SETTINGS, 135.0, 40.0, ready_capacity=50.0)  # calm since 135
    surge.step(state, SETTINGS, 300.0, 40.0, ready_capacity=50.0)  # 300 - 135 = 165
    assert state.in_surge
    surge.step(state, SETTINGS, 315.0, 40.0, ready_capacity=50.0)  # 180: out
    assert not state.in_surge


def test_surge_enters_on_a_jump_of_k_sigmas() -> None:
    state = surge.ShortTerm()
    for k in range(40):  # a steady 100 rps with +-1 noise
        surge.step(state, SETTINGS, k * STEP, 100.0 + (-1) ** k, ready_capacity=1000.0)
    assert not state.in_surge
    surge.step(state, SETTINGS, 40 * STEP, 150.0, ready_capacity=1000.0)  # far within capacity
    assert state.in_surge
    assert "jumped to 150.0 rps" in state.surge_reason


# -- the surge path in decide(): 10 rps per replica at the 80 % default target = 8 rps each ----

WEB = WorkloadPolicy("web", min_replicas=1, max_replicas=100, capacity=10, price=0.1)
REACTIVE = ForecastSettings(method="reactive")  # size for the load itself: easy arithmetic
QUICK_DOWN = ScalingRules(0.0, "Max", (StepLimit("Percent", 100, 15.0),))  # no down window
SLOW_UP = ScalingRules(60.0, "Min", (StepLimit("Percent", 1000, 15.0),))  # a 60 s up window


def _decide(policy: Policy, memory: Memory, t: float, current: int, load: float, ready: int) -> int:
    seen = {"web": WorkloadObservation(current, load, ready=ready)}
    decision = decide(policy, Observation(t, seen), memory)
    for change in decision.changes:  # applied, as the operator does
        memory.applied(change)
    return decision.plan.desired["web"]


def test_no_scale_down_during_a_surge_and_the_normal_behaviour_after_it() -> None:
    # No idle hold either (change_cost 0): what keeps the replicas here is the surge alone.
    policy = Policy((WEB,), behavior=Behavior(down=QUICK_DOWN, change_cost=0.0), forecast=REACTIVE)
    memory = Memory()
    assert _decide(policy, memory, 0.0, 5, 40.0, ready=5) == 5  # 40 rps needs 5; 40 <= 50
    assert _decide(policy, memory, 15.0, 5, 80.0, ready=5) == 10  # 80 > 50 ready: a surge
    assert memory.of("web").short.in_surge
    # The load falls back at once; outside a surge it would go back to 5 (no down window).
    for t in range(30, 210, 15):  # calm since 30 s: 30 + 180 = 210
        assert _decide(policy, memory, float(t), 10, 40.0, ready=10) == 10
    assert _decide(policy, memory, 210.0, 10, 40.0, ready=10) == 5
    assert not memory.of("web").short.in_surge


def test_the_surge_is_not_stabilised_upward() -> None:
    policy = Policy((WEB,), behavior=Behavior(up=SLOW_UP, down=QUICK_DOWN), forecast=REACTIVE)
    calm, surging = Memory(), Memory()
    # Both saw 40 rps (5 replicas) for a minute: the 60 s up window holds a rise at 5 ...
    for t in range(0, 60, 15):
        _decide(policy, calm, float(t), 5, 40.0, ready=5)
        _decide(policy, surging, float(t), 5, 40.0, ready=5)
    # ... unless it is a surge. 43 rps needs 6 but is no surge: within the 50 rps of 5 ready
    # pods, and a rise of 7.5 % (less than the 10 % minimum jump); 80 rps is beyond capacity.
    assert _decide(policy, calm, 60.0, 5, 43.0, ready=5) == 5
    assert not calm.of("web").short.in_surge
    assert _decide(policy, surging, 60.0, 5, 80.0, ready=5) == 10


def test_ready_replicas_not_current_decide_whether_load_is_beyond_capacity() -> None:
    policy = Policy((WEB,), forecast=REACTIVE)
    memory = Memory()
    # 10 replicas asked for, 2 ready: 40 rps is beyond the 20 rps the ready pods serve.
    seen = {"web": WorkloadObservation(10, 40.0, ready=2)}
    decision = decide(policy, Observation(0.0, seen), memory)
    assert decision.input("web").surge is not None
    assert "ready capacity 20.0 rps" in (decision.input("web").surge or "")
    assert decision.plan.desired["web"] == 10  # no scale-down to the 5 that 40 rps needs


def test_a_full_budget_still_moves_replicas_to_priority_when_everything_surges() -> None:
    # Both at 6 replicas (12/h, the whole budget) and both beyond their 60 rps of ready pods:
    # both surge. Keeping every current count would freeze the budget; instead the shop
    # (priority 10) takes replicas from the batch (priority 1), and the budget holds.
    shop = WorkloadPolicy("shop", 1, 50, capacity=10, priority=10, price=1.0)
    batch = WorkloadPolicy("batch", 1, 50, capacity=10, priority=1, price=1.0)
    policy = Policy((shop, batch), budget=Budget(max_cost_per_hour=12), forecast=REACTIVE)
    seen = {
        "shop": WorkloadObservation(6, 100.0, ready=6),
        "batch": WorkloadObservation(6, 70.0, ready=6),
    }
    memory = Memory({n: WorkloadMemory(last_current=6) for n in ("shop", "batch")})  # seen before
    decision = decide(policy, Observation(0.0, seen), memory)
    assert decision.input("shop").surge is not None and decision.input("batch").surge is not None
    desired = decision.plan.desired
    assert desired["shop"] > 6 > desired["batch"]
    assert desired["shop"] + desired["batch"] <= 12
