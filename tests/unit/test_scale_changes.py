"""Fewer scale changes, never less capacity: the idle hold and the settling band in `decide`.

The idle hold keeps replicas the load no longer needs until their idle time adds up to
`behavior.change_cost` replica-seconds (default 600: one idle replica for ten minutes, forty for
one 15 s interval). A scale-up sizes for where the short-term band settles if the load holds.
Workloads serve 10 rps per replica at an 80 % target, i.e. 8 rps per replica: needed =
ceil(load / 8). Reconciles every 15 s apply each plan.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from peakplan import surge
from peakplan.controller import Decision, Memory, Observation, WorkloadObservation, decide, warm
from peakplan.policy import (
    DEFAULT_CHANGE_COST,
    DEFAULT_SCALE_DOWN,
    HPA_SCALE_UP,
    Behavior,
    CalendarEvent,
    ForecastSettings,
    Policy,
    ScalingRules,
    StepLimit,
    SurgeSettings,
    WorkloadPolicy,
)
from peakplan.problem import Budget

STEP = 15.0
WEB = WorkloadPolicy("web", min_replicas=2, max_replicas=100, capacity=10, price=0.1)
REACTIVE = ForecastSettings(method="reactive")  # size for the load itself: easy arithmetic
# No scale-down window, so what holds replicas below is the idle hold alone.
QUICK_DOWN = ScalingRules(0.0, "Max", (StepLimit("Percent", 100, 15.0),))
# No tolerance either: these tests look at the idle hold alone (the tolerance has its own below).
HOLD = Behavior(down=QUICK_DOWN, tolerance=0.0)  # the default change cost, 600 replica-seconds
NO_HOLD = Behavior(down=QUICK_DOWN, change_cost=0.0, tolerance=0.0)


def drive(
    policy: Policy,
    load: Callable[[float], float],
    until: float,
    current: int,
    start: float = 0.0,
    memory: Memory | None = None,
) -> dict[float, Decision]:
    """Reconcile every 15 s from `start` up to `until`, applying each plan."""
    memory = memory or Memory()
    decisions: dict[float, Decision] = {}
    t = start
    while t <= until:
        seen = {"web": WorkloadObservation(current, load(t))}
        decisions[t] = decide(policy, Observation(t, seen), memory)
        for change in decisions[t].changes:
            memory.applied(change)
        current = decisions[t].plan.desired["web"]
        t += STEP
    return decisions


def changes(decisions: dict[float, Decision]) -> int:
    return sum(
        d.plan.decision("web").desired != d.plan.decision("web").current for d in decisions.values()
    )


def test_the_default_change_cost_is_ten_replica_minutes() -> None:
    assert DEFAULT_CHANGE_COST == 600.0
    assert Behavior().change_cost == DEFAULT_CHANGE_COST


def test_a_noisy_flat_load_keeps_the_count_steady() -> None:
    # 200 rps +- 8 % of noise for two hours, sized by the band (forecast method auto).
    rng = random.Random(7)
    noise = {k: 200.0 * (1 + rng.uniform(-0.08, 0.08)) for k in range(-60, 121)}

    def load(t: float) -> float:
        return noise[int(t // 60)]  # a new value every minute, as a 1m rate() would change

    runs = {}
    for name, behavior in (("hold", HOLD), ("no-hold", NO_HOLD)):
        policy = Policy((WEB,), behavior=behavior)
        memory = Memory()
        warm(policy, memory, "web", [(t, load(t)) for t in range(-3600, 0, 15)])
        runs[name] = drive(policy, load, 2 * 3600, current=30, memory=memory)
    held, free = changes(runs["hold"]), changes(runs["no-hold"])
    assert free >= 40  # without the hold the count follows the noise ...
    assert held * 3 <= free  # ... with it, at most a third as many changes
    # Never below what the demand it sized for needs: the hold only keeps replicas.
    for d in runs["hold"].values():
        decision = d.plan.decision("web")
        assert decision.desired >= decision.needed


def test_one_idle_replica_waits_until_it_has_cost_a_change() -> None:
    # 80 rps needs 10; from 60 s on, 72 rps needs 9: one replica is idle.
    def load(t: float) -> float:
        return 80.0 if t < 60 else 72.0

    decisions = drive(Policy((WEB,), behavior=HOLD, forecast=REACTIVE), load, 60 + 600, 10)
    # It has cost 15 replica-seconds per interval: held while what it has cost plus one more
    # interval stays below 600, i.e. until 60 + 39 x 15 = 645 s, where 585 + 15 reaches 600.
    for t in range(60, 645, 15):
        assert decisions[t].plan.desired == {"web": 10}, t
    assert "1 idle" in decisions[630].plan.decision("web").reason
    assert decisions[645].plan.desired == {"web": 9}


def test_the_hold_ends_even_with_a_zero_interval() -> None:
    # Reconciles one second apart under `interval: 0s`: each still counts one second of idle time,
    # so one idle replica goes after 600 seconds instead of being held for ever.
    def load(t: float) -> float:
        return 80.0 if t < 1 else 72.0

    policy = Policy((WEB,), behavior=HOLD, forecast=REACTIVE, interval=0.0)
    memory, current, gone = Memory(), 10, None
    for t in range(0, 700):
        seen = {"web": WorkloadObservation(current, load(t))}
        decision = decide(policy, Observation(float(t), seen), memory)
        for change in decision.changes:
            memory.applied(change)
        current = decision.plan.desired["web"]
        if current == 9 and gone is None:
            gone = t
    assert gone == 600  # idle from 1 s: 599 s counted + one more second reach 600


def test_a_large_drop_goes_at_once() -> None:
    # 400 rps needs 50; 40 rps needs 5: 45 idle replicas cost 675 replica-seconds an interval.
    def load(t: float) -> float:
        return 400.0 if t < 60 else 40.0

    decisions = drive(Policy((WEB,), behavior=HOLD, forecast=REACTIVE), load, 90, 50)
    assert decisions[45].plan.desired == {"web": 50}
    assert decisions[60].plan.desired == {"web": 5}


def test_the_count_starts_over_after_every_change() -> None:
    # A decline of one replica every 2 minutes: the idle replicas pile up and go together once
    # they have cost a change (counted again from zero after each change). Fewer changes than
    # the load's steps, never below the load, never more than ten minutes behind it.
    def load(t: float) -> float:
        return 8.0 * max(10, 40 - int(t // 120)) - 1.0

    decisions = drive(Policy((WEB,), behavior=HOLD, forecast=REACTIVE), load, 3600, 40)
    desired = [decisions[t].plan.desired["web"] for t in sorted(decisions)]
    assert desired == sorted(desired, reverse=True)  # only down
    assert changes(decisions) < 3600 / 120  # fewer steps than the load took
    for t, d in decisions.items():  # never below the load, never more than ten minutes' worth
        decision = d.plan.decision("web")
        assert decision.needed <= decision.desired <= math.ceil(load(max(0, t - 600)) / 8) + 1


def test_a_real_step_up_still_scales_at_once() -> None:
    # 24 replicas for 150 rps (19 needed: 5 idle replicas, 75 replica-seconds an interval, held
    # for 8 intervals), then 400 rps at 60 s, while they are held: the first reconcile that sees
    # it scales up to the 50 needed (the default scale-up has no rate limit) ...
    def load(t: float) -> float:
        return 150.0 if t < 60 else 400.0

    runs = {
        name: drive(Policy((WEB,), behavior=b, forecast=REACTIVE), load, 90, 24)
        for name, b in (("hold", HOLD), ("no-hold", NO_HOLD))
    }
    assert runs["hold"][45].plan.desired == {"web": 24}  # held
    assert runs["no-hold"][45].plan.desired == {"web": 19}
    assert runs["hold"][60].plan.desired == {"web": 50}  # 400 rps needs 50: at once
    assert runs["no-hold"][60].plan.desired == {"web": 50}
    assert runs["hold"][75].plan.desired == runs["no-hold"][75].plan.desired == {"web": 50}
    # ... and under the HPA's rate limit (+100 % per 15 s) as far as it allows, from the count
    # it holds.
    limited = {
        name: drive(
            Policy((WEB,), behavior=replace(b, up=HPA_SCALE_UP), forecast=REACTIVE), load, 90, 24
        )
        for name, b in (("hold", HOLD), ("no-hold", NO_HOLD))
    }
    assert limited["hold"][45].plan.desired == {"web": 24}  # held
    assert limited["no-hold"][45].plan.desired == {"web": 19}
    assert limited["hold"][60].plan.desired == {"web": 48}  # 400 rps needs 50; 24 x 2
    assert limited["no-hold"][60].plan.desired == {"web": 38}  # 19 x 2
    assert limited["hold"][75].plan.desired == limited["no-hold"][75].plan.desired == {"web": 50}


def test_missing_data_never_scales_down_while_the_hold_runs() -> None:
    # 72 rps needs 9 of 10: one idle replica, held; then the metric fails for 20 minutes.
    def load(t: float) -> float | None:
        return 72.0 if t < 300 else None

    policy = Policy((WEB,), behavior=HOLD, forecast=REACTIVE)
    memory, current = Memory(), 10
    for t in range(0, 1500, 15):
        seen = {"web": WorkloadObservation(current, load(t))}
        decision = decide(policy, Observation(t, seen), memory)
        assert decision.plan.desired["web"] >= current, t
        for change in decision.changes:
            memory.applied(change)
        current = decision.plan.desired["web"]


def test_the_hold_yields_to_a_binding_budget() -> None:
    # batch's load fell (32 rps needs 4 of its 8) while shop's rose (64 rps needs 8 of its 4);
    # the 12/h budget is full. Held, batch's idle replicas would starve shop for ten minutes;
    # the budget's joint plan takes them at once. Without a budget, batch keeps them.
    shop = WorkloadPolicy("shop", 1, 50, capacity=10, priority=10, price=1.0)
    batch = WorkloadPolicy("batch", 1, 50, capacity=10, priority=1, price=1.0)
    seen = {"shop": WorkloadObservation(4, 64.0), "batch": WorkloadObservation(8, 32.0)}
    budget = Policy((shop, batch), Budget(max_cost_per_hour=12), HOLD, forecast=REACTIVE)
    assert decide(budget, Observation(0.0, seen), Memory()).plan.desired == {
        "shop": 8,
        "batch": 4,
    }
    free = replace(budget, budget=Budget())
    assert decide(free, Observation(0.0, seen), Memory()).plan.desired == {"shop": 8, "batch": 8}


# ----------------------------------------------------------------------------------------------
# The settling band.

SETTINGS = SurgeSettings()


def test_the_settled_band_is_the_highest_band_while_the_level_catches_up() -> None:
    state = surge.ShortTerm()
    for k in range(40):  # ten minutes at 100 with a little noise, then 150
        surge.observe(state, SETTINGS, k * STEP, 100.0 + (k % 3))
    surge.observe(state, SETTINGS, 40 * STEP, 150.0)
    before = replace(state)
    z = surge.z_score(0.9)
    settled = surge.settled_band(state, SETTINGS, z, 150.0, STEP)
    assert state == before  # a projection: the state is not touched
    path = replace(state)
    bands = [surge.band(path, z)]
    for k in range(1, 25):  # 3 x level_tau = 360 s: 24 more observations of 150
        surge.observe(path, SETTINGS, (40 + k) * STEP, 150.0)
        bands.append(surge.band(path, z))
    assert settled == max(bands)
    assert settled > surge.band(state, z) > 100.0


def test_a_scale_up_sizes_for_where_the_band_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    # A volatile recent past (a warmed model: level 100 rps, mean deviation 30) and the load now
    # at 160 rps, within the 180 rps of 18 ready pods (no surge) but above the 144 rps they carry
    # at the 80 % target: a scale-up, while the band's level takes minutes to catch up with it.
    def run() -> dict[float, Decision]:
        memory = Memory()
        memory.of("web").short = surge.ShortTerm(
            level=100.0, deviation=30.0, weight=1.0, last=100.0, time=-15
        )
        return drive(Policy((WEB,), behavior=HOLD), lambda t: 160.0, 120, 18, memory=memory)

    settled = run()
    first = settled[0].input("web")
    assert first.surge is None and first.forecast is not None
    # Expected: the band after this observation, projected over level_tau with the load held.
    state = surge.ShortTerm(level=100.0, deviation=30.0, weight=1.0, last=100.0, time=-15)
    surge.observe(state, SETTINGS, 0.0, 160.0)
    z = surge.z_score(0.9)
    expected = surge.settled_band(state, SETTINGS, z, 160.0, STEP)
    assert expected > surge.band(state, z) and expected > 160.0
    assert (first.demand, first.forecast.band, first.forecast.basis) == (expected, expected, "band")
    assert settled[0].plan.desired == {"web": math.ceil(expected / 8)}
    assert changes(settled) == 1  # and nothing more while the band catches up

    # Following the band as it moves instead takes a string of small steps.
    monkeypatch.setattr(surge, "settled_band", lambda s, _settings, z, _load, _dt: surge.band(s, z))
    following = run()
    assert changes(following) >= 3
    assert following[0].plan.desired["web"] < settled[0].plan.desired["web"]


# ----------------------------------------------------------------------------------------------
# The tolerance (behavior.tolerance, default 0.1 as the HPA's): a scale-down moves more than a
# tenth of the replicas or waits; a scale-up adds at least 5 %. Idle hold off (change_cost 0),
# so what holds is the tolerance alone.

TOLERANT = Behavior(down=QUICK_DOWN, change_cost=0.0)  # the default tolerance
EXACT = Behavior(down=QUICK_DOWN, change_cost=0.0, tolerance=0.0)


def test_the_default_tolerance_is_the_hpas() -> None:
    assert Behavior().tolerance == 0.1


@pytest.mark.parametrize("tolerance", [-0.1, 1.0, 2.0])
def test_a_tolerance_outside_0_to_1_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        Behavior(tolerance=tolerance)


@pytest.mark.parametrize(
    ("needed", "desired"),
    [
        (40, 40),  # nothing to move
        (37, 40),  # 3 could go: 3 <= 10 % of 40, held
        (36, 40),  # 4 could go: exactly 10 %, held
        (35, 35),  # 5 could go: more than 10 %, all of them go
        (20, 20),
    ],
)
def test_a_scale_down_moves_more_than_the_tolerance_or_waits(needed: int, desired: int) -> None:
    load = 8.0 * needed - 1.0  # needs `needed` at 8 rps per replica
    policy = Policy((WEB,), behavior=TOLERANT, forecast=REACTIVE)
    decision = decide(policy, Observation(0.0, {"web": WorkloadObservation(40, load)}), Memory())
    assert decision.plan.desired == {"web": desired}
    if desired == 40 and needed < 40:
        assert "within the 10% tolerance" in decision.plan.decision("web").reason


@pytest.mark.parametrize(
    ("needed", "desired"),
    [
        (41, 42),  # +1 needed: +5 % of 40 = 42
        (42, 42),
        (43, 43),  # more than 5 %: exactly what is needed
        (60, 60),
    ],
)
def test_a_scale_up_adds_at_least_half_the_tolerance(needed: int, desired: int) -> None:
    load = 8.0 * needed - 1.0
    policy = Policy((WEB,), behavior=TOLERANT, forecast=REACTIVE)
    decision = decide(policy, Observation(0.0, {"web": WorkloadObservation(40, load)}), Memory())
    assert decision.plan.desired == {"web": desired}


# A scale-up for headroom alone waits while it is within half the tolerance, as the HPA's
# tolerance makes any change wait: the load at hand (319 rps, 40 replicas' worth at 8 rps each)
# fits the current 40, and an event says 4 % more is coming (demand 331.8: 42 replicas). The
# next reconcile that sees the load itself need more scales at once. (multiplier, load, behavior)
# -> desired replicas.
HEADROOM_CASES = {
    "headroom-within-5%-waits": (1.04, 319.0, TOLERANT, 40),
    "more-headroom-scales": (1.10, 319.0, TOLERANT, 44),  # 350.9 rps: 44 > 42
    "the-load-itself-needs-more": (1.0, 327.0, TOLERANT, 42),  # 41 needed, the 5 % step: 42
    "no-tolerance-no-wait": (1.04, 319.0, EXACT, 42),
}


@pytest.mark.parametrize("case", HEADROOM_CASES)
def test_a_scale_up_for_headroom_alone_waits_within_half_the_tolerance(case: str) -> None:
    multiplier, load, behavior, desired = HEADROOM_CASES[case]
    event = CalendarEvent("launch", start=1000.0, end=9000.0, lead=300.0, multiplier=multiplier)
    policy = Policy((WEB,), behavior=behavior, forecast=REACTIVE, events=(event,))
    memory = Memory()
    decide(policy, Observation(0.0, {"web": WorkloadObservation(40, 319.0)}), memory)  # baseline
    decision = decide(policy, Observation(900.0, {"web": WorkloadObservation(40, load)}), memory)
    assert decision.plan.desired == {"web": desired}
    if desired == 40:
        assert "the headroom it lacks is within half the tolerance" in (
            decision.plan.decision("web").reason
        )


def test_the_up_step_stays_under_the_ceiling() -> None:
    # maxReplicas 41: the 5 % step (42) would pass it; the ceiling wins, the SLO is still met.
    capped = replace(WEB, max_replicas=41)
    policy = Policy((capped,), behavior=TOLERANT, forecast=REACTIVE)
    seen = {"web": WorkloadObservation(40, 8.0 * 41 - 1.0)}
    assert decide(policy, Observation(0.0, seen), Memory()).plan.desired == {"web": 41}


def test_a_ramp_is_followed_in_fewer_steps_and_never_below_the_load() -> None:
    # Up from 160 to 640 rps over an hour and back down over the next: 20 -> 80 -> 20 needed.
    def load(t: float) -> float:
        return 160.0 + 480.0 * (t / 3600 if t < 3600 else max(0.0, 2 - t / 3600))

    runs = {
        name: drive(Policy((WEB,), behavior=b, forecast=REACTIVE), load, 7200, 20)
        for name, b in (("tolerant", TOLERANT), ("exact", EXACT))
    }
    assert changes(runs["tolerant"]) * 2 <= changes(runs["exact"])
    for d in runs["tolerant"].values():
        decision = d.plan.decision("web")
        assert decision.desired >= decision.needed  # the tolerance only ever keeps or adds
        if decision.desired < decision.current:  # every scale-down moves more than 10 %
            assert decision.current - decision.desired > 0.1 * decision.current
        elif decision.desired > decision.current:  # every scale-up adds at least 5 %
            assert decision.desired >= math.ceil(decision.current * 1.05)


def test_the_up_step_yields_to_a_binding_budget() -> None:
    # a (priority 10) needs 36 but its scale-down window holds it at 40 (a floor the budget
    # cannot take); b needs 102 of its 98. 40 + 102 = 142 > 141: b must be squeezed to 101, and
    # its 5 % step (103) must not become a floor that pushes the plan over the budget.
    a = WorkloadPolicy("a", 1, 200, capacity=10, priority=10, price=1.0)
    b = WorkloadPolicy("b", 1, 200, capacity=10, priority=1, price=1.0)
    policy = Policy((a, b), Budget(max_cost_per_hour=141), TOLERANT, forecast=REACTIVE)
    policy = replace(policy, behavior=replace(TOLERANT, down=DEFAULT_SCALE_DOWN))
    memory = Memory()
    for name, current in (("a", 41), ("b", 98)):
        memory.of(name).last_current = current
    memory.of("a").recommend(-60.0, 40)
    seen = {"a": WorkloadObservation(41, 8.0 * 36 - 1), "b": WorkloadObservation(98, 8.0 * 102 - 1)}
    decision = decide(policy, Observation(0.0, seen), memory)
    assert decision.plan.desired == {"a": 40, "b": 101}
    assert not any(b.soft for b in decision.plan.binding)
    # Without the budget b takes its whole step.
    free = decide(replace(policy, budget=Budget()), Observation(0.0, seen), Memory())
    assert free.plan.desired["b"] == 103
