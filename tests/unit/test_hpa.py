"""The HPA baseline against hand-computed syncs, as scenario tables (cf. replica_calculator_test).

Most cases use capacity 10 rps at target 0.5, i.e. 5 rps per pod, to keep the arithmetic short.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peakplan.behavior import scale_down_limit, scale_up_limit
from peakplan.policy import HPA_SCALE_DOWN, ScalingRules, StepLimit
from peakplan.replay import parse_trace
from peakplan.replay.hpa import Hpa, HpaConfig, HpaState, hpa_step, proposal, replay_hpa

FIVE_PER_POD = HpaConfig(capacity=10, target_utilization=0.5, metric_lag=0)


@dataclass(frozen=True)
class CalcCase:
    name: str
    current: int
    rate: float
    expected: int


CALC_CASES = [
    CalcCase("on target", 4, 20.0, 4),  # usageRatio 20 / (4 x 5) = 1.0
    CalcCase("inside tolerance above", 4, 21.9, 4),  # 1.095
    # Exactly 1.1: in float64 |1 - 1.1| = 0.10000000000000009 > 0.1, so Kubernetes scales too.
    CalcCase("edge of tolerance above, float64 as Kubernetes", 4, 22.0, 5),
    CalcCase("edge of tolerance below", 4, 18.0, 4),  # |1 - 0.9| = 0.09999999999999998
    CalcCase("just over tolerance", 4, 22.1, 5),  # 1.105 -> ceil(4 x 1.105) = ceil(4.42) = 5
    CalcCase("inside tolerance below", 10, 45.5, 10),  # 0.91
    CalcCase("over tolerance below", 10, 44.0, 9),  # 0.88 -> ceil(8.8) = 9
    CalcCase("large surge", 2, 100.0, 20),  # 10.0 -> ceil(20.0) = 20
    CalcCase("no load", 10, 0.0, 0),  # 0.0 -> 0 (raised to minReplicas later)
    CalcCase("from zero replicas", 0, 12.0, 3),  # ceil(12 / 5) = 3
]


@pytest.mark.parametrize("case", CALC_CASES, ids=lambda c: c.name)
def test_replica_calculator(case: CalcCase) -> None:
    assert proposal(FIVE_PER_POD, case.current, case.rate) == case.expected


def test_default_target_is_70_percent() -> None:
    config = HpaConfig(capacity=10)
    assert config.target_per_pod == pytest.approx(7.0)
    assert proposal(config, 2, 28.0) == 4  # usageRatio 28 / 14 = 2.0


@dataclass(frozen=True)
class LimitCase:
    name: str
    current: int
    ups: tuple[tuple[float, int], ...]
    expected: int


UP_CASES = [
    LimitCase("+4 pods beats +100 % when small", 3, (), 7),  # max(3 + 4, ceil(3 x 2)) = 7
    LimitCase("+100 % beats +4 pods when large", 10, (), 20),  # max(14, 20) = 20
    LimitCase("equal at 4", 4, (), 8),
    # 5 pods added 10 s ago (inside the 15 s period): the period started at 5 -> max(9, 10).
    LimitCase("period counts recent additions", 10, ((90.0, 5),), 10),
    LimitCase("event exactly one period ago has expired", 10, ((85.0, 5),), 20),
]


@pytest.mark.parametrize("case", UP_CASES, ids=lambda c: c.name)
def test_scale_up_limit(case: LimitCase) -> None:
    rules = HpaConfig(capacity=1).scale_up
    assert scale_up_limit(case.current, rules, case.ups, 100.0, float64=True) == case.expected


def test_scale_down_limit_default_is_unlimited_and_pods_policy_limits() -> None:
    # The HPA model keeps its scale-downs as signed changes: 2 pods removed is -2.
    assert scale_down_limit(10, HpaConfig(capacity=1).scale_down, (), 0.0, float64=True) == 0
    two_per_minute = ScalingRules(300.0, "Max", (StepLimit("Pods", 2, 60.0),))
    assert scale_down_limit(10, two_per_minute, ((30.0, -2),), 60.0, float64=True) == 10  # 12 - 2
    assert scale_down_limit(10, two_per_minute, ((0.0, -2),), 60.0, float64=True) == 8  # expired


@dataclass(frozen=True)
class StepCase:
    """A run of 15 s syncs from t=0: observed rate per sync and the expected desired counts."""

    name: str
    config: HpaConfig
    start: int
    rates: tuple[float | None, ...]
    expected: tuple[int, ...]


STEP_CASES = [
    StepCase(
        # The surge at t=15 is seen at t=45 (30 s lag): 1 -> 5 (+4) -> 10 (+100 %) -> 20.
        "30 s metric lag, then +4 pods, then +100 %",
        HpaConfig(capacity=10, target_utilization=0.5),
        1,
        (5, 100, 100, 100, 100, 100, 100),
        (1, 1, 1, 5, 10, 20, 20),
    ),
    StepCase(
        "tolerance band holds the count",
        FIVE_PER_POD,
        4,
        (20, 21.9, 18.5, 21.0, 18.0, 22.1),
        (4, 4, 4, 4, 4, 5),
    ),
    StepCase(
        "maxReplicas caps a scale-up",
        HpaConfig(capacity=10, target_utilization=0.5, metric_lag=0, max_replicas=6),
        2,
        (100, 100, 100),
        (6, 6, 6),
    ),
    StepCase(
        "minReplicas floors a scale-down (after the window)",
        HpaConfig(
            capacity=10,
            target_utilization=0.5,
            metric_lag=0,
            min_replicas=2,
            scale_down=ScalingRules(0.0, "Max", HPA_SCALE_DOWN.limits),
        ),
        5,
        (0, 0),
        (2, 2),
    ),
    StepCase(
        "missing metric keeps the count",
        FIVE_PER_POD,
        2,
        (10, None, None, 40),
        (2, 2, 2, 6),  # 40 rps asks for 8; +4 pods from 2 allows 6
    ),
    StepCase(
        # Lagged by 30 s: nothing to act on at t=0 and 15, t=0's 10 rps at t=30, the gap at t=15
        # at t=45, t=30's 40 rps at t=60.
        "missing metric is seen late too",
        HpaConfig(capacity=10, target_utilization=0.5),
        2,
        (10, None, 40, 40, 40),
        (2, 2, 2, 2, 6),
    ),
    StepCase(
        # stabilizeRecommendationWithBehaviors: the current count, raised to the scale-up
        # window's lowest proposal and lowered to the scale-down window's highest. 200 rps asks
        # for 40 but the rate limit allows 2 -> 6 -> 12; then 30 rps asks for 6 of the 12: the
        # window's 40 keeps the count from going down, it must not pull it up (to 24).
        "a drop after a rate-limited scale-up holds the count, as Kubernetes does",
        FIVE_PER_POD,
        2,
        (200, 200, 30, 30),
        (6, 12, 12, 12),
    ),
    StepCase(
        "start above maxReplicas goes to max at once",
        HpaConfig(capacity=10, target_utilization=0.5, metric_lag=0, max_replicas=3),
        9,
        (40, 40),
        (3, 3),  # then 40 rps asks for 8, capped at 3
    ),
]


@pytest.mark.parametrize("case", STEP_CASES, ids=lambda c: c.name)
def test_hpa_syncs(case: StepCase) -> None:
    observations = [(15.0 * k, rate) for k, rate in enumerate(case.rates)]
    assert replay_hpa(case.config, case.start, observations) == list(case.expected)


def test_scale_down_waits_for_the_300_s_window() -> None:
    # 20 pods at 100 rps; the load falls to 10 rps at t=150. No lag. The last proposal of 20 is
    # at t=135, so every window (t - 300, t] holds it until t = 135 + 300 = 435.
    hpa = Hpa(FIVE_PER_POD, 20)
    desired = {t: hpa.step(t, 100.0 if t < 150 else 10.0) for t in range(0, 600, 15)}
    assert desired[420] == 20
    assert desired[435] == 2  # ceil(10 / 5), the highest proposal in (135, 435]
    assert all(desired[t] == 20 for t in range(0, 435, 15))


def test_scale_down_takes_the_highest_recent_proposal() -> None:
    # Proposals 8 (t=0), 6 (t=15), then 4: the count steps down 8 -> ... -> 6 -> 4 as each ages.
    hpa = Hpa(HpaConfig(capacity=10, target_utilization=0.5, metric_lag=0), 8)
    rates = {0: 40.0, 15: 30.0}
    desired = {t: hpa.step(t, rates.get(t, 20.0)) for t in range(0, 360, 15)}
    assert desired[0] == 8 and desired[285] == 8
    assert desired[300] == 6  # the 8 at t=0 left the window (0, 300]
    assert desired[315] == 4


def test_the_state_is_a_value_that_can_be_forked() -> None:
    config = FIVE_PER_POD
    desired, state = hpa_step(config, HpaState(replicas=2), 0.0, 10.0)
    high, _ = hpa_step(config, state, 15.0, 100.0)
    low, _ = hpa_step(config, state, 15.0, 10.0)
    assert (desired, high, low) == (2, 6, 2)  # max(2 + 4, 2 x 2) = 6
    assert state.replicas == 2  # forking did not touch it


def test_zero_replicas_with_min_above_zero_disables_autoscaling() -> None:
    assert replay_hpa(FIVE_PER_POD, 0, [(0.0, 100.0), (15.0, 100.0)]) == [0, 0]


def test_scale_from_zero_when_min_is_zero() -> None:
    config = HpaConfig(capacity=10, target_utilization=0.5, metric_lag=0, min_replicas=0)
    assert replay_hpa(config, 0, [(0.0, 12.0)]) == [3]  # max(0 + 4, 0) = 4 allows ceil(12/5)


@given(
    rates=st.lists(st.one_of(st.none(), st.floats(0, 2000)), min_size=1, max_size=80),
    start=st.integers(1, 50),
)
def test_bounds_and_scale_up_rate_always_hold(rates: list[float | None], start: int) -> None:
    config = HpaConfig(capacity=10, min_replicas=1, max_replicas=60)
    desired = replay_hpa(config, start, [(15.0 * k, r) for k, r in enumerate(rates)])
    previous = start
    for count in desired:
        if previous <= config.max_replicas:
            assert config.min_replicas <= count <= config.max_replicas
            assert count <= max(previous + 4, 2 * previous)
        previous = count


EXAMPLES = Path(__file__).parents[2] / "examples"
SEMIFINAL = EXAMPLES / "traces" / "worldcup98-semifinal-1998-07-07.csv"


@pytest.mark.parametrize(
    ("target", "replicas", "digest"),
    [(0.5, 188382, "29f27707ad06d585"), (0.7, 135341, "3f13febb24cfa306")],
)
def test_the_semifinal_replays_as_before_the_model_used_behaviors_step_limits(
    target: float, replicas: int, digest: str
) -> None:
    # The series the HPA model gave with its own step limits (before it used `behavior`'s),
    # 1200 syncs of the 1998 semi-final seen 30 s late: the float64 arithmetic is kept.
    trace = parse_trace(SEMIFINAL.read_text(encoding="utf-8"))
    times = [trace.start + 15.0 * k for k in range(int((trace.end - trace.start) // 15))]
    seen = [(t, trace.observed(t - 30.0)) for t in times]
    config = HpaConfig(19.118834, target, min_replicas=2, max_replicas=400, metric_lag=0)
    desired = replay_hpa(config, 2, seen)
    assert (len(desired), sum(desired)) == (1200, replicas)
    assert hashlib.sha256(json.dumps(desired).encode()).hexdigest()[:16] == digest
