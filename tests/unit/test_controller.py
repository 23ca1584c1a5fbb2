"""One reconcile as a pure step, over successive `decide` calls sharing a Memory.

Every scenario is a load schedule and the replicas expected at chosen times; the driver calls
`decide` every 15 s and applies each plan (the next observation's current replicas are the last
desired ones). Workloads serve 10 rps per replica at an 80 % target, i.e. 8 rps per replica, so
needed = ceil(load / 8); every expected value is worked out in the comment next to it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peakplan.controller import (
    Decision,
    Memory,
    Observation,
    WorkloadMemory,
    WorkloadObservation,
    decide,
)
from peakplan.policy import (
    HPA_SCALE_DOWN,
    HPA_SCALE_UP,
    Behavior,
    CalendarEvent,
    ForecastSettings,
    MetricFailure,
    Policy,
    ScalingRules,
    StepLimit,
    WorkloadPolicy,
)
from peakplan.problem import Budget

STEP = 15.0
# These scenarios are about bounds and behaviour, so they size for the load itself (forecast
# method reactive); sizing on forecasts and the surge path are tested in test_controller_forecast.
REACTIVE = ForecastSettings(method="reactive")
WEB = WorkloadPolicy("web", min_replicas=2, max_replicas=100, capacity=10, price=0.1)

# The shop example's behaviour: a quick scale-up (x5 or +10 per 15 s), a slow scale-down.
FAST_UP = ScalingRules(0.0, "Max", (StepLimit("Percent", 400, 15.0), StepLimit("Pods", 10, 15.0)))
SLOW_DOWN = ScalingRules(300.0, "Max", (StepLimit("Percent", 10, 60.0),))

Loads = Mapping[str, float | None]


@dataclass(frozen=True)
class Scenario:
    policy: Policy
    current: Mapping[str, int]  # replicas before the first reconcile
    loads: Sequence[tuple[float, Loads]]  # (from time, load per workload), in time order
    expect: Mapping[float, Mapping[str, int]]  # time -> desired replicas
    sources: Mapping[float, Mapping[str, str]] = field(default_factory=dict)
    demands: Mapping[float, Mapping[str, float]] = field(default_factory=dict)
    start: float = 0.0


def web(
    loads: Sequence[tuple[float, float | None]],
    expect: Mapping[float, int],
    current: int,
    policy: Policy | None = None,
    sources: Mapping[float, str] | None = None,
    demands: Mapping[float, float] | None = None,
    start: float = 0.0,
) -> Scenario:
    """A scenario with the single workload `web`."""
    return Scenario(
        policy=policy or Policy((WEB,), forecast=REACTIVE),
        current={"web": current},
        loads=[(t, {"web": load}) for t, load in loads],
        expect={t: {"web": n} for t, n in expect.items()},
        sources={t: {"web": s} for t, s in (sources or {}).items()},
        demands={t: {"web": d} for t, d in (demands or {}).items()},
        start=start,
    )


def run(scenario: Scenario) -> dict[float, Decision]:
    """Reconcile every 15 s up to the last expected time, applying each plan."""
    memory = Memory()
    current = dict(scenario.current)
    decisions: dict[float, Decision] = {}
    t = scenario.start
    while t <= max(scenario.expect):
        loads = [loads for since, loads in scenario.loads if since <= t][-1]
        seen = {name: WorkloadObservation(current[name], loads[name]) for name in current}
        decision = decide(scenario.policy, Observation(t, seen), memory)
        decisions[t] = decision
        for change in decision.changes:
            memory.applied(change)
        current = decision.plan.desired
        t += STEP
    return decisions


def _policy(
    failure: MetricFailure | None = None,
    behavior: Behavior | None = None,
    events: tuple[CalendarEvent, ...] = (),
    workloads: tuple[WorkloadPolicy, ...] = (WEB,),
) -> Policy:
    return Policy(
        workloads,
        forecast=REACTIVE,
        behavior=behavior or Behavior(),
        events=events,
        on_metric_failure=failure or MetricFailure(),
    )


# An event at S = 3600 s, ending at 5400 s, with 10 minutes lead; `web` starts in 60 s, so its
# preparation begins at S - L - U = 3600 - 600 - 60 = 2940.
S, END, LEAD = 3600.0, 5400.0, 600.0
SALE = CalendarEvent("sale", start=S, end=END, lead=LEAD, multiplier=3, min_replicas={"web": 40})
BOOST = CalendarEvent("boost", start=S, end=END, lead=LEAD, multiplier=3)
# No tolerance: the steps show the rate limits' arithmetic alone.
EVENT_BEHAVIOR = Behavior(FAST_UP, SLOW_DOWN, tolerance=0.0)
# The HPA's defaults, max(+100 %, +4 pods) per 15 s up and a 300 s window down, chosen
# explicitly: PeakPilot's own defaults have no scale-up rate limit and a 600 s window.
HPA = Behavior(up=HPA_SCALE_UP, down=HPA_SCALE_DOWN)

SCENARIOS = {
    "step-up-at-once-by-default": web(
        [(0, 32), (15, 400)],
        {
            0: 4,  # 32 rps needs 4
            15: 50,  # 400 rps needs 50: at once, the default scale-up has no rate limit
            30: 50,
        },
        current=4,
        demands={15: 400.0},
    ),
    "step-up-within-the-hpa-rate-limit": web(
        [(0, 32), (15, 400)],
        {
            0: 4,  # 32 rps needs 4
            15: 8,  # 400 rps needs 50; max(4 x 2, 4 + 4) = 8
            30: 16,  # the +4 at 15 s is 15 s old, out of the period: max(8 x 2, 8 + 4)
            45: 32,  # max(32, 20)
            60: 50,  # max(64, 36) allows the 50 needed
            75: 50,
        },
        current=4,
        policy=_policy(behavior=HPA),
    ),
    "drop-waits-for-the-600s-window-then-scales-down": web(
        [(0, 400), (75, 80)],
        {
            60: 50,  # 400 rps needs 50; the last recommendation of 50 is at 60 s
            75: 50,  # 80 rps needs 10, but 50 was recommended within the default 600 s
            645: 50,  # 645 - 60 = 585 < 600: still in the window
            660: 10,  # 660 - 60 = 600: out; the default -100 % per 15 s goes straight to 10
            675: 10,
        },
        current=50,
        demands={75: 80.0, 645: 80.0, 660: 80.0},
    ),
    "drop-waits-for-the-300s-window-then-scales-down": web(
        [(0, 400), (75, 80)],
        {
            60: 50,  # 400 rps needs 50; the last recommendation of 50 is at 60 s
            75: 50,  # 80 rps needs 10, but 50 was recommended within 300 s
            345: 50,  # 345 - 60 = 285 < 300: still in the window
            360: 10,  # 360 - 60 = 300: out; the HPA's -100 % per 15 s goes straight to 10
            375: 10,
        },
        current=50,
        policy=_policy(behavior=HPA),
        demands={75: 80.0, 360: 80.0},
    ),
    # With the HPA's rate limit the first step falls short of what the load needs, so the next
    # step shows the held value acted on (a scale-up), not only reported.
    "hold-last-known-until-ttl-then-keep-current": web(
        [(0, 80), (15, None)],
        {
            0: 8,  # 80 rps needs 10; max(4 x 2, 4 + 4) = 8
            15: 10,  # held 80 rps (15 s old): needs 10; +4 at 0 s is out of the period
            60: 10,  # 60 s old = ttl: still held
            75: 10,  # 75 s old > ttl: missing, keep the current 10
            90: 10,
        },
        current=4,
        policy=_policy(MetricFailure("HoldLastKnown", ttl=60), behavior=HPA),
        sources={0: "observed", 15: "held", 60: "held", 75: "missing", 90: "missing"},
        demands={15: 80.0, 60: 80.0, 75: 0.0},
    ),
    "held-data-never-scales-down": web(
        [(0, 48), (15, None), (30, 48)],
        {
            0: 11,  # 48 rps needs 6; at most -1 pod per 15 s: 12 - 1
            15: 11,  # held 48 needs 6 and the rate limit allows 10, but never below current
            30: 10,  # observed again: 11 - 1
        },
        current=12,
        policy=_policy(
            # No idle hold or tolerance: the one-pod steps show the data rule alone.
            behavior=Behavior(
                down=ScalingRules(0.0, "Max", (StepLimit("Pods", 1, 15.0),)),
                change_cost=0.0,
                tolerance=0.0,
            )
        ),
        sources={15: "held", 30: "observed"},
    ),
    "static-goes-to-its-replicas": web(
        [(0, None)],
        {
            0: 20,  # max(current 10, static 20); the default scale-up has no rate limit
            15: 20,
        },
        current=10,
        policy=_policy(MetricFailure("Static", replicas=20)),
        sources={0: "static"},
    ),
    "static-never-below-current": web(
        [(0, None)],
        {0: 30, 15: 30},  # max(current 30, static 20)
        current=30,
        policy=_policy(MetricFailure("Static", replicas=20)),
    ),
    # The HPA's rate limit leaves current below what the last value needs, which is what tells
    # Current from HoldLastKnown.
    "current-keeps-current-even-with-a-last-value": web(
        [(0, 160), (15, None)],
        {
            0: 14,  # 160 rps needs 20; max(7 x 2, 7 + 4) = 14
            15: 14,  # HoldLastKnown would go to 20; Current keeps 14
        },
        current=7,
        policy=_policy(MetricFailure("Current"), behavior=HPA),
        sources={15: "current"},
    ),
    "event-floor-ready-by-start-then-ramp-down-after-end": web(
        [(0, 80), (S + 300, 400), (END, 80)],
        {
            2925: 10,  # before S - L - U: 80 rps needs 10
            2940: 40,  # S - L - U: floor 40; demand 3 x 80 = 240 needs 30; x5 allows 50
            S: 40,  # the event starts with the 40 ready
            S + 300: 50,  # 400 rps needs 50 (more than 3 x 80)
            END: 50,  # 80 rps needs 10, but 50 was recommended at END - 15 (300 s window)
            END + 270: 50,  # END - 15 + 300 = END + 285: still in the window
            END + 285: 45,  # out of the window; -10 % per 60 s: floor(50 x 0.9)
            END + 330: 45,  # the -5 at END + 285 is in the period: start 50, floor(45) = 45
            END + 345: 40,  # 60 s later: start 45, floor(40.5)
            END + 405: 36,  # floor(40 x 0.9)
        },
        current=10,
        policy=_policy(behavior=EVENT_BEHAVIOR, events=(SALE,)),
        demands={2925: 80.0, 2940: 240.0, S: 240.0, S + 300: 400.0, END: 80.0},
        start=2700,
    ),
    # With the HPA's default +100 % / +4 pods per 15 s (chosen here: PeakPilot's default has no
    # scale-up limit), 2 -> 40 would take five steps; the floor is a declared minimum, so like
    # minReplicas it is not rate-limited.
    "event-floor-is-not-rate-limited": web(
        [(0, 8)],
        {
            2925: 2,  # 8 rps needs 1; minReplicas 2
            2940: 40,  # S - L - U: the floor at once (the rate limit alone allows max(4, 6) = 6)
            2955: 40,
        },
        current=2,
        policy=_policy(behavior=HPA, events=(SALE,)),
        start=2700,
    ),
    "event-multiplier-applies-to-the-last-load-before-start": web(
        [(0, 80), (3000, 100), (S, 120), (S + 300, 400)],
        {
            2925: 10,  # 80 needs 10
            2940: 30,  # preparing: 3 x 80 = 240 needs 30
            3000: 38,  # the baseline follows the load until start: 3 x 100 = 300 needs 38
            S: 38,  # after start the baseline stays at 100: max(120, 300) = 300
            S + 300: 50,  # 400 rps is above 3 x 100: it needs 50
        },
        current=10,
        policy=_policy(behavior=EVENT_BEHAVIOR, events=(BOOST,)),
        demands={2940: 240.0, 3000: 300.0, S: 300.0, S + 300: 400.0},
        start=2700,
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_scenario(scenario: Scenario) -> None:
    decisions = run(scenario)
    got = {t: dict(decisions[t].plan.desired) for t in scenario.expect}
    assert got == scenario.expect
    for t, sources in scenario.sources.items():
        assert {n: decisions[t].input(n).source for n in sources} == sources, t
    for t, demands in scenario.demands.items():
        assert {n: decisions[t].input(n).demand for n in demands} == pytest.approx(demands), t


def test_inputs_say_which_event_and_why_data_is_missing() -> None:
    decisions = run(SCENARIOS["event-floor-ready-by-start-then-ramp-down-after-end"])
    assert decisions[2925].input("web").events == ()
    assert decisions[2940].input("web").events == ("sale",)
    assert decisions[2940].plan.decision("web").limited_by == "floor"
    assert "sale" in decisions[2940].plan.decision("web").reason
    assert decisions[END].input("web").events == ()

    missing = run(SCENARIOS["hold-last-known-until-ttl-then-keep-current"])
    assert missing[0].metrics_ok
    assert not missing[15].metrics_ok
    assert "holding the value from 15s ago" in missing[15].input("web").note
    assert "keeping current replicas" in missing[75].input("web").note


def test_preview_does_not_use_up_the_rate_limit() -> None:
    # At most +4 pods per 60 s; 400 rps needs 50.
    policy = _policy(behavior=Behavior(up=ScalingRules(0.0, "Max", (StepLimit("Pods", 4, 60.0),))))

    def observe(at: float, current: int) -> Observation:
        return Observation(at, {"web": WorkloadObservation(current, 400.0)})

    memory = Memory()
    preview = decide(policy, observe(0, 4), memory)  # Preview: the change is not applied
    assert preview.plan.desired == {"web": 8}  # 4 + 4
    assert [(c.name, c.current, c.desired) for c in preview.changes] == [("web", 4, 8)]
    assert not memory.of("web").changes
    # Nothing was applied, so Enforce 15 s later still has the whole allowance: 4 + 4.
    enforced = decide(policy, observe(15, 4), memory)
    assert enforced.plan.desired == {"web": 8}
    (change,) = enforced.changes
    memory.applied(change)
    assert list(memory.of("web").changes) == [(15, 4)]
    # That change counts: the period started at 8 - 4 = 4, so 4 + 4 = 8 is all there is.
    assert decide(policy, observe(30, 8), memory).plan.desired == {"web": 8}


def test_decide_updates_memory_in_place_so_copies_ask_what_if() -> None:
    policy = _policy()
    memory = Memory()
    decide(policy, Observation(0, {"web": WorkloadObservation(4, 400.0)}), memory)
    what_if = copy.deepcopy(memory)
    decide(policy, Observation(15, {"web": WorkloadObservation(8, 400.0)}), what_if)
    # The first reconcile records the current 4 (first sight) and its own recommendation.
    assert len(what_if.of("web").recommendations) == 3
    assert len(memory.of("web").recommendations) == 2


def test_a_reconcile_dated_earlier_makes_the_windows_read_every_recommendation() -> None:
    # The windows read the newest recommendations only while they are in time order. The HPA's
    # 300 s scale-down window, chosen for the arithmetic below (the default 600 s would hold both).
    policy = _policy(behavior=Behavior(down=HPA_SCALE_DOWN, change_cost=0, tolerance=0))
    memory = Memory()
    decide(policy, Observation(0, {"web": WorkloadObservation(4, 400.0)}), memory)
    decide(policy, Observation(100, {"web": WorkloadObservation(4, 1600.0)}), memory)
    assert memory.of("web").in_order
    decide(policy, Observation(50, {"web": WorkloadObservation(4, 400.0)}), memory)
    assert not memory.of("web").in_order
    # At 360 the one at 50 is out of the 300 s window but the one at 100, older in the deque's
    # order, is in: its recommendation still holds the scale-down.
    high = max(r for t, r in memory.of("web").recommendations if t == 100)
    desired = decide(policy, Observation(360, {"web": WorkloadObservation(high, 1.0)}), memory)
    assert desired.plan.desired == {"web": high}


def test_a_workload_without_observation_is_an_error() -> None:
    with pytest.raises(KeyError, match="no observation for workload web"):
        decide(_policy(), Observation(0, {}), Memory())


# ----------------------------------------------------------------------------------------------
# The shared budget.

SHOP = WorkloadPolicy("shop", 1, 50, capacity=10, priority=10, price=1.0)
BATCH = WorkloadPolicy("batch", 1, 50, capacity=10, priority=1, price=1.0)
BUDGET = Policy((SHOP, BATCH), budget=Budget(max_cost_per_hour=12), forecast=REACTIVE)


def test_budget_squeezes_the_lower_priority_workload() -> None:
    # Both need 8 (64 rps) at 1/h a replica; 12/h buys 12: shop's priority keeps its 8.
    seen = {n: WorkloadObservation(8, 64.0) for n in ("shop", "batch")}
    # On first sight the scale-down window keeps the 8 (as the HPA would); seen before, it goes.
    assert decide(BUDGET, Observation(0, seen), Memory()).plan.desired == {"shop": 8, "batch": 8}
    memory = Memory({n: WorkloadMemory(last_current=8) for n in ("shop", "batch")})
    decision = decide(BUDGET, Observation(0, seen), memory)
    assert decision.plan.desired == {"shop": 8, "batch": 4}
    (binding,) = decision.plan.binding
    assert (binding.constraint, binding.limit, binding.used, binding.needed) == (
        "cost",
        12,
        12,
        16,
    )
    assert binding.squeezed == {"batch": 4}
    assert binding.relax is not None
    assert binding.relax.replicas == {"batch": 1}  # +10 % is 1.2/h: one more batch replica


SHIFT = Scenario(
    policy=BUDGET,
    current={"shop": 4, "batch": 8},
    loads=[(0, {"shop": 32, "batch": 64}), (15, {"shop": 64, "batch": 64})],
    expect={
        0: {"shop": 4, "batch": 8},  # needs 4 + 8 = 12/h: fits
        # shop now needs 8, but batch recommended 8 at 0 s: its default 600 s window holds it at
        # 8, so the 12/h leave shop 4.
        15: {"shop": 4, "batch": 8},
        585: {"shop": 4, "batch": 8},  # 585 - 0 < 600: still in the window
        # 600 - 0 = 600: the 0 s recommendation has left the window; since 15 s batch's
        # recommendation was its share of the joint plan, 4, so the budget moves 4 to shop.
        600: {"shop": 8, "batch": 4},
        615: {"shop": 8, "batch": 4},
    },
)


def test_budget_moves_replicas_to_priority_once_the_window_lets_go() -> None:
    decisions = run(SHIFT)
    assert {t: dict(decisions[t].plan.desired) for t in SHIFT.expect} == SHIFT.expect
    assert [b.squeezed for b in decisions[15].plan.binding] == [{"shop": 4}]
    assert [b.squeezed for b in decisions[600].plan.binding] == [{"batch": 4}]


# ----------------------------------------------------------------------------------------------
# Never a scale-down on missing data, whatever came before.


@given(
    action=st.sampled_from(["HoldLastKnown", "Static", "Current"]),
    static=st.integers(0, 120),
    before=st.lists(st.tuples(st.integers(0, 100), st.floats(0, 2000)), max_size=6),
    current=st.integers(0, 300),  # up to 3x maxReplicas: someone else scaled it up
)
def test_missing_data_never_scales_down(
    action: str, static: int, before: list[tuple[int, float]], current: int
) -> None:
    assert action in ("HoldLastKnown", "Static", "Current")
    policy = _policy(MetricFailure(action, ttl=600, replicas=static))  # type: ignore[arg-type]
    memory = Memory()
    t = 0.0
    for replicas, load in before:  # some history: loads seen, changes made
        decide(policy, Observation(t, {"web": WorkloadObservation(replicas, load)}), memory)
        t += STEP
    decision = decide(policy, Observation(t, {"web": WorkloadObservation(current, None)}), memory)
    assert decision.plan.desired["web"] >= current  # even above maxReplicas
    assert decision.plan.desired["web"] <= max(current, WEB.max_replicas)  # Static: capped
    assert not decision.metrics_ok


@pytest.mark.parametrize("action", ["HoldLastKnown", "Static", "Current"])
def test_above_max_replicas_missing_data_keeps_current_and_says_which_rule(action: str) -> None:
    # 80 replicas on a workload whose maxReplicas is 50, a budget that would pay for 30: with the
    # load unavailable the one rule (operator, plan and simulate alike) is to keep the 80.
    small = WorkloadPolicy("web", min_replicas=2, max_replicas=50, capacity=10, price=0.1)
    policy = Policy(
        (small,),
        forecast=REACTIVE,
        budget=Budget(max_cost_per_hour=3.0),
        on_metric_failure=MetricFailure(action, ttl=600, replicas=40),  # type: ignore[arg-type]
    )
    # Seen before (not first sight, which would hold the 80 for the scale-down window anyway).
    memory = Memory({"web": WorkloadMemory(last_current=80)})
    decision = decide(policy, Observation(0, {"web": WorkloadObservation(80, None)}), memory)
    assert decision.plan.desired == {"web": 80}
    reason = decision.plan.decision("web").reason
    assert "no scale-down on missing data, even above maxReplicas" in reason
    # With the load back, maxReplicas applies again.
    back = decide(policy, Observation(15, {"web": WorkloadObservation(80, 100.0)}), Memory())
    assert back.plan.desired["web"] <= 50


def test_on_first_sight_the_current_count_is_the_first_recommendation() -> None:
    # 80 rps needs 10 of the 20 running; the default scale-down window is 600 s. As the HPA does,
    # the first reconcile records the 20 as a recommendation: the window holds them for 600 s.
    policy = Policy((WEB,), behavior=Behavior(change_cost=0.0), forecast=REACTIVE)
    memory, current, desired = Memory(), 20, {}
    for t in range(0, 630, 15):
        decision = decide(
            policy, Observation(t, {"web": WorkloadObservation(current, 80.0)}), memory
        )
        for change in decision.changes:
            memory.applied(change)
        current = desired[t] = decision.plan.desired["web"]
    assert {desired[t] for t in range(0, 600, 15)} == {20}  # 585 - 0 < 600: still held
    assert desired[600] == 10  # 600 - 0 = 600: the recommendation of 20 at t=0 has left it
    # A controller that has seen the workload before acts on the reading at once.
    seen_before = Memory({"web": WorkloadMemory(last_current=20)})
    again = decide(policy, Observation(0, {"web": WorkloadObservation(20, 80.0)}), seen_before)
    assert again.plan.desired == {"web": 10}


def test_only_the_changes_reported_applied_count_against_the_rate_limits() -> None:
    # At most +4 pods per 60 s. A change the shell could not apply (a failed /scale write) is
    # not reported: the next reconcile still has the whole allowance.
    policy = _policy(behavior=Behavior(up=ScalingRules(0.0, "Max", (StepLimit("Pods", 4, 60.0),))))
    memory = Memory()
    first = decide(policy, Observation(0, {"web": WorkloadObservation(4, 400.0)}), memory)
    assert [(c.current, c.desired) for c in first.changes] == [(4, 8)]
    retry = decide(policy, Observation(15, {"web": WorkloadObservation(4, 400.0)}), memory)
    assert retry.plan.desired == {"web": 8}
    memory.applied(retry.changes[0])
    after = decide(policy, Observation(30, {"web": WorkloadObservation(8, 400.0)}), memory)
    assert after.plan.desired == {"web": 8} and not after.changes  # 4 of 4 used in the period


def test_a_held_workload_lists_no_change() -> None:
    seen = {"web": WorkloadObservation(4, 400.0, hold="paused")}
    decision = decide(_policy(), Observation(0, seen), Memory())
    assert decision.plan.desired == {"web": 4} and decision.changes == ()


def test_an_unreadable_target_is_held_as_last_seen_or_left_out_of_the_plan() -> None:
    # shop and batch need 8 each at 1/h a replica under a 12/h budget; batch's replicas cannot be
    # read. Never seen: batch is left out, so no guessed count takes a share of the budget.
    unreadable = WorkloadObservation(0, 64.0, unreadable="HTTP 500")
    seen = {"shop": WorkloadObservation(8, 64.0), "batch": unreadable}
    fresh = decide(BUDGET, Observation(0, seen), Memory())
    assert fresh.plan.desired == {"shop": 8}
    assert fresh.left_out == {"batch": "target unreadable (HTTP 500)"}
    # Seen before at 6: held there, its 6/h counted, so shop gets what is left (6), no change.
    memory = Memory({n: WorkloadMemory(last_current=6) for n in ("shop", "batch")})
    held = decide(BUDGET, Observation(0, {**seen, "shop": WorkloadObservation(6, 64.0)}), memory)
    assert held.plan.desired == {"shop": 6, "batch": 6} and not held.left_out
    assert "held at its last known 6 replicas" in held.plan.decision("batch").reason
    assert held.changes == ()
